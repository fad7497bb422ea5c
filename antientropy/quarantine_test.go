package antientropy

import (
	"testing"
	"time"
)

// A node quarantines its records at start when it was down longer than
// half of MaxDowntime: peers may have reaped without it.
func TestMayBeStale(t *testing.T) {
	const grace, maxDown = 7 * 24 * time.Hour, 10 * 24 * time.Hour
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		away        time.Duration
		grace, down time.Duration
		want        bool
	}{
		{"a restart", time.Minute, grace, maxDown, false},
		{"down exactly half of max downtime", maxDown / 2, grace, maxDown, false},
		{"down just over half", maxDown/2 + time.Second, grace, maxDown, true},
		{"down longer than max downtime", 2 * maxDown, grace, maxDown, true},
		{"reaping off: never stale", 2 * maxDown, 0, maxDown, false},
		{"no max downtime: never stale", 2 * maxDown, grace, 0, false},
		{"a clock that went back", -time.Hour, grace, maxDown, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayBeStale(now.Add(-tc.away), now, tc.grace, tc.down); got != tc.want {
				t.Fatalf("mayBeStale after %v away = %v, want %v", tc.away, got, tc.want)
			}
		})
	}
}

// A dead primary is excused from confirming a tombstone only after
// MaxDowntime, and only while a strict majority of the ring is alive.
func TestMayExcuse(t *testing.T) {
	const maxDown = 10 * 24 * time.Hour
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		dead           time.Duration
		alive, members int
		want           bool
	}{
		{"dead for max downtime, 2 of 3 alive", maxDown, 2, 3, true},
		{"dead a second less", maxDown - time.Second, 2, 3, false},
		{"half the ring alive is not a majority", maxDown, 2, 4, false},
		{"3 of 4 alive", 2 * maxDown, 3, 4, true},
		{"alone", 2 * maxDown, 1, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayExcuse(now.Add(-tc.dead), now, maxDown, tc.alive, tc.members); got != tc.want {
				t.Fatalf("mayExcuse = %v, want %v", got, tc.want)
			}
		})
	}
	if mayExcuse(now.Add(-100*maxDown), now, 0, 3, 3) {
		t.Fatal("excused with no max downtime")
	}
}
