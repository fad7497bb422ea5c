package pace

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// feed sends one sample every step from *now for d, all of latency rtt, and
// returns the last rate.
func feed(p *Pacer, now *time.Time, d, step, rtt time.Duration) float64 {
	r := p.Rate()
	for end := now.Add(d); now.Before(end); *now = now.Add(step) {
		r, _ = p.Observe(*now, rtt)
	}
	return r
}

func TestPacer(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		run  func(p *Pacer, now *time.Time) float64
		want float64
	}{
		{"starts at the floor", func(p *Pacer, now *time.Time) float64 { return p.Rate() }, 100},
		{"one tick at base latency: one step up", func(p *Pacer, now *time.Time) float64 {
			return feed(p, now, 101*ms, ms, 2*ms) // 101 samples, the tick ends at the 101st
		}, 100 + 9900.0/50},
		{"steady base latency reaches the cap, not beyond", func(p *Pacer, now *time.Time) float64 {
			return feed(p, now, 20*time.Second, ms, 2*ms)
		}, 10000},
		{"latency past twice the base plus slack halves the rate", func(p *Pacer, now *time.Time) float64 {
			feed(p, now, 20*time.Second, ms, 2*ms)                 // at the cap, base 2ms
			return feed(p, now, 101*ms, ms, 5100*time.Microsecond) // > 2*2+1
		}, 5000},
		{"one fast outlier does not make normal latency look congested", func(p *Pacer, now *time.Time) float64 {
			feed(p, now, 20*time.Second, ms, 2*ms) // at the cap, base 2ms
			p.Observe(*now, time.Microsecond)      // a lucky answer
			*now = now.Add(ms)
			return feed(p, now, 2*time.Second, ms, 2*ms)
		}, 10000},
		{"halving stops at the floor", func(p *Pacer, now *time.Time) float64 {
			feed(p, now, time.Second, ms, 2*ms)
			return feed(p, now, 3*time.Second, ms, 50*ms)
		}, 100},
		{"between the thresholds the rate holds", func(p *Pacer, now *time.Time) float64 {
			feed(p, now, 20*time.Second, ms, 2*ms)
			return feed(p, now, 2*time.Second, ms, 4500*time.Microsecond) // 1.5*2+1 < 4.5 < 2*2+1
		}, 10000},
		{"idle resets to the floor", func(p *Pacer, now *time.Time) float64 {
			feed(p, now, 20*time.Second, ms, 2*ms)
			*now = now.Add(PacerIdle)
			r, _ := p.Observe(*now, 2*ms)
			return r
		}, 100},
		{"zero and negative latencies are ignored", func(p *Pacer, now *time.Time) float64 {
			return feed(p, now, 5*time.Second, ms, 0)
		}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPacer(100, 10000)
			now := t0
			if got := tc.run(p, &now); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("rate %v, want %v", got, tc.want)
			}
		})
	}
}

// The base follows a lasting change of latency within
// PacerBaseWindow*PacerBaseWindows, and not before.
func TestPacerBaseForgets(t *testing.T) {
	p := NewPacer(10, 1000)
	now := t0
	feed(p, &now, 5*time.Second, time.Millisecond, time.Millisecond)
	if b := p.Base(); b != time.Millisecond {
		t.Fatalf("base %v, want 1ms", b)
	}
	feed(p, &now, 20*time.Second, time.Millisecond, 10*time.Millisecond)
	if b := p.Base(); b != time.Millisecond {
		t.Fatalf("base forgot the 1ms minimum after 20s: %v", b)
	}
	feed(p, &now, 15*time.Second, time.Millisecond, 10*time.Millisecond)
	if b := p.Base(); b != 10*time.Millisecond {
		t.Fatalf("base %v 35s after the last 1ms sample, want 10ms", b)
	}
	// Having learnt 10ms as the base, it ramps up again at that latency.
	if r := feed(p, &now, 10*time.Second, time.Millisecond, 10*time.Millisecond); r != 1000 {
		t.Fatalf("rate %v at the new base latency, want the cap", r)
	}
}

func TestNewPacerBounds(t *testing.T) {
	for _, tc := range []struct {
		lo, hi, wantLo, wantHi float64
	}{
		{0, 0, 1, 1},
		{-5, 10, 1, 10},
		{50, 10, 50, 50},
		{math.NaN(), math.NaN(), 1, 1},
	} {
		p := NewPacer(tc.lo, tc.hi)
		if p.min != tc.wantLo || p.max != tc.wantHi || p.Rate() != tc.wantLo {
			t.Errorf("NewPacer(%v, %v): [%v, %v] at %v, want [%v, %v]", tc.lo, tc.hi, p.min, p.max, p.Rate(), tc.wantLo, tc.wantHi)
		}
	}
}

// Whatever the latencies, the rate stays within [floor, cap], changed is
// true exactly when the rate changed, and the base is the smallest recent
// sample.
func TestPacerBoundsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		lo := float64(rapid.IntRange(1, 1000).Draw(rt, "lo"))
		hi := lo + float64(rapid.IntRange(0, 100000).Draw(rt, "span"))
		p := NewPacer(lo, hi)
		now := t0
		minSeen := time.Duration(0)
		for i := range rapid.IntRange(1, 500).Draw(rt, "n") {
			now = now.Add(time.Duration(rapid.IntRange(0, 300).Draw(rt, "gap ms")) * time.Millisecond)
			rtt := time.Duration(rapid.IntRange(-10, 50000).Draw(rt, "rtt µs")) * time.Microsecond
			before := p.Rate()
			r, changed := p.Observe(now, rtt)
			if r < lo || r > hi {
				rt.Fatalf("sample %d: rate %v outside [%v, %v]", i, r, lo, hi)
			}
			if changed != (r != before) || r != p.Rate() {
				rt.Fatalf("sample %d: rate %v -> %v, changed=%v", i, before, r, changed)
			}
			if rtt > 0 && (minSeen == 0 || rtt < minSeen) {
				minSeen = rtt
			}
			if b := p.Base(); b != 0 && b < minSeen {
				rt.Fatalf("base %v below every sample (min %v)", b, minSeen)
			}
		}
	})
}
