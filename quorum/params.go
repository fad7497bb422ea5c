package quorum

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Params are the per-request quorum settings. Zero fields are filled from the
// node's defaults by WithDefaults before validation.
type Params struct {
	// N is the number of replicas of the key that take part (its preference
	// list's first N members are the primaries).
	N int
	// R is how many replicas must answer a read before the coordinator replies.
	R int
	// W is how many replicas (the coordinator included) must acknowledge a
	// write before the coordinator replies.
	W int
	// PR and PW are how many of those answers must come from primaries rather
	// than fallbacks. 0 means no requirement (sloppy quorum, as in Dynamo);
	// PW = N makes a write strict.
	PR, PW int
	// DW is how many replicas must have made the write durable (fsync) before
	// the coordinator replies. 0 means the store's own durability mode decides.
	DW int
	// PZ is how many distinct zones (ring.Member.Zone, the agents' --zone)
	// must hold an acknowledged copy of a write before the coordinator
	// replies: "the write reached PZ zones". 0 means no requirement. Reads
	// ignore it.
	PZ int
	// Timeout bounds the whole request. 0 means the default.
	Timeout time.Duration
}

// Count words accepted wherever a count is parsed.
const (
	One    = "one"
	Quorum = "quorum"
	All    = "all"
)

// ParseCount parses a count given as a number or as one of "one", "quorum"
// (a majority of n) or "all" (n). It does not range-check numbers against n:
// Validate does, so that the error names the rule that was broken.
func ParseCount(s string, n int) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case One:
		return 1, nil
	case Quorum:
		return n/2 + 1, nil
	case All:
		return n, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a number, %q, %q or %q", s, One, Quorum, All)
	}
	return v, nil
}

// MaxTimeout bounds a request's timeout parameter, on every front.
const MaxTimeout = 5 * time.Minute

// ParseParams reads the parameters n, r, w, pr, pw, dw, pz and timeout, the same
// on every front (HTTP query string, RESP options). get returns a
// parameter's value and whether the request gave it; what the request does
// not give stays zero, for WithDefaults. Counts are numbers or
// one/quorum/all (ParseCount), resolved against the n given, else
// defaultN; r and w are at least 1, pr, pw, dw and pz at least 0 (Validate
// checks them against n later). A timeout is whole milliseconds ("500") or
// a Go duration ("500ms", "2s"), more than 0 and at most MaxTimeout. Errors
// are *ParamError.
func ParseParams(get func(name string) (string, bool), defaultN int) (Params, error) {
	var p Params
	nv := defaultN
	if s, ok := get("n"); ok {
		v, err := strconv.Atoi(s)
		if err != nil {
			return p, paramErr("n", "n=%q: not a number", s)
		}
		if v < 1 {
			return p, paramErr("n", "n=%d: must be at least 1", v)
		}
		p.N, nv = v, v
	}
	fields, _ := p.counts()
	for i, c := range countRules {
		s, ok := get(c.name)
		if !ok {
			continue
		}
		v, err := ParseCount(s, nv)
		if err != nil {
			return p, paramErr(c.name, "%s: %v", c.name, err)
		}
		if err := c.checkMin(v); err != nil {
			return p, err
		}
		*fields[i] = v
	}
	if s, ok := get("timeout"); ok {
		d, err := parseTimeout(s)
		if err != nil {
			return p, err
		}
		p.Timeout = d
	}
	return p, nil
}

// parseTimeout reads whole milliseconds or a Go duration. Milliseconds
// past MaxTimeout are clamped before they are multiplied (no overflow) and
// then refused.
func parseTimeout(s string) (time.Duration, error) {
	var d time.Duration
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		d = time.Duration(min(ms, MaxTimeout.Milliseconds()+1)) * time.Millisecond
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, paramErr("timeout", "timeout=%q: want milliseconds or a duration such as 500ms or 2s", s)
	}
	if d <= 0 || d > MaxTimeout {
		return 0, paramErr("timeout", "timeout=%s: want more than 0 and at most %s", d, MaxTimeout)
	}
	return d, nil
}

// WithDefaults returns p with every zero count filled from d. N is taken from
// d only when p.N is zero; R and W are then capped at N so that "n=1" alone
// is a valid request under defaults of 3/2/2.
func (p Params) WithDefaults(d Params) Params {
	explicitN := p.N != 0
	if p.N == 0 {
		p.N = d.N
	}
	if p.R == 0 {
		p.R = d.R
		if explicitN && p.R > p.N {
			p.R = p.N
		}
	}
	if p.W == 0 {
		p.W = d.W
		if explicitN && p.W > p.N {
			p.W = p.N
		}
	}
	if p.PR == 0 && d.PR <= p.N {
		p.PR = d.PR
	}
	if p.PW == 0 && d.PW <= p.N {
		p.PW = d.PW
	}
	if p.DW == 0 && d.DW <= p.N {
		p.DW = d.DW
	}
	if p.Timeout == 0 {
		p.Timeout = d.Timeout
	}
	return p
}

// FitRing returns p with N set to the ring's size when p gives no N and
// the default N is larger than the ring (a cluster still smaller than its
// replication factor), so that such requests keep working with every
// member taking part; reduced reports that. An N given by the request is
// kept (Validate refuses it if the ring is too small). WithDefaults then
// caps the default R and W at that N, as for an explicit n.
func (p Params) FitRing(d Params, ringSize int) (fitted Params, reduced bool) {
	if p.N != 0 || ringSize < 1 || d.N <= ringSize {
		return p, false
	}
	p.N = ringSize
	return p, true
}

// Validate checks p against the ring's size and the configured maximum N. It
// never changes p. The error is a *ParamError naming the parameter.
func (p Params) Validate(ringSize, maxN int) error {
	switch {
	case p.N < 1:
		return paramErr("n", "n=%d: must be at least 1", p.N)
	case maxN > 0 && p.N > maxN:
		return paramErr("n", "n=%d: above the configured maximum of %d", p.N, maxN)
	case p.N > ringSize:
		return paramErr("n", "n=%d: the ring has only %d member(s)", p.N, ringSize)
	}
	return p.checkCounts()
}

// checkCounts is Validate's check of the counts other than N and of the
// timeout, with its errors.
func (p Params) checkCounts() error {
	v, max := p.counts()
	for i, r := range countRules {
		if err := r.check(*v[i], *max[i]); err != nil {
			return err
		}
	}
	if p.Timeout < 0 {
		return paramErr("timeout", "timeout=%s: cannot be negative", p.Timeout)
	}
	return nil
}

// rule is the rule of one of a Params' counts other than N: at least min
// (1 for r and w, 0 for the others) and at most the count named maxName.
type rule struct {
	name    string
	min     int
	maxName string
	why     string // said after "cannot exceed"
}

// countRules are the rules of the counts, in the order they are parsed
// and checked. They are apart from the counts themselves (Params.counts):
// an error built from a rule that also held pointers into the Params would
// move them to the heap in every Validate (two allocations per request).
var countRules = [...]rule{
	{"r", 1, "n", ""},
	{"w", 1, "n", ""},
	{"pr", 0, "r", ""},
	{"pw", 0, "w", ""},
	{"dw", 0, "w", ""},
	{"pz", 0, "n", " (a write has at most n replicas, one per zone)"},
}

// counts returns, in countRules' order, p's counts and the counts each
// may not exceed.
func (p *Params) counts() (v, max [len(countRules)]*int) {
	return [...]*int{&p.R, &p.W, &p.PR, &p.PW, &p.DW, &p.PZ}, [...]*int{&p.N, &p.N, &p.R, &p.W, &p.W, &p.N}
}

// check refuses a value v of the count outside its rule, given the value
// max of the count it may not exceed.
func (c rule) check(v, max int) error {
	if err := c.checkMin(v); err != nil {
		return err
	}
	if v > max {
		return paramErr(c.name, "%s=%d: cannot exceed %s=%d%s", c.name, v, c.maxName, max, c.why)
	}
	return nil
}

// checkMin refuses a value v of c below c.min.
func (c rule) checkMin(v int) error {
	switch {
	case v >= c.min:
		return nil
	case c.min == 1:
		return paramErr(c.name, "%s=%d: must be at least 1", c.name, v)
	default:
		return paramErr(c.name, "%s=%d: cannot be negative", c.name, v)
	}
}

func paramErr(name, format string, args ...any) error {
	return &ParamError{Param: name, Msg: fmt.Sprintf(format, args...)}
}
