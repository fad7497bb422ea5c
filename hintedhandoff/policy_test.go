package hintedhandoff

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		name     string
		b        Backoff
		failures int
		jitter   float64
		want     time.Duration
	}{
		{"first failure, no jitter: half the base", b, 1, 0, 50 * time.Millisecond},
		{"first failure, top jitter approaches the base", b, 1, 0.999999, 99999950 * time.Nanosecond},
		{"second failure doubles", b, 2, 0, 100 * time.Millisecond},
		{"third failure, half jitter", b, 3, 0.5, 300 * time.Millisecond},
		{"capped at Max", b, 5, 0, 500 * time.Millisecond},
		{"capped far past the cap", b, 1000, 0, 500 * time.Millisecond},
		{"shift that would overflow stays capped", Backoff{Base: time.Hour, Max: 1 << 62}, 200, 0, 1 << 61},
		{"zero failures counts as one", b, 0, 0, 50 * time.Millisecond},
		{"negative jitter clamps to 0", b, 1, -3, 50 * time.Millisecond},
		{"jitter above 1 clamps to 1", b, 1, 7, 100 * time.Millisecond},
		{"NaN jitter counts as 0", b, 1, math.NaN(), 50 * time.Millisecond},
		{"zero Backoff: base 1s", Backoff{}, 1, 0, 500 * time.Millisecond},
		{"zero Backoff: max 60s", Backoff{}, 20, 0, 30 * time.Second},
		{"Max below Base means Base", Backoff{Base: time.Second, Max: time.Millisecond}, 3, 0, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.failures, tc.jitter); got != tc.want {
				t.Fatalf("Delay(%d, %v) = %v, want %v", tc.failures, tc.jitter, got, tc.want)
			}
		})
	}
}

func TestLimitsAdmit(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int64
		held int64
		want bool
	}{
		{"no cap", 0, 1 << 40, true},
		{"negative means no cap", -1, 5, true},
		{"below the cap", 100, 99, true},
		{"at the cap", 100, 100, false},
		{"above the cap", 100, 1000, false},
		{"empty target under a one-byte cap", 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Limits{MaxBytes: tc.max}).Admit(tc.held); got != tc.want {
				t.Fatalf("Admit(%d) with MaxBytes %d = %v, want %v", tc.held, tc.max, got, tc.want)
			}
		})
	}
}

func TestLimitsExpiry(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	l := Limits{MaxAge: 64 * time.Hour} // granularity step: 1h
	for _, tc := range []struct {
		name       string
		l          Limits
		h          Held
		lastRun    time.Time
		wantRun    bool
		wantCutoff time.Time
	}{
		{"nothing held", l, Held{}, time.Time{}, false, time.Time{}},
		{"all young", l, Held{Count: 3, Oldest: now.Add(-time.Hour)}, time.Time{}, false, time.Time{}},
		{"exactly at the cap is kept", l, Held{Count: 3, Oldest: now.Add(-64 * time.Hour)}, time.Time{}, false, time.Time{}},
		{"older than the cap", l, Held{Count: 3, Oldest: now.Add(-65 * time.Hour)}, time.Time{}, true, now.Add(-64 * time.Hour)},
		{"older, but ran 30m ago", l, Held{Count: 3, Oldest: now.Add(-65 * time.Hour)}, now.Add(-30 * time.Minute), false, time.Time{}},
		{"older, ran an hour ago", l, Held{Count: 3, Oldest: now.Add(-65 * time.Hour)}, now.Add(-time.Hour), true, now.Add(-64 * time.Hour)},
		{"corrupt header present", l, Held{Count: 1}, now.Add(-time.Minute), true, now.Add(-64 * time.Hour)},
		{"no age cap", Limits{}, Held{Count: 3, Oldest: now.Add(-1000 * time.Hour)}, time.Time{}, false, time.Time{}},
		{"no age cap, corrupt present: only corrupt", Limits{}, Held{Count: 3}, time.Time{}, true, corruptOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cutoff, run := tc.l.Expiry(tc.h, now, tc.lastRun)
			if run != tc.wantRun || !cutoff.Equal(tc.wantCutoff) {
				t.Fatalf("Expiry = %v, %v; want %v, %v", cutoff, run, tc.wantCutoff, tc.wantRun)
			}
		})
	}
	if got := corruptOnly.UnixNano(); got != math.MinInt64+1 {
		t.Fatalf("corruptOnly is %d ns, want MinInt64+1", got)
	}
}

func TestDestinations(t *testing.T) {
	prim := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name   string
		target string
		onRing bool
		prim   []string
		want   []string
	}{
		{"target on the ring and a primary", "a", true, prim, []string{"a"}},
		{"target on the ring, no longer a primary", "z", true, prim, []string{"z"}},
		{"target left the ring: every current primary", "z", false, prim, prim},
		{"target left, no primaries known", "z", false, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Destinations(tc.target, tc.onRing, tc.prim)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Destinations = %v, want %v", got, tc.want)
			}
			if len(got) > 0 && len(tc.prim) > 0 && &got[0] == &tc.prim[0] {
				t.Fatal("Destinations aliases its input")
			}
		})
	}
}

func TestDropReasonNames(t *testing.T) {
	want := []string{"bytes", "age", "corrupt"}
	for i, r := range DropReasons {
		if r.String() != want[i] {
			t.Errorf("%d: %q, want %q", i, r, want[i])
		}
	}
	if DropReason(0).String() != "unknown" || Result(0).String() != "unknown" {
		t.Error("zero values must read as unknown")
	}
}
