package quorum

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Validate's fast path (every count within its rules, no list built)
// accepts exactly what the full check of the counts accepts.
func TestParamsValidateFastPathAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Valid counts, then at most one of them (or the timeout) one
		// step past an edge of its rule.
		n := rapid.IntRange(1, 5).Draw(t, "n")
		in := func(name string, lo, hi int) int { return rapid.IntRange(lo, hi).Draw(t, name) }
		p := Params{N: n, R: in("r", 1, n), W: in("w", 1, n), PZ: in("pz", 0, n)}
		p.PR, p.PW, p.DW = in("pr", 0, p.R), in("pw", 0, p.W), in("dw", 0, p.W)
		fields := []*int{&p.R, &p.W, &p.PR, &p.PW, &p.DW, &p.PZ}
		switch i := rapid.IntRange(-1, len(fields)).Draw(t, "off"); {
		case i == len(fields):
			p.Timeout = -time.Nanosecond
		case i >= 0:
			*fields[i] += rapid.SampledFrom([]int{-(*fields[i] + 1), 1, n}).Draw(t, "step")
		}
		got, want := p.Validate(5, 0), p.checkCounts()
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("%+v: Validate %v, full check %v", p, got, want)
		}
	})
}
