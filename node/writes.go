package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

// What a write means, the same on both fronts (HTTP and RESP):
//
//   - A write with a context supersedes what that context covers (what the
//     read that returned it saw); anything else the key holds stays, as a
//     sibling.
//   - A blind write (no context) keeps sibling semantics: it is concurrent
//     with whatever the key holds (HTTP PUT, RESP QSET).
//   - An overwrite (HTTP PUT ?overwrite=true or X-Quorumkv-Overwrite: true,
//     RESP SET and MSET) supersedes what a read at the request's R sees,
//     and whatever the coordinating replica holds when it writes: with
//     R+W>N it replaces every acknowledged earlier write. Writes racing it
//     through other coordinators still become siblings.
//   - A delete without a context (HTTP DELETE, RESP DEL) deletes what a
//     read at the request's R sees, as Riak's delete does; a key with no
//     live value is left alone (404, or 0 for DEL).

// ErrTooManySiblings is matched by a *SiblingCapError (replica's).
var ErrTooManySiblings = replica.ErrTooManySiblings

// SiblingCapError refuses a client write that would leave more siblings on
// a key than Config.MaxSiblings.
type SiblingCapError = replica.SiblingCapError

// ErrNotJoined refuses a request that names no N while this node has not
// joined its cluster yet (quorum.ErrNotJoined).
var ErrNotJoined = quorum.ErrNotJoined

// fit gives a request that names no N the ring's size when the ring is
// smaller than the default N (quorum.Params.FitRing); reduced reports it.
// A node alone on its ring that has not joined yet does not fit N: it
// refuses with ErrNotJoined.
func (n *Node) fit(p quorum.Params) (quorum.Params, bool, error) {
	ringSize := n.Ring().Len()
	fitted, reduced := p.FitRing(n.cfg.Defaults, ringSize)
	if !reduced {
		return p, false, nil
	}
	// A ring of others means a cluster, whoever joined whom.
	if ringSize == 1 && !n.Joined() {
		return p, false, ErrNotJoined
	}
	n.metrics.reducedN.Inc()
	return fitted, true, nil
}

// defaultN is the N a request that gives none runs with: the default, or
// the ring's size when smaller.
func (n *Node) defaultN() int {
	p, _ := quorum.Params{}.FitRing(n.cfg.Defaults, n.Ring().Len())
	if p.N == 0 {
		return n.cfg.Defaults.N
	}
	return p.N
}

// reducedWarning says why a request ran with fewer replicas than the
// default N, for the answer's warning header and /status.
func (n *Node) reducedWarning(nv int) string {
	return fmt.Sprintf("durability reduced: the ring has %d member(s), fewer than the default n=%d, so requests that give no n use n=%d: each key is kept on %d node(s)",
		n.Ring().Len(), n.cfg.Defaults.N, nv, nv)
}

// errExists refuses a create-only write (HTTP If-None-Match: *, RESP SET
// NX): the read at the request's R found a live value (HTTP 412, RESP nil).
var errExists = errors.New("the key has a live value: create-only write refused")

// createWrite writes req only if a read at its R finds no live value (see
// the top of this file; it returns errExists otherwise). The write carries
// the read's context, so it supersedes the tombstones the read saw, but not
// SupersedeLocal: a value another coordinator created meanwhile stays, as a
// sibling, rather than being overwritten unseen. Two creates racing
// through different coordinators can therefore both succeed.
func (n *Node) createWrite(ctx context.Context, req quorum.PutRequest) (*quorum.WriteResult, error) {
	timeout := cmp.Or(req.Params.Timeout, n.cfg.Defaults.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := req.Params
	read, err := n.coord.Get(ctx, quorum.GetRequest{Key: req.Key, Params: quorum.Params{N: p.N, R: p.R, PR: p.PR, Timeout: timeout}})
	if err != nil {
		return nil, quorum.WriteReadErr("create", err)
	}
	if !read.Set.IsDeleted() {
		return nil, errExists
	}
	req.Context = req.Context.Merge(read.Set.Context)
	req.Params.R, req.Params.PR = 0, 0 // the read's; the write has its own defaults
	return n.coord.Put(ctx, req)
}

// siblingLogEvery is the least time between two log lines about keys over
// Config.SiblingWarning.
const siblingLogEvery = 10 * time.Second

// siblingNotes reports writes that leave a key with siblings: counted in
// metrics (and RESP INFO), and over Config.SiblingWarning logged, at most
// once per siblingLogEvery.
type siblingNotes struct {
	// writes and warnings mirror the metrics, for RESP INFO.
	writes, warnings atomic.Uint64

	mu       sync.Mutex
	lastLog  time.Time
	unlogged int
}

// noteWrite counts what a write left on key and returns the warnings its
// answer carries: a second or later sibling, and the threshold.
func (n *Node) noteWrite(key []byte, res *quorum.WriteResult) []string {
	sibs := len(res.Set.Siblings)
	if sibs < 2 {
		return nil
	}
	n.metrics.siblingWrites.Inc()
	n.sibNotes.writes.Add(1)
	warn := []string{fmt.Sprintf("siblings: the key now holds %d siblings (concurrent writes, or writes without the context of a read); read it and write with its context, or overwrite, to resolve them", sibs)}
	limit := n.cfg.SiblingWarning
	if limit <= 0 || sibs < limit {
		return warn
	}
	n.metrics.siblingWarnings.Inc()
	n.sibNotes.warnings.Add(1)
	warn = append(warn, fmt.Sprintf("sibling threshold: %d siblings is at or over the warning threshold of %d (--sibling-warning); writes are refused past %d (--max-siblings)",
		sibs, limit, n.cfg.MaxSiblings))
	sn := &n.sibNotes
	sn.mu.Lock()
	now := n.now()
	sn.unlogged++
	if !sn.lastLog.IsZero() && now.Sub(sn.lastLog) < siblingLogEvery {
		sn.mu.Unlock()
		return warn
	}
	count := sn.unlogged
	sn.unlogged, sn.lastLog = 0, now
	sn.mu.Unlock()
	n.log.Warn("key has many siblings: its writers do not send the context of a read back (or race); read it and write with its context, or overwrite",
		"key", fmt.Sprintf("%.64q", key), "siblings", sibs, "threshold", limit, "cap", n.cfg.MaxSiblings, "such_writes_since_last_report", count)
	return warn
}

// siblingPolicy is the replica's sibling policy from the config: the
// client caps (MaxSiblings, 0: the encoding's limit; replica.MaxSetBytes)
// and the merge cap (MergeSiblings). node warns on writes itself
// (noteWrite), so the policy's warning is off.
func (c *Config) siblingPolicy() siblings.Policy {
	p := siblings.Policy{MaxCount: c.MaxSiblings, MaxBytes: replica.MaxSetBytes, MergeCount: c.MergeSiblings, Warn: -1}
	if p.MaxCount == 0 {
		p.MaxCount = vclock.MaxSiblings
	}
	return p
}

// noteTrimmed reports a merge that dropped acknowledged siblings of k to
// fit the merge caps (replica.Config.Trimmed): counted, and logged at
// most once per siblingLogEvery with the number held back.
func (n *Node) noteTrimmed(k ring.Key, hintFor string, kept int, dropped []vclock.Sibling) {
	n.metrics.siblingsTrimmed.Add(float64(len(dropped)))
	dots := make([]string, 0, min(len(dropped), 4))
	for _, sb := range dropped[:cap(dots)] {
		dots = append(dots, sb.Dot.String())
	}
	n.ratelog.Log(slog.LevelError, "a replica merge dropped siblings past the merge cap (acknowledged writes lost: replicas diverged past the sibling caps)", "",
		"key", fmt.Sprintf("%.64q", k.Key), "hint_for", hintFor, "kept", kept, "dropped", len(dropped), "first_dropped", dots,
		"merge_cap", n.cfg.siblingPolicy().MergeCount)
}
