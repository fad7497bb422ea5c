package quorum

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

// FuzzParseParams feeds query strings, as both fronts hand them over, to
// the one parameter parser: it must never panic, every error must be a
// *ParamError naming a parameter, and what it accepts must be in range (so
// WithDefaults and Validate can trust it).
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{
		"", "n=3&r=2&w=2", "r=quorum&w=all", "w=one&pw=all&dw=1", "timeout=500",
		"timeout=2s", "timeout=-1s", "timeout=9223372036854775807", "n=0", "r=-1",
		"n=99999999999999999999", "pr=quorum&n=5", "timeout=1e3", "w= 2 ", "n=2&r=all&pr=all", "pz=2", "pz=",
	} {
		f.Add(s, uint8(3))
	}
	names := []string{"n", "r", "w", "pr", "pw", "dw", "pz", "timeout"}
	f.Fuzz(func(t *testing.T, query string, defN uint8) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		get := func(name string) (string, bool) {
			v, ok := q[name]
			if !ok || len(v) == 0 {
				return "", false
			}
			return v[0], true
		}
		defaultN := int(defN%9) + 1
		p, err := ParseParams(get, defaultN)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || !slices.Contains(names, pe.Param) || pe.Msg == "" {
				t.Fatalf("%q: error %v (%T) does not name a parameter", query, err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: error %v is not ErrInvalid", query, err)
			}
			return
		}
		if _, given := get("n"); given != (p.N != 0) || (given && p.N < 1) {
			t.Fatalf("%q: n=%d", query, p.N)
		}
		for _, c := range []struct {
			name string
			v    int
			min  int
		}{{"r", p.R, 1}, {"w", p.W, 1}, {"pr", p.PR, 0}, {"pw", p.PW, 0}, {"dw", p.DW, 0}, {"pz", p.PZ, 0}} {
			if _, given := get(c.name); given && c.v < c.min || !given && c.v != 0 {
				t.Fatalf("%q: %s=%d out of range", query, c.name, c.v)
			}
		}
		if p.Timeout < 0 || p.Timeout > MaxTimeout {
			t.Fatalf("%q: timeout %v out of range", query, p.Timeout)
		}
		// Whatever was accepted can be completed and checked without panic.
		full := p.WithDefaults(Params{N: 3, R: 2, W: 2})
		_ = full.Validate(5, 7)
	})
}
