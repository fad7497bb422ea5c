package siblings

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/vclock"
)

// Overhead is what each sibling counts in Bytes beyond its data and
// content type: its dot, timestamp and framing (at most about 30 bytes
// encoded), with room for the context's share.
const Overhead = 64

// Bytes is the size of a set's siblings by which the caps are measured:
// for each sibling, its data, its content type and Overhead.
func Bytes(s vclock.Set) int64 {
	var n int64
	for _, sib := range s.Siblings {
		n += size(sib)
	}
	return n
}

func size(s vclock.Sibling) int64 {
	return int64(len(s.Value.Data) + len(s.Value.ContentType) + Overhead)
}

// Defaults of Policy.
const (
	// DefaultMaxCount is the client cap on siblings per key (node's
	// --max-siblings): Riak refuses at 100 by default; ours leaves room
	// for applications that use siblings on purpose.
	DefaultMaxCount = 1000
	// DefaultMaxBytes is the client cap on a key's sibling bytes (node's
	// maxSetBytes): twelve values of the default 1 MiB maximum, minus
	// overhead, so eleven siblings of 1 MiB fit and a twelfth is refused.
	DefaultMaxBytes = 12 << 20
	// DefaultMergeCount is the merge cap on siblings: the most a set
	// encoding may hold (vclock.MaxSiblings), four clients' caps.
	DefaultMergeCount = vclock.MaxSiblings
	// DefaultMergeBytes is the merge cap on bytes: the most whose
	// encoding, with the largest context (about 280 KiB), still fits a
	// backup file's record (13 MiB, backup.MaxSetBytes) and so one 16 MiB
	// transport frame and one store value (node sizes the store's
	// MaxValueSize for it). Half a MiB above the client cap: replicas that
	// diverged a little past it keep every sibling.
	DefaultMergeBytes = 12<<20 + 512<<10
	// DefaultWarn is the sibling count from which a key is reported (a
	// warning metric and log line), as Riak's warn at 25.
	DefaultWarn = 25
)

// Policy caps a key's siblings. Client writes past MaxCount or MaxBytes
// are refused (CheckWrite). Replica merges (hints, read repair,
// anti-entropy, the replication of a write) are never refused: Merge
// keeps the whole union when it fits the merge caps, which are higher,
// and otherwise keeps the newest siblings that fit and reports the
// others (see Fit). A zero field means its default; see DefaultPolicy.
type Policy struct {
	// MaxCount and MaxBytes cap what a client write may leave on a key.
	MaxCount int
	MaxBytes int64
	// MergeCount and MergeBytes cap what a merge keeps; at least the
	// client caps, MergeCount at most vclock.MaxSiblings.
	MergeCount int
	MergeBytes int64
	// Warn is the sibling count from which a set is reported; negative:
	// never.
	Warn int
}

// DefaultPolicy returns the defaults.
func DefaultPolicy() Policy {
	return Policy{MaxCount: DefaultMaxCount, MaxBytes: DefaultMaxBytes,
		MergeCount: DefaultMergeCount, MergeBytes: DefaultMergeBytes, Warn: DefaultWarn}
}

// withDefaults fills zero fields.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MaxCount == 0 {
		p.MaxCount = d.MaxCount
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = d.MaxBytes
	}
	if p.MergeCount == 0 {
		p.MergeCount = max(d.MergeCount, p.MaxCount)
	}
	if p.MergeBytes == 0 {
		p.MergeBytes = max(d.MergeBytes, p.MaxBytes)
	}
	if p.Warn == 0 {
		p.Warn = d.Warn
	}
	return p
}

// Validate reports a field out of range. It never changes p.
func (p Policy) Validate() error {
	q := p.withDefaults()
	switch {
	case q.MaxCount < 1 || q.MaxBytes < 1:
		return fmt.Errorf("siblings: client caps %d siblings, %d bytes: must be >= 1", q.MaxCount, q.MaxBytes)
	case q.MergeCount < q.MaxCount || q.MergeBytes < q.MaxBytes:
		return fmt.Errorf("siblings: merge caps (%d siblings, %d bytes) below the client caps (%d, %d): replicas could refuse what clients wrote",
			q.MergeCount, q.MergeBytes, q.MaxCount, q.MaxBytes)
	case q.MergeCount > vclock.MaxSiblings:
		return fmt.Errorf("siblings: merge cap %d siblings exceeds the %d a set encoding holds", q.MergeCount, vclock.MaxSiblings)
	}
	return nil
}

// Errors of CheckWrite, matched by *CapError.
var (
	// ErrTooMany: a write would leave more siblings than MaxCount (HTTP 413
	// too_many_siblings).
	ErrTooMany = errors.New("too many siblings")
	// ErrTooLarge: a write would leave more sibling bytes than MaxBytes
	// (HTTP 413 siblings_too_large).
	ErrTooLarge = errors.New("siblings too large")
)

// CapError refuses a client write past a cap. It carries the counts so
// the answer can say them.
type CapError struct {
	// Siblings and Bytes are what the key would hold after the write.
	Siblings int
	Bytes    int64
	// MaxCount and MaxBytes are the caps.
	MaxCount int
	MaxBytes int64
}

func (e *CapError) Error() string {
	if e.Siblings > e.MaxCount {
		return fmt.Sprintf("the key would hold %d siblings, over the cap of %d siblings per key; read it and write with its context, or overwrite, to resolve them",
			e.Siblings, e.MaxCount)
	}
	return fmt.Sprintf("the key's %d siblings would hold %d bytes, over the cap of %d per key; read it and write with its context, or overwrite, to resolve them",
		e.Siblings, e.Bytes, e.MaxBytes)
}

// Is matches ErrTooMany when the count is over, else ErrTooLarge.
func (e *CapError) Is(target error) bool {
	if e.Siblings > e.MaxCount {
		return target == ErrTooMany
	}
	return target == ErrTooLarge
}

// CheckWrite checks the set a client write would leave: nil, or a
// *CapError. Merges are never checked: see Merge.
func (p Policy) CheckWrite(next vclock.Set) error {
	p = p.withDefaults()
	n, b := len(next.Siblings), Bytes(next)
	if n > p.MaxCount || b > p.MaxBytes {
		return &CapError{Siblings: n, Bytes: b, MaxCount: p.MaxCount, MaxBytes: p.MaxBytes}
	}
	return nil
}

// Warns reports whether s has Warn siblings or more.
func (p Policy) Warns(s vclock.Set) bool {
	p = p.withDefaults()
	return p.Warn > 0 && len(s.Siblings) >= p.Warn
}

// Merged is the outcome of a merge under the policy.
type Merged struct {
	// Set is the merged set, within the merge caps.
	Set vclock.Set
	// Trimmed are the siblings the merge dropped to fit the caps, in dot
	// order; nil when the union fit, as it does unless replicas diverged
	// past the caps. They were acknowledged writes: the caller must count
	// them in a metric and log the key and their dots (rate-limited).
	// Set.Context still covers them, so every replica that merges Set
	// drops them too, as if a write had superseded them.
	Trimmed []vclock.Sibling
	// Warn is Warns(Set), for the caller's warning metric and log line.
	Warn bool
}

// Merge merges a replica's set into cur, as vclock.Sync does, and fits
// the result to the merge caps (Fit). It never fails: a merge refused for
// its size would be refused again at every retry, and the replicas would
// never converge.
func (p Policy) Merge(cur, in vclock.Set) Merged {
	return p.Fit(vclock.Sync(cur, in))
}

// Fit fits s to the merge caps: when s has more than MergeCount siblings
// or more than MergeBytes, it keeps the newest siblings (latest
// Value.Timestamp first, ties broken by the greater dot) as long as they
// fit, and drops the rest; the context is kept whole.
//
// Why the replicas converge: dropping a sibling while keeping the context
// makes the set only newer (vclock.Sync of s and Fit(s) is Fit(s)), so a
// replica's set only grows in the order vclock.Sync joins in, and when no
// merge changes anything more, every replica holds the same set. When no
// trimming is needed the merge is vclock.Sync itself: commutative,
// associative and idempotent, so replicas end equal whatever the order.
// Past the caps the result can depend on the order merges happened in
// (a sibling one replica dropped may be superseded later at another), but
// the replicas still end equal once they exchange with each other, which
// anti-entropy and read repair do. An order-free trimming rule would need
// either to trim keys whose union fits (any rule deciding from the
// context alone) or more state in the set encoding; see "Resource limits"
// in docs/ARCHITECTURE.md.
//
// Wall clocks decide only which siblings are kept when a key is already
// past the caps, never what the merge means otherwise.
func (p Policy) Fit(s vclock.Set) Merged {
	p = p.withDefaults()
	m := Merged{Set: s}
	if !p.FitsMerge(len(s.Siblings), Bytes(s)) {
		m.Set, m.Trimmed = p.trim(s)
	}
	m.Warn = p.Warns(m.Set)
	return m
}

// FitsMerge reports whether a set of n siblings of size bytes (Bytes of
// it) fits the merge caps, so that Fit keeps it whole: what a replica
// storing a peer's set as it came asks without decoding it.
func (p Policy) FitsMerge(n int, size int64) bool {
	p = p.withDefaults()
	return n <= p.MergeCount && size <= p.MergeBytes
}

// trim keeps the newest siblings of s that fit the merge caps.
func (p Policy) trim(s vclock.Set) (vclock.Set, []vclock.Sibling) {
	order := make([]int, len(s.Siblings))
	for i := range order {
		order[i] = i
	}
	// Newest first; siblings are in dot order, so a greater index is the
	// greater dot.
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(s.Siblings[b].Value.Timestamp, s.Siblings[a].Value.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	keep := make([]bool, len(s.Siblings))
	var n int
	var bytes int64
	for _, i := range order {
		sz := size(s.Siblings[i])
		if n == p.MergeCount || bytes+sz > p.MergeBytes {
			break
		}
		keep[i] = true
		n++
		bytes += sz
	}
	out := vclock.Set{Context: slices.Clone(s.Context), Siblings: make([]vclock.Sibling, 0, n)}
	var dropped []vclock.Sibling
	for i, sib := range s.Siblings {
		if keep[i] {
			out.Siblings = append(out.Siblings, sib)
		} else {
			dropped = append(dropped, sib)
		}
	}
	if len(out.Siblings) == 0 {
		out.Siblings = nil
	}
	return out, dropped
}
