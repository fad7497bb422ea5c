package driverenv

import (
	"log/slog"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

func TestWithDefaults(t *testing.T) {
	e := Env{Self: "n1", N: 3}.WithDefaults()
	if e.Logger == nil || e.Clock == nil || e.Now == nil {
		t.Fatalf("defaults missing: %+v", e)
	}
	if e.Clock != clock.Real {
		t.Fatalf("Clock = %v, want clock.Real", e.Clock)
	}
	if e.Self != "n1" || e.N != 3 {
		t.Fatalf("given fields changed: %+v", e)
	}
	// Given values are kept, and Now defaults to the given Clock's.
	fake := clock.NewFake(time.Unix(1000, 0))
	log := slog.New(slog.DiscardHandler)
	e = Env{Clock: fake, Logger: log}.WithDefaults()
	if e.Clock != fake || e.Logger != log {
		t.Fatalf("given Clock or Logger replaced: %+v", e)
	}
	if got := e.Now(); !got.Equal(time.Unix(1000, 0)) {
		t.Fatalf("Now() = %v, want the fake clock's 1000", got)
	}
	wall := func() time.Time { return time.Unix(7, 0) }
	if got := (Env{Clock: fake, Now: wall}.WithDefaults()).Now(); !got.Equal(time.Unix(7, 0)) {
		t.Fatalf("given Now replaced: %v", got)
	}
}
