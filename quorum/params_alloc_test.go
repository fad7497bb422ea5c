package quorum

import (
	"testing"
	"time"
)

// Validate runs on every request: a valid request's check allocates
// nothing (rules built with pointers into the Params moved them to the
// heap, two allocations per request), and an invalid one still gets its
// error.
func TestValidateAllocatesNothing(t *testing.T) {
	p := Params{N: 3, R: 2, W: 2, PR: 1, PW: 1, DW: 1, PZ: 2, Timeout: time.Second}
	if n := testing.AllocsPerRun(100, func() { _ = p.Validate(5, 0) }); n != 0 {
		t.Errorf("Validate of a valid request allocates %.0f times, want 0", n)
	}
	bad := p
	bad.PZ = 4
	if err := bad.Validate(5, 0); err == nil || err.Error() != "pz=4: cannot exceed n=3 (a write has at most n replicas, one per zone)" {
		t.Errorf("pz above n: %v", err)
	}
}
