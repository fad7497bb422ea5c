package quorum

import (
	"strings"
	"testing"
	"time"
)

// Issue 19: requests that give no n on a ring smaller than the default N
// use every member; an explicit n larger than the ring is still refused.
func TestFitRing(t *testing.T) {
	d := Params{N: 3, R: 2, W: 2, Timeout: time.Second}
	for _, tc := range []struct {
		name    string
		p       Params
		ring    int
		want    Params // after FitRing and WithDefaults
		reduced bool
		err     string // from Validate
	}{
		{"ring of 3: defaults", Params{}, 3, Params{N: 3, R: 2, W: 2, Timeout: time.Second}, false, ""},
		{"ring of 2: n=2, r and w capped", Params{}, 2, Params{N: 2, R: 2, W: 2, Timeout: time.Second}, true, ""},
		{"ring of 1", Params{}, 1, Params{N: 1, R: 1, W: 1, Timeout: time.Second}, true, ""},
		{"ring of 2, r=1 given", Params{R: 1}, 2, Params{N: 2, R: 1, W: 2, Timeout: time.Second}, true, ""},
		{"explicit n=3 on a ring of 2 is refused", Params{N: 3}, 2, Params{N: 3, R: 2, W: 2, Timeout: time.Second}, false, "the ring has only 2 member(s)"},
		{"w=3 on a ring of 2", Params{W: 3}, 2, Params{N: 2, R: 2, W: 3, Timeout: time.Second}, true, "w=3: cannot exceed n=2"},
		{"ring of 5", Params{}, 5, Params{N: 3, R: 2, W: 2, Timeout: time.Second}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, reduced := tc.p.FitRing(d, tc.ring)
			p = p.WithDefaults(d)
			if p != tc.want || reduced != tc.reduced {
				t.Fatalf("got %+v reduced=%v, want %+v reduced=%v", p, reduced, tc.want, tc.reduced)
			}
			err := p.Validate(tc.ring, 7)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
}
