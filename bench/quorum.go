package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size caps on parsed input, so a hostile or mistyped flag cannot make the
// parsers allocate without bound.
const (
	// MaxN is the largest replication factor a Quorum may name.
	MaxN = 64
	// MaxSettings is the most quorum settings one sweep may list.
	MaxSettings = 64
	// maxSpecLen caps the length of any string handed to a parser.
	maxSpecLen = 16 << 10
)

// Quorum is one replication setting: N replicas, R replies for a read, W
// acknowledgements for a write. It marshals as text "N/R/W".
type Quorum struct {
	N, R, W int
}

// String renders q as "N/R/W".
func (q Quorum) String() string {
	return strconv.Itoa(q.N) + "/" + strconv.Itoa(q.R) + "/" + strconv.Itoa(q.W)
}

// Strict reports whether R+W > N, i.e. every read quorum meets every write
// quorum (the classic condition for reading your acknowledged writes when
// no node fails).
func (q Quorum) Strict() bool { return q.R+q.W > q.N }

// Validate checks 1 <= R, W <= N <= MaxN.
func (q Quorum) Validate() error {
	if q.N < 1 || q.N > MaxN {
		return fmt.Errorf("quorum %s: n must be in [1, %d]: %w", q, MaxN, ErrInvalidConfig)
	}
	if q.R < 1 || q.R > q.N {
		return fmt.Errorf("quorum %s: r must be in [1, n]: %w", q, ErrInvalidConfig)
	}
	if q.W < 1 || q.W > q.N {
		return fmt.Errorf("quorum %s: w must be in [1, n]: %w", q, ErrInvalidConfig)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (q Quorum) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseQuorum.
func (q *Quorum) UnmarshalText(b []byte) error {
	p, err := ParseQuorum(string(b))
	if err != nil {
		return err
	}
	*q = p
	return nil
}

// ParseQuorum parses "N/R/W", e.g. "3/2/2", and validates it.
func ParseQuorum(s string) (Quorum, error) {
	if len(s) > maxSpecLen {
		return Quorum{}, fmt.Errorf("quorum: %d bytes is too long: %w", len(s), ErrSyntax)
	}
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) != 3 {
		return Quorum{}, fmt.Errorf("quorum %q: want N/R/W: %w", s, ErrSyntax)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Quorum{}, fmt.Errorf("quorum %q: %q is not a count: %w", s, p, ErrSyntax)
		}
		v[i] = n
	}
	q := Quorum{N: v[0], R: v[1], W: v[2]}
	if err := q.Validate(); err != nil {
		return Quorum{}, err
	}
	return q, nil
}

// ParseQuorums parses a comma-separated sweep list such as
// "3/1/1,3/2/2,3/3/1". Duplicates are kept: the sweep runs them twice.
func ParseQuorums(s string) ([]Quorum, error) {
	if len(s) > maxSpecLen {
		return nil, fmt.Errorf("quorums: %d bytes is too long: %w", len(s), ErrSyntax)
	}
	fields := strings.Split(s, ",")
	if len(fields) > MaxSettings {
		return nil, fmt.Errorf("quorums: %d settings, at most %d: %w", len(fields), MaxSettings, ErrSyntax)
	}
	qs := make([]Quorum, 0, len(fields))
	for _, f := range fields {
		q, err := ParseQuorum(f)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// ParseDeltas parses a comma-separated, strictly increasing list of
// t-visibility bucket bounds, e.g. "0,1ms,10ms,100ms".
func ParseDeltas(s string) ([]time.Duration, error) {
	if len(s) > maxSpecLen {
		return nil, fmt.Errorf("deltas: %d bytes is too long: %w", len(s), ErrSyntax)
	}
	fields := strings.Split(s, ",")
	if len(fields) > MaxDeltas {
		return nil, fmt.Errorf("deltas: %d values, at most %d: %w", len(fields), MaxDeltas, ErrSyntax)
	}
	ds := make([]time.Duration, 0, len(fields))
	for _, f := range fields {
		f = strings.TrimSpace(f)
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 || (len(ds) > 0 && d <= ds[len(ds)-1]) {
			return nil, fmt.Errorf("deltas %q: want increasing durations >= 0: %w", truncate(s), ErrSyntax)
		}
		ds = append(ds, d)
	}
	return ds, nil
}
