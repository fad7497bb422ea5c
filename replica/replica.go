package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

// MaxSetBytes bounds one key's sibling set as a client write may leave
// it, in bytes of values and content types (plus siblings.Overhead per
// sibling): siblings.DefaultMaxBytes. A write that would make it larger
// is refused with a *siblings.CapError matching ErrSetTooLarge (the client
// must resolve siblings with a context). Merges keep at most the policy's
// merge caps (Config.Siblings), so every set fits one store value and one
// transport frame.
const MaxSetBytes = siblings.DefaultMaxBytes

// ErrSetTooLarge is matched by a *siblings.CapError refusing a client
// write past the byte cap (HTTP 413 siblings_too_large).
var ErrSetTooLarge = siblings.ErrTooLarge

// ErrTooManySiblings is matched by a *siblings.CapError refusing a client
// write past the count cap (HTTP 413 too_many_siblings).
var ErrTooManySiblings = siblings.ErrTooMany

// SiblingCapError refuses a client write past a sibling cap; it carries
// the counts.
type SiblingCapError = siblings.CapError

// Observer learns of every committed change to a record of the replica,
// with the old and new set digests (0 for absent). Package antientropy's
// trees are kept current by one. It must be quick and must not block; it
// may be called concurrently, and for one key out of order.
type Observer func(k ring.Key, oldDigest, newDigest uint64)

// Config holds a Replica's collaborators. Store and Epochs are required.
type Config struct {
	// Self is this node's id: the actor of the dots it mints.
	Self string
	// Store holds the records and hints.
	Store *store.Store
	// Epochs hands out mint epochs (OpenDir).
	Epochs *Epochs
	// Sync is true when the store fsyncs every commit: a write is then
	// durable whether or not it asked to be.
	Sync bool
	// Gate closes the records while they may be stale or are being
	// dropped; nil is always open. Hints never pass it.
	Gate *Gate
	// Observer, if set, learns of every record change (not hints).
	Observer Observer
	// AcceptHint, if set, decides whether a hint for target may be written
	// (hinted handoff's per-target caps); an error refuses the write.
	AcceptHint func(target string, k ring.Key) error
	// HintStored, if set, learns of each hint write that changed the
	// stored hint (metrics).
	HintStored func(target string)
	// Siblings caps a key's siblings: a client write (Mint) past the
	// client caps is refused with a *siblings.CapError; merges (MergeSet)
	// are never refused, but fitted to the merge caps (Policy.Merge), since
	// replicas must converge whatever clients did. Zero fields: siblings'
	// defaults. Its Warn is not used here (node warns on writes).
	Siblings siblings.Policy
	// Trimmed, if set, learns of each merge that dropped siblings to fit
	// the merge caps: acknowledged writes, which the caller counts and
	// logs. kept is how many the key holds after it.
	Trimmed func(k ring.Key, hintFor string, kept int, dropped []vclock.Sibling)
	// Now is the clock that expiry reads; nil means time.Now.
	Now func() time.Time
	// ExpiryMargin is how long after a value's deadline, by Now, this
	// replica turns it into a tombstone when it writes the record (every
	// write, merge and the reaper's pass, Expire). It must be at least the
	// clock skew between nodes, so that a node whose clock runs ahead
	// never destroys a value another node still reads as live (reads
	// filter by their own clock, without margin: see docs/ARCHITECTURE.md,
	// "Expiry"). 0 means DefaultExpiryMargin; negative is refused.
	ExpiryMargin time.Duration
}

// DefaultExpiryMargin is the ExpiryMargin of a zero Config: far above the
// skew NTP keeps between hosts of one site (milliseconds), far below any
// useful time to live.
const DefaultExpiryMargin = time.Second

// Replica is this node's own copy of the data: records it holds as a
// primary and hints it holds as a fallback. Every write to it goes through
// here, so its observer sees them all. Safe for concurrent use.
type Replica struct {
	cfg Config
	st  *store.Store
	ep  *Epochs
}

// New returns the replica of cfg.
func New(cfg Config) (*Replica, error) {
	switch {
	case cfg.Self == "":
		return nil, errors.New("replica: Self is empty")
	case cfg.Store == nil || cfg.Epochs == nil:
		return nil, errors.New("replica: Store and Epochs are required")
	case cfg.ExpiryMargin < 0:
		return nil, errors.New("replica: negative ExpiryMargin")
	}
	if err := cfg.Siblings.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ExpiryMargin == 0 {
		cfg.ExpiryMargin = DefaultExpiryMargin
	}
	return &Replica{cfg: cfg, st: cfg.Store, ep: cfg.Epochs}, nil
}

// updateFunc computes a key's new set from the stored one: mint is the
// stored record's epoch, found whether there is one. write=false writes
// nothing.
type updateFunc func(mint uint64, cur vclock.Set, found bool) (newMint uint64, next vclock.Set, write bool, err error)

// recordUpdate is one read-modify-write of a record or hint through
// update: its set function and what the store's callback learned. One
// value per update holds it all, so the callback's state costs one
// allocation rather than one per captured variable.
type recordUpdate struct {
	// fn computes the new set; when nil, the update is a mint (mint set)
	// or a merge of in, which apply runs itself (set), so that neither
	// costs a closure and the variables it captures.
	fn   updateFunc
	r    *Replica
	mint *mintArgs
	in   vclock.Set
	// trimmed is what a merge past the merge caps dropped.
	trimmed []vclock.Sibling
	// merge is the incoming set of a merge (MergeSet), or nil. When it
	// replaces the stored set outright (vclock.Supersedes: the common
	// case of a replica receiving a newer write), apply writes it as the
	// new set without decoding the stored one or calling fn, which would
	// compute the same set (vclock.Sync) at the cost of the decode.
	merge *vclock.Set
	// raw is the incoming set of MergeEncoded, for apply to store as it
	// came (rawMerge) when it replaces the stored set outright or fills
	// an absent record; hasRaw until apply decodes it into in instead.
	raw    vclock.Encoded
	hasRaw bool
	// check asks apply for covered and prior (MergeSetChecked): whether
	// the stored context was covered by in's, and when not, that context.
	check   bool
	covered bool
	prior   []byte
	// expireBefore: values whose deadline is at or before it are written
	// as their tombstones (Unix nanoseconds; 0: none).
	expireBefore int64

	out    vclock.Set // the set after the update (the stored one if unchanged)
	enc    []byte     // the record written; nil if nothing was
	setOff int        // offset of the set's encoding in enc
	// oldDig and newDig are the set digests before and after (0: absent),
	// computed from the encodings (SetBytesDigest), not by re-encoding.
	oldDig, newDig uint64
}

// apply is the store.UpdateFunc of u.
func (u *recordUpdate) apply(old []byte, found bool) ([]byte, error) {
	return u.AppendTo(nil, old, found)
}

// AppendTo makes u the store.Appender of its write: it builds the record
// in dst when the record fits there (UpdateAppend's buffer after the
// key). Passed as an interface, u costs no allocation; the method value
// u.AppendTo would.
func (u *recordUpdate) AppendTo(dst, old []byte, found bool) ([]byte, error) {
	u.enc = nil
	if u.hasRaw {
		if b, ok := u.rawMerge(dst, old, found); ok {
			return b, nil
		}
		// Not outright: merge the decoded set, as MergeSet would.
		in, err := u.raw.Decode()
		if err != nil {
			return nil, err // not reached: MergeEncoded had it checked
		}
		u.in, u.merge, u.hasRaw = in, &u.in, false
	}
	var (
		mint   uint64
		cur    vclock.Set
		oldSet []byte
	)
	outright := false
	if found {
		h, err := ParseHeader(old)
		if err == nil {
			oldSet = old[h.SetOff:]
			mint = h.Mint
			if u.merge != nil {
				outright, _ = vclock.Supersedes(*u.merge, oldSet) // an error: the decode below says
			}
			if !outright {
				cur, err = vclock.DecodeSet(oldSet)
			}
		}
		if err != nil {
			// A record we cannot read must not block repairs forever:
			// treat it as absent (the merge brings the replicas' copy);
			// the mint epoch is then untrusted.
			found, mint, cur, oldSet = false, 0, vclock.Set{}, nil
		}
	}
	if u.check {
		// Supersedes implies in's context descends the stored one; an
		// absent (or unreadable, so replaced) record is covered.
		u.covered = !found || outright || u.in.Context.Descends(cur.Context)
		u.prior = nil
		if !u.covered {
			// Copied as stored (the store's slice is not ours after apply).
			u.prior, _ = vclock.AppendContextOnly(nil, oldSet) // it parsed: cur was decoded from it
		}
	}
	var (
		newMint uint64
		next    vclock.Set
		write   bool
		err     error
	)
	if outright {
		// What MergeSet's fn computes here, Sync(cur, in) = in (and, with
		// no stored sibling surviving, what the planted merge bugs make of
		// it), without cur.
		newMint, next, write = mint, plant.Merge(vclock.Set{}, *u.merge, *u.merge), true
	} else if newMint, next, write, err = u.set(mint, cur, found); err != nil {
		return nil, err
	}
	if !write {
		u.out = cur
		return nil, store.ErrNoChange
	}
	if u.expireBefore != 0 {
		next, _ = vclock.Expire(next, u.expireBefore)
	}
	if need := envelopeMax + setSizeHint(next); cap(dst)-len(dst) < need {
		dst = make([]byte, 0, need)
	}
	b, err := appendRecord(dst, newMint, next)
	if err != nil {
		return nil, err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err // not reached: appendRecord wrote the header
	}
	u.out, u.enc, u.setOff = next, b, h.SetOff
	u.oldDig = 0
	if found {
		u.oldDig = SetBytesDigest(oldSet)
	}
	u.newDig = SetBytesDigest(b[h.SetOff:])
	return b, nil
}

// set is u's updateFunc: fn, a mint or a merge.
func (u *recordUpdate) set(mint uint64, cur vclock.Set, found bool) (uint64, vclock.Set, bool, error) {
	switch {
	case u.fn != nil:
		return u.fn(mint, cur, found)
	case u.mint != nil:
		return u.r.mintSet(u.mint, mint, cur, found)
	}
	m := u.r.cfg.Siblings.Merge(cur, u.in)
	next := plant.Merge(cur, u.in, m.Set) // plant: MergeKeepsNewest, MergeResurrects
	u.trimmed = m.Trimmed
	if found && next.Equal(cur) {
		return mint, cur, false, nil
	}
	return mint, next, true, nil
}

// envelopeMax is the longest record envelope (format 3).
const envelopeMax = 1 + 3*binary.MaxVarintLen64

// sizeHint is the room for the record u is about to write that
// UpdateAppend leaves after the key: as apply asks for, from the
// incoming set of a merge, or for a mint from its value and a context of
// three actors (a key's usual replicas).
func (u *recordUpdate) sizeHint() int {
	switch {
	case u.mint != nil:
		v := u.mint.v
		return envelopeMax + 16 + 3*24 + 24 + len(v.ContentType) + len(v.Data)
	case u.hasRaw:
		return envelopeMax + len(u.raw.Bytes())
	case u.fn == nil:
		return envelopeMax + setSizeHint(u.in)
	}
	return 0
}

// setSizeHint estimates the encoded size of s, to allocate a record once
// (an underestimate only costs a copy).
func setSizeHint(s vclock.Set) int {
	n := 16 + len(s.Context)*24
	for _, sib := range s.Siblings {
		n += 24 + len(sib.Value.ContentType) + len(sib.Value.Data)
	}
	return n
}

// update runs a read-modify-write of k's record, or of its hint for hintFor
// when set, with fn computing the new set from the stored one. It returns
// the resulting set and, if it wrote, the set's encoding (nil otherwise).
func (r *Replica) update(ctx context.Context, hintFor string, k ring.Key, durable bool, fn updateFunc) (vclock.Set, []byte, error) {
	return r.updateRecord(ctx, hintFor, k, durable, &recordUpdate{fn: fn})
}

// updateRecordQueued is updateRecord of k's record (not a hint) through
// store.UpdateOwnedQueued: it returns once the write is queued, and commit
// (to be called exactly once when err is nil) waits for its commit and
// then reports the change to Config.Observer. The gate is held until
// commit returns, as updateRecord holds it until the write committed.
func (r *Replica) updateRecordQueued(ctx context.Context, k ring.Key, durable bool, u *recordUpdate) (vclock.Set, []byte, func() error, error) {
	if err := r.ep.ready(); err != nil {
		return vclock.Set{}, nil, nil, err
	}
	u.expireBefore = r.expireBefore()
	if err := r.cfg.Gate.enter(); err != nil {
		return vclock.Set{}, nil, nil, err
	}
	_, wait, err := r.st.UpdateAppendQueued(ctx, k, durable, u.sizeHint(), u)
	if err != nil {
		r.cfg.Gate.exit()
		if errors.Is(err, store.ErrNoChange) {
			return u.out, nil, noCommit, nil
		}
		return vclock.Set{}, nil, nil, err
	}
	commit := func() error {
		defer r.cfg.Gate.exit()
		if err := wait(); err != nil {
			// The minted set may already be on the other replicas while
			// this copy lacks its dot. No later write can reuse that
			// dot: a failed group commit leaves the store refusing every
			// write until it is reopened, the clean-close mark included,
			// so the reopen is unclean and every key mints under a
			// fresh epoch (Epochs, the KV679 rule).
			return err
		}
		if u.enc != nil && r.cfg.Observer != nil && u.oldDig != u.newDig {
			r.cfg.Observer(k, u.oldDig, u.newDig)
		}
		return nil
	}
	if u.enc == nil { // fn chose not to write
		return u.out, nil, commit, nil
	}
	return u.out, u.enc[u.setOff:], commit, nil
}

// updateRecord is update of u, whose fn (and merge) are set.
func (r *Replica) updateRecord(ctx context.Context, hintFor string, k ring.Key, durable bool, u *recordUpdate) (vclock.Set, []byte, error) {
	// OpenDir's own writes come before any record's (Epochs.ready).
	if err := r.ep.ready(); err != nil {
		return vclock.Set{}, nil, err
	}
	u.expireBefore = r.expireBefore()
	var err error
	if hintFor == "" {
		// Records only: a node whose data may be stale refuses them;
		// hints are judged by their age instead.
		if err := r.cfg.Gate.enter(); err != nil {
			return vclock.Set{}, nil, err
		}
		defer r.cfg.Gate.exit()
		_, err = r.st.UpdateAppend(ctx, k, durable, u.sizeHint(), u)
		if err == nil && u.enc != nil && r.cfg.Observer != nil && u.oldDig != u.newDig {
			r.cfg.Observer(k, u.oldDig, u.newDig)
		}
	} else {
		if r.cfg.AcceptHint != nil {
			if err := r.cfg.AcceptHint(hintFor, k); err != nil {
				return vclock.Set{}, nil, err
			}
		}
		_, _, err = r.st.UpdateHint(ctx, hintFor, k, durable, u.apply)
		if err == nil && u.enc != nil && r.cfg.HintStored != nil {
			r.cfg.HintStored(hintFor)
		}
	}
	if errors.Is(err, store.ErrNoChange) {
		return u.out, nil, nil
	}
	if err != nil {
		return vclock.Set{}, nil, err
	}
	if u.enc == nil { // fn chose not to write
		return u.out, nil, nil
	}
	return u.out, u.enc[u.setOff:], nil
}

// expireBefore is the deadline at or before which this replica writes a
// value as its tombstone: now less the margin.
func (r *Replica) expireBefore() int64 {
	return r.cfg.Now().Add(-r.cfg.ExpiryMargin).UnixNano()
}

// Expire turns the values of k's record whose deadline passed more than
// ExpiryMargin ago into their tombstones (vclock.Expire), for the reaper:
// the record then takes the path of deleted ones (confirm, grace, reap).
// It reports whether it changed the record and the new set digest.
func (r *Replica) Expire(ctx context.Context, k ring.Key) (changed bool, digest uint64, err error) {
	before := r.expireBefore()
	_, enc, err := r.update(ctx, "", k, false, func(mint uint64, cur vclock.Set, found bool) (uint64, vclock.Set, bool, error) {
		if !found {
			return mint, cur, false, nil
		}
		next, changed := vclock.Expire(cur, before)
		return mint, next, changed, nil
	})
	if err != nil || enc == nil {
		return false, 0, err
	}
	return true, SetBytesDigest(enc), nil
}

// Mint applies a client write at this node as coordinator (quorum.Replicas):
// it mints a new dot from the local copy of k (the hint for t.HintFor when
// set), drops what vctx covers and stores the result before returning.
func (r *Replica) Mint(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.mint(ctx, t, k, vctx, v, durable, false)
}

// MintSupersedingLocal is Mint with the context widened to the stored set's
// own (quorum.LocalSuperseder): the write replaces every sibling this
// replica holds, and only those.
func (r *Replica) MintSupersedingLocal(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.mint(ctx, t, k, vctx, v, durable, true)
}

// MintQueued is Mint, or with supersede MintSupersedingLocal, that returns
// once the write is queued in the local store (quorum.QueuedMinter):
// commit waits for its group commit and returns the outcome, and must be
// called exactly once when err is nil. A hint (t.HintFor set) is written
// before MintQueued returns; its commit is a no-op.
func (r *Replica) MintQueued(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable, supersede bool) (m quorum.Minted, commit func() error, err error) {
	if t.HintFor != "" {
		m, err = r.mint(ctx, t, k, vctx, v, durable, supersede)
		if err != nil {
			return m, nil, err
		}
		return m, noCommit, nil
	}
	return r.mintWith(vctx, v, durable, supersede, func(u *recordUpdate) (vclock.Set, []byte, func() error, error) {
		return r.updateRecordQueued(ctx, k, durable, u)
	})
}

// mintWith mints v into the set write stores (with updateRecord or
// updateRecordQueued), taking a fresh epoch lease when the current one
// runs low or is used up.
func (r *Replica) mintWith(vctx vclock.Vector, v vclock.Value, durable, supersede bool, write func(*recordUpdate) (vclock.Set, []byte, func() error, error)) (quorum.Minted, func() error, error) {
	mu := &struct { // one allocation for both
		recordUpdate
		args mintArgs
	}{args: mintArgs{vctx: vctx, v: v, supersede: supersede}}
	u := &mu.recordUpdate
	u.r, u.mint = r, &mu.args
	for attempt := 0; ; attempt++ {
		if r.ep.low() {
			if err := r.ep.extend(); err != nil {
				return quorum.Minted{}, nil, err
			}
		}
		set, enc, commit, err := write(u)
		if errors.Is(err, errEpochsExhausted) && attempt < 3 {
			continue
		}
		if err != nil {
			return quorum.Minted{}, nil, err
		}
		return quorum.Minted{Set: set, Encoded: enc, Dot: u.mint.dot, Durable: durable || r.cfg.Sync}, commit, nil
	}
}

// noCommit is the commit of a write that was already committed.
func noCommit() error { return nil }

// mintArgs is a mint's write: v with its context vctx, and supersede
// (see MintSupersedingLocal); dot is the dot minted.
type mintArgs struct {
	vctx      vclock.Vector
	v         vclock.Value
	supersede bool
	dot       vclock.Dot
}

// mintSet is the updateFunc of a mint: it mints a dot for a.v under this
// node's epoch (into a.dot), dropping what a.vctx covers (and, with
// a.supersede, every sibling stored here).
func (r *Replica) mintSet(a *mintArgs, mint uint64, cur vclock.Set, found bool) (uint64, vclock.Set, bool, error) {
	// The KV679 rule: mint under the stored epoch only if every
	// earlier dot of it is in this copy; otherwise a fresh one.
	if !found || !r.ep.valid(mint) {
		var err error
		if mint, err = r.ep.alloc(); err != nil {
			return 0, vclock.Set{}, false, err
		}
	}
	wctx := a.vctx
	if a.supersede && found {
		wctx = a.vctx.Merge(cur.Context)
	}
	var next vclock.Set
	next, a.dot = vclock.Update(cur, wctx, vclock.Actor{Node: r.cfg.Self, Epoch: mint}, a.v)
	if err := r.checkSet(next); err != nil {
		return 0, vclock.Set{}, false, err
	}
	return mint, next, true, nil
}

func (r *Replica) mint(ctx context.Context, t ring.Target, k ring.Key, vctx vclock.Vector, v vclock.Value, durable, supersede bool) (quorum.Minted, error) {
	m, _, err := r.mintWith(vctx, v, durable, supersede, func(u *recordUpdate) (vclock.Set, []byte, func() error, error) {
		set, enc, err := r.updateRecord(ctx, string(t.HintFor), k, durable, u)
		return set, enc, noCommit, err
	})
	return m, err
}

// checkSet refuses a write that leaves next past the client caps of
// Config.Siblings: the caps on what one key may hold sit here.
func (r *Replica) checkSet(next vclock.Set) error {
	return r.cfg.Siblings.CheckWrite(next)
}

// MergeSet merges s into this node's copy of k (a hint for hintFor when
// set). It reports whether the stored copy changed.
//
// A union past the merge caps of Config.Siblings keeps the newest siblings
// that fit and drops the others (siblings.Policy.Fit), reported to
// Config.Trimmed once the result is stored: never refused, so the
// replicas converge.
func (r *Replica) MergeSet(ctx context.Context, hintFor string, k ring.Key, s vclock.Set, durable bool) (changed bool, err error) {
	u := newMerge(r, s, false)
	defer freeMerge(u)
	return r.mergeSet(ctx, hintFor, k, durable, u)
}

// MergeSetChecked is MergeSet that also reports whether this node's copy
// of k before the merge had a context that s's context covers (clean),
// and when not, that context, encoded as a set without siblings
// (vclock.AppendContextOnly of the stored set): the replica's side of an
// overwrite's checked write (quorum.MergeChecker). It merges in every
// case. A copy that was absent (or unreadable) is covered. The check
// costs nothing in the common case, where s supersedes the stored set
// outright (vclock.Supersedes, which needs s's context to descend the
// stored one); otherwise it compares the decoded contexts.
func (r *Replica) MergeSetChecked(ctx context.Context, hintFor string, k ring.Key, s vclock.Set, durable bool) (clean bool, prior []byte, err error) {
	u := newMerge(r, s, true)
	defer freeMerge(u)
	if _, err := r.mergeSet(ctx, hintFor, k, durable, u); err != nil {
		return false, nil, err
	}
	return u.covered, u.prior, nil
}

// MergeEncoded is MergeSet, or with check MergeSetChecked (clean and
// prior are then its answers), of the set e encodes: a peer's bytes,
// checked by vclock.CheckSet. When e replaces the stored set outright
// (vclock.Supersedes) or k has no record, fits the merge caps and has no
// deadline at or before the expiry horizon, the record is written as
// the envelope and e's bytes, without decoding e: the very record
// MergeSet writes (TestMergeEncodedMatchesMergeSet). Otherwise e is
// decoded and merged as MergeSet does.
func (r *Replica) MergeEncoded(ctx context.Context, hintFor string, k ring.Key, e vclock.Encoded, durable, check bool) (clean bool, prior []byte, err error) {
	if !e.AsIs() || !r.fits(e) || plant.On(plant.MergeKeepsNewest) || plant.On(plant.MergeResurrects) { // plant: the bugs' merge
		s, err := e.Decode()
		if err != nil {
			return false, nil, err
		}
		u := newMerge(r, s, check)
		defer freeMerge(u)
		_, err = r.mergeSet(ctx, hintFor, k, durable, u)
		return u.covered, u.prior, err
	}
	u := newMerge(r, vclock.Set{}, check)
	defer freeMerge(u)
	u.raw, u.hasRaw = e, true
	_, err = r.mergeSet(ctx, hintFor, k, durable, u)
	return u.covered, u.prior, err
}

// fits reports whether e fits the merge caps of Config.Siblings, so
// that a merge keeping all of it keeps it whole (siblings.Policy.Fit).
func (r *Replica) fits(e vclock.Encoded) bool {
	return r.cfg.Siblings.FitsMerge(e.Siblings(), e.ValueBytes()+int64(e.Siblings())*siblings.Overhead)
}

// rawMerge writes the record of u.raw when it replaces the stored set
// (old) outright or fills an absent record, and nothing in it expires by
// u.expireBefore: the envelope, then the incoming bytes, which are what
// AppendTo would encode (Sync of the stored set and u.raw is u.raw). It
// reports false, having written nothing, otherwise.
func (u *recordUpdate) rawMerge(dst, old []byte, found bool) ([]byte, bool) {
	e := &u.raw
	var (
		mint   uint64
		oldSet []byte
	)
	if found {
		h, err := ParseHeader(old)
		if err != nil {
			return nil, false
		}
		if outright, _ := e.Supersedes(old[h.SetOff:]); !outright {
			return nil, false
		}
		mint, oldSet = h.Mint, old[h.SetOff:]
	}
	if u.expireBefore != 0 && e.ExpiresBy(u.expireBefore) {
		return nil, false
	}
	tomb := uint64(TombLive)
	if e.IsDeleted() {
		tomb = TombUnconfirmed
	}
	var dead int64
	if at, ok := e.DeadAt(); ok {
		dead = deadMillis(at)
	}
	set := e.Bytes()
	if need := envelopeMax + len(set); cap(dst)-len(dst) < need {
		dst = make([]byte, 0, need)
	}
	b := appendEnvelope(dst, mint, tomb, dead)
	u.setOff = len(b)
	b = append(b, set...)
	// Covered: Supersedes implies e's context descends the stored one;
	// an absent record is covered.
	u.out, u.enc, u.covered, u.prior = vclock.Set{}, b, true, nil
	u.oldDig = 0
	if found {
		u.oldDig = SetBytesDigest(oldSet)
	}
	u.newDig = SetBytesDigest(set)
	return b, true
}

// merges recycles the recordUpdates of merges: a replica makes one per
// replicated write, and nothing holds it once MergeSet returns (the store
// does not keep its Appender; prior and trimmed are slices of their own).
var merges = sync.Pool{New: func() any { return new(recordUpdate) }}

// newMerge returns the update merging s, checked (see MergeSetChecked) if
// check is set.
func newMerge(r *Replica, s vclock.Set, check bool) *recordUpdate {
	u := merges.Get().(*recordUpdate)
	u.r, u.in, u.check = r, s, check
	return u
}

// freeMerge recycles u, emptied so that the pool holds no set or record.
func freeMerge(u *recordUpdate) {
	*u = recordUpdate{}
	merges.Put(u)
}

// mergeSet runs the merge u (from newMerge) and reports whether it
// changed the stored copy.
func (r *Replica) mergeSet(ctx context.Context, hintFor string, k ring.Key, durable bool, u *recordUpdate) (bool, error) {
	if u.hasRaw || len(r.cfg.Siblings.Fit(u.in).Trimmed) == 0 {
		// u.in alone fits the merge caps, so when it supersedes the stored
		// set outright the merge is s itself: apply may skip the decode.
		u.merge = &u.in
	}
	set, enc, err := r.updateRecord(ctx, hintFor, k, durable, u)
	if err == nil && enc != nil && len(u.trimmed) > 0 && r.cfg.Trimmed != nil {
		r.cfg.Trimmed(k, hintFor, len(set.Siblings), u.trimmed)
	}
	return enc != nil, err
}

// ctxBufs recycles ViewSet's context-only sets: fn may not retain set.
var ctxBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// ViewSet calls fn with the encoded set of this node's copy of k, as
// ReadLocal would return it, to answer a replica read. Without hintFor it
// is the record's set as stored, neither decoded nor copied (the reader
// decodes, and so checks, it anyway). With ctxOnly (an overwrite's read,
// which needs the context only) the set may come without its siblings:
// the record's context is copied out as it is (vclock.AppendContextOnly)
// into a pooled buffer, the siblings are not decoded. Either way set is
// valid only during fn. found is false, and fn is not called, when this
// node holds nothing for k.
func (r *Replica) ViewSet(hintFor string, k ring.Key, ctxOnly bool, fn func(set []byte) error) (found bool, err error) {
	if hintFor != "" {
		s, found, err := r.ReadLocal(hintFor, k)
		if err != nil || !found {
			return false, err
		}
		if ctxOnly {
			s.Siblings = nil
		}
		b, err := s.MarshalBinary()
		if err != nil {
			return false, err
		}
		return true, fn(b)
	}
	if err := r.cfg.Gate.enter(); err != nil {
		return false, err
	}
	defer r.cfg.Gate.exit()
	err = r.st.View(k, func(b []byte) error {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		if !ctxOnly {
			return fn(b[h.SetOff:])
		}
		bp := ctxBufs.Get().(*[]byte)
		defer ctxBufs.Put(bp)
		if *bp, err = vclock.AppendContextOnly((*bp)[:0], b[h.SetOff:]); err != nil {
			return err
		}
		return fn(*bp)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// ReadLocal returns this node's copy of k: its record, synced with its hint
// for hintFor when set. found is false when it holds neither.
func (r *Replica) ReadLocal(hintFor string, k ring.Key) (s vclock.Set, found bool, err error) {
	if err := r.cfg.Gate.enter(); err != nil {
		return vclock.Set{}, false, err
	}
	defer r.cfg.Gate.exit()
	// The store's slice is decoded in place: DecodeSet copies what it keeps.
	err = r.st.View(k, func(b []byte) error {
		var err error
		_, s, err = DecodeRecord(b)
		return err
	})
	switch {
	case err == nil:
		found = true
	case !errors.Is(err, store.ErrNotFound):
		return vclock.Set{}, false, err
	}
	if hintFor != "" {
		b, err := r.st.GetHint(hintFor, k)
		switch {
		case err == nil:
			_, h, err := DecodeRecord(b)
			if err != nil {
				return vclock.Set{}, false, err
			}
			s, found = vclock.Sync(s, h), true
		case !errors.Is(err, store.ErrNotFound):
			return vclock.Set{}, false, err
		}
	}
	return s, found, nil
}

// Record is this node's stored record of a key as anti-entropy sees it:
// its envelope's tomb field and its set's bytes.
type Record struct {
	Found bool
	Tomb  uint64
	Set   []byte
}

// Confirmed reports a record of tombstones that every primary was known to
// hold: the reaper's business, not a repair's.
func (l Record) Confirmed() bool { return l.Found && Header{Tomb: l.Tomb}.Confirmed() }

// Record reads k's record. A record whose envelope does not parse reads as
// absent, as every write treats it.
func (r *Replica) Record(k ring.Key) (Record, error) {
	if err := r.cfg.Gate.enter(); err != nil {
		return Record{}, err
	}
	defer r.cfg.Gate.exit()
	b, err := r.st.Get(k)
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, err
	}
	h, err := ParseHeader(b)
	if err != nil {
		return Record{}, nil
	}
	return Record{Found: true, Tomb: h.Tomb, Set: b[h.SetOff:]}, nil
}

// Scan calls fn with the records of partition p whose key hashes are in
// [lo, hi], in key order, envelope included: rec and k.Key alias the
// store's memory, valid only during fn. fn's error stops the scan and is
// returned.
func (r *Replica) Scan(p uint32, lo, hi uint64, fn func(k ring.Key, rec []byte) error) error {
	if err := r.cfg.Gate.enter(); err != nil {
		return err
	}
	defer r.cfg.Gate.exit()
	return r.st.Scan(p, lo, hi, fn)
}

// ScanKeys calls fn with the records of partition p whose key is at or
// after from, in byte order of keys (the store's key index), envelope
// included: rec and k.Key alias the store's memory, valid only during fn.
// fn's error stops the walk and is returned.
func (r *Replica) ScanKeys(p uint32, from []byte, fn func(k ring.Key, rec []byte) error) error {
	if err := r.cfg.Gate.enter(); err != nil {
		return err
	}
	defer r.cfg.Gate.exit()
	return r.st.ScanKeys(p, from, fn)
}

// Partitions lists the partitions that hold records.
func (r *Replica) Partitions() ([]uint32, error) { return r.st.Partitions() }

// ConfirmTomb notes at time at, in k's record, that every primary holds
// its set, if the record still holds that set (of digest digest) all
// tombstones and unconfirmed. It reports whether it did.
func (r *Replica) ConfirmTomb(ctx context.Context, k ring.Key, digest uint64, at time.Time) (bool, error) {
	if err := r.cfg.Gate.enter(); err != nil {
		return false, err
	}
	defer r.cfg.Gate.exit()
	done := false
	_, err := r.st.UpdateOwned(ctx, k, false, func(old []byte, found bool) ([]byte, error) {
		if !found {
			return nil, store.ErrNoChange
		}
		h, err := ParseHeader(old)
		if err != nil || SetBytesDigest(old[h.SetOff:]) != digest || h.Tomb == TombLive || h.Confirmed() {
			return nil, store.ErrNoChange
		}
		b, err := WithTomb(old, TombConfirmed(at.UnixMilli()))
		if err != nil {
			return nil, store.ErrNoChange
		}
		done = true
		return b, nil
	})
	return done && err == nil, err
}

// Reap deletes k's record if it still holds the confirmed set of digest
// digest, and tells the observer. It reports whether it did.
func (r *Replica) Reap(ctx context.Context, k ring.Key, digest uint64) (bool, error) {
	return r.deleteIf(ctx, k, func(old []byte) bool {
		h, err := ParseHeader(old)
		return err == nil && SetBytesDigest(old[h.SetOff:]) == digest && h.Confirmed()
	})
}

// DropIfUnchanged deletes k's record if it still is rec (envelope
// included), and tells the observer. It reports whether it did.
func (r *Replica) DropIfUnchanged(ctx context.Context, k ring.Key, rec []byte) (bool, error) {
	return r.deleteIf(ctx, k, func(old []byte) bool { return bytes.Equal(old, rec) })
}

func (r *Replica) deleteIf(ctx context.Context, k ring.Key, cond func(old []byte) bool) (bool, error) {
	if err := r.cfg.Gate.enter(); err != nil {
		return false, err
	}
	defer r.cfg.Gate.exit()
	var dig uint64
	done := false
	_, err := r.st.UpdateOwned(ctx, k, false, func(old []byte, found bool) ([]byte, error) {
		if !found || !cond(old) {
			return nil, store.ErrNoChange
		}
		if set := SetBytes(old); set != nil {
			dig = SetBytesDigest(set)
		}
		done = true
		return nil, nil // delete
	})
	if err != nil || !done {
		return false, err
	}
	if dig != 0 && r.cfg.Observer != nil {
		r.cfg.Observer(k, dig, 0)
	}
	return true, nil
}

// DropAll drops every record and hint and moves the epoch floor past every
// epoch handed out (the records that made them safe to reuse are gone).
// The caller closes the Gate first: DropAll does not pass it.
func (r *Replica) DropAll(ctx context.Context) error {
	parts, err := r.st.Partitions()
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := r.st.DropPartition(p); err != nil {
			return fmt.Errorf("drop partition %d: %w", p, err)
		}
	}
	for _, t := range r.st.HintTargets() {
		if _, err := r.st.DropHints(ctx, t); err != nil {
			return fmt.Errorf("drop hints for %s: %w", t, err)
		}
	}
	return r.ep.invalidateAll()
}
