package quorum

import (
	"errors"
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

// One parser serves both fronts: each gives the values it read (HTTP's
// query string, RESP's options) through get.
func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		in   map[string]string
		want Params
		err  string
	}{
		{nil, Params{}, ""},
		{map[string]string{"r": "quorum"}, Params{R: 2}, ""},
		{map[string]string{"n": "5", "r": "quorum", "w": "all"}, Params{N: 5, R: 3, W: 5}, ""},
		{map[string]string{"w": "one", "pw": "1", "dw": "1"}, Params{W: 1, PW: 1, DW: 1}, ""},
		{map[string]string{"pr": "0"}, Params{}, ""},
		// Both syntaxes each front accepted before: milliseconds and Go durations.
		{map[string]string{"timeout": "250"}, Params{Timeout: 250 * time.Millisecond}, ""},
		{map[string]string{"timeout": "2s"}, Params{Timeout: 2 * time.Second}, ""},
		{map[string]string{"timeout": "1.5s"}, Params{Timeout: 1500 * time.Millisecond}, ""},
		{map[string]string{"timeout": "5m"}, Params{Timeout: MaxTimeout}, ""},
		{map[string]string{"timeout": "300000"}, Params{Timeout: MaxTimeout}, ""},
		{map[string]string{"timeout": "0"}, Params{}, "timeout=0s: want more than 0"},
		{map[string]string{"timeout": "-5"}, Params{}, "timeout=-5ms"},
		{map[string]string{"timeout": "300001"}, Params{}, "at most 5m0s"},
		{map[string]string{"timeout": "99999999999999999"}, Params{}, "at most 5m0s"}, // no overflow
		{map[string]string{"timeout": "6m"}, Params{}, "at most 5m0s"},
		{map[string]string{"timeout": "soon"}, Params{}, `timeout="soon": want milliseconds or a duration`},
		{map[string]string{"n": "0"}, Params{}, "n=0: must be at least 1"},
		{map[string]string{"n": "x"}, Params{}, `n="x": not a number`},
		{map[string]string{"r": "0"}, Params{}, "r=0: must be at least 1"},
		{map[string]string{"w": "-1"}, Params{}, "w=-1: must be at least 1"},
		{map[string]string{"dw": "-1"}, Params{}, "dw=-1: cannot be negative"},
		{map[string]string{"r": "lots"}, Params{}, "is not a number"},
	} {
		get := func(name string) (string, bool) {
			s, ok := tc.in[name]
			return s, ok
		}
		p, err := ParseParams(get, 3)
		if tc.err != "" {
			var pe *ParamError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &pe) {
				t.Errorf("%v: error %v, want a *ParamError with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p != tc.want {
			t.Errorf("%v: got %+v, %v; want %+v", tc.in, p, err, tc.want)
		}
	}
}
