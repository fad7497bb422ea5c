package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

// A stored record (and a stored hint) is an envelope around the encoded
// sibling set: a format byte, the epoch under which this node last minted a
// dot for the key (0: never), in format 2 whether the set is all tombstones
// and since when every primary is known to hold it (ae_record.go), then the
// vclock encoding. The envelope is local bookkeeping: it never leaves the
// node and is not part of the set's digest, so replicas compare equal when
// their sets are. Format 1 records are still read; every write produces
// format 2.
const recordFormat = 2

func encodeRecord(mint uint64, s vclock.Set) ([]byte, error) {
	return appendRecord(make([]byte, 0, 16+64), mint, s)
}

func decodeRecord(b []byte) (mint uint64, s vclock.Set, err error) {
	h, err := parseRecordHeader(b)
	if err != nil {
		return 0, s, err
	}
	s, err = vclock.DecodeSet(b[h.setOff:])
	if err != nil {
		return 0, s, fmt.Errorf("record: %w", err)
	}
	return h.mint, s, nil
}

// Meta names in the store.
const (
	metaNodeID    = "node.id"
	metaEpochHW   = "epoch.hw"
	metaEpochFrom = "epoch.valid"
	metaClean     = "clean"
	metaCluster   = "cluster"
)

// epochLease is how many epochs are reserved with each persisted high-water
// mark: one fsynced meta write per lease.
const epochLease = 1 << 16

var errEpochsExhausted = errors.New("epoch lease exhausted")

// epochs hands out actor epochs. The rule (package vclock): a node mints a
// dot for a key only under an epoch all of whose earlier dots for that key are
// in its local copy. A record remembers the epoch its node minted under; that
// epoch is reused while it is at least validFrom. A key with no local copy,
// or whose epoch predates validFrom (set at every unclean start, when the
// local copy may have lost recent writes), gets a fresh epoch, never handed
// out before because the high-water mark is persisted before use. A new data
// directory starts at a random high-water mark, so a wiped node does not
// reuse its old incarnation's epochs either.
type epochs struct {
	mu        sync.Mutex
	next, hw  uint64
	validFrom uint64
	st        *store.Store
}

func getUint64Meta(st *store.Store, name string) (uint64, bool, error) {
	b, err := st.GetMeta(name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("meta %s: %d bytes, want 8", name, len(b))
	}
	return binary.BigEndian.Uint64(b), true, nil
}

func putUint64Meta(st *store.Store, name string, v uint64) error {
	return st.PutMeta(name, binary.BigEndian.AppendUint64(nil, v))
}

// openEpochs loads the epoch state. fresh is true for a new data directory;
// unclean is true when the last run did not close cleanly.
func openEpochs(st *store.Store, randomBase uint64, unclean bool) (*epochs, error) {
	hw, ok, err := getUint64Meta(st, metaEpochHW)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Keep the top bits clear so the counter never wraps.
		hw = randomBase>>2 | 1
	}
	from, _, err := getUint64Meta(st, metaEpochFrom)
	if err != nil {
		return nil, err
	}
	e := &epochs{next: hw, hw: hw, validFrom: from, st: st}
	if unclean || !ok {
		e.validFrom = hw
		if err := putUint64Meta(st, metaEpochFrom, hw); err != nil {
			return nil, err
		}
	}
	if err := e.extend(); err != nil {
		return nil, err
	}
	return e, nil
}

// extend persists a new high-water mark. Callers hold no store key lock.
func (e *epochs) extend() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hw-e.next > epochLease/2 {
		return nil
	}
	hw := e.hw + epochLease
	if err := putUint64Meta(e.st, metaEpochHW, hw); err != nil {
		return fmt.Errorf("persist epoch lease: %w", err)
	}
	e.hw = hw
	return nil
}

// alloc returns a fresh epoch from the persisted lease without blocking.
func (e *epochs) alloc() (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.next >= e.hw {
		return 0, errEpochsExhausted
	}
	v := e.next
	e.next++
	return v, nil
}

func (e *epochs) low() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hw-e.next < epochLease/2
}

func (e *epochs) valid(mint uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return mint != 0 && mint >= e.validFrom && mint < e.hw
}

// RecordObserver learns of every committed change to a record of this
// node's replica, with the old and new set digests (0 for absent). It keeps
// the Merkle trees current. It must be quick and not block.
type RecordObserver func(k quorum.Key, oldDigest, newDigest uint64)

// replica is this node's own copy of the data: records it holds as a
// primary and hints it holds as a fallback. Every write to it goes through
// here, so the Merkle trees see them all.
type replica struct {
	self    string
	st      *store.Store
	ep      *epochs
	sync    bool
	observe RecordObserver
	// acceptHint decides whether a new hint for target may be stored (the
	// per-target caps); nil accepts all.
	acceptHint func(target string, k quorum.Key) error
	// hintStored, if set, learns of each hint write that changed the
	// stored hint (metrics).
	hintStored func(target string)
	// gate, if set, closes the records while they may be stale or are
	// being dropped (ae_stale.go); nil is always open.
	gate *dataGate
}

func storeKey(k quorum.Key) store.Key {
	return store.Key{Partition: k.Partition, Hash: k.Hash, Key: k.Key}
}

// recordUpdate is one read-modify-write of a record or hint through
// replica.update: its set function and what the store's callback learned.
// One value per update holds it all, so the callback's state costs one
// allocation rather than one per captured variable.
type recordUpdate struct {
	fn func(mint uint64, cur vclock.Set, found bool) (newMint uint64, next vclock.Set, write bool, err error)

	out    vclock.Set // the set after the update (the stored one if unchanged)
	enc    []byte     // the record written; nil if nothing was
	setOff int        // offset of the set's encoding in enc
	// oldDig and newDig are the set digests before and after (0: absent),
	// computed from the encodings (setBytesDigest), not by re-encoding.
	oldDig, newDig uint64
}

// apply is the store.UpdateFunc of u.
func (u *recordUpdate) apply(old []byte, found bool) ([]byte, error) {
	u.enc = nil
	var (
		mint   uint64
		cur    vclock.Set
		oldSet []byte
	)
	if found {
		h, err := parseRecordHeader(old)
		if err == nil {
			oldSet = old[h.setOff:]
			cur, err = vclock.DecodeSet(oldSet)
			mint = h.mint
		}
		if err != nil {
			// A record we cannot read must not block repairs forever:
			// treat it as absent (the merge brings the replicas' copy);
			// the mint epoch is then untrusted.
			found, mint, cur, oldSet = false, 0, vclock.Set{}, nil
		}
	}
	newMint, next, write, err := u.fn(mint, cur, found)
	if err != nil {
		return nil, err
	}
	if !write {
		u.out = cur
		return nil, store.ErrNoChange
	}
	b, err := appendRecord(make([]byte, 0, 2*binary.MaxVarintLen64+1+setSizeHint(next)), newMint, next)
	if err != nil {
		return nil, err
	}
	h, err := parseRecordHeader(b)
	if err != nil {
		return nil, err // not reached: appendRecord wrote the header
	}
	off := h.setOff
	u.out, u.enc, u.setOff = next, b, off
	u.oldDig = 0
	if found {
		u.oldDig = setBytesDigest(oldSet)
	}
	u.newDig = setBytesDigest(b[off:])
	return b, nil
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
// when set, with fn computing the new set from the stored one. fn returns
// write=false to write nothing. It returns the resulting set and, if it
// wrote, the set's encoding (nil otherwise).
func (r *replica) update(ctx context.Context, hintFor string, k quorum.Key, durable bool,
	fn func(mint uint64, cur vclock.Set, found bool) (newMint uint64, next vclock.Set, write bool, err error)) (vclock.Set, []byte, error) {
	u := &recordUpdate{fn: fn}
	var err error
	if hintFor == "" {
		// Records only: a node whose data may be stale refuses them
		// (ae_stale.go); hints are judged by their age instead.
		if err := r.gate.enter(); err != nil {
			return vclock.Set{}, nil, err
		}
		defer r.gate.exit()
	}
	if hintFor != "" {
		if r.acceptHint != nil {
			if err := r.acceptHint(hintFor, k); err != nil {
				return vclock.Set{}, nil, err
			}
		}
		_, _, err = r.st.UpdateHint(ctx, hintFor, storeKey(k), durable, u.apply)
		if err == nil && u.enc != nil && r.hintStored != nil {
			r.hintStored(hintFor)
		}
	} else {
		_, _, err = r.st.Update(ctx, storeKey(k), durable, u.apply)
		if err == nil && u.enc != nil && r.observe != nil && u.oldDig != u.newDig {
			r.observe(k, u.oldDig, u.newDig)
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

// encodedSetLen returns the length of the set encoding inside a record
// whose header parses (0 otherwise).
func encodedSetLen(rec []byte) int {
	h, err := parseRecordHeader(rec)
	if err != nil {
		return 0
	}
	return len(rec) - h.setOff
}

// Mint applies a client write at this node as coordinator (quorum.Replicas).
func (r *replica) Mint(ctx context.Context, t ring.Target, k quorum.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.mint(ctx, t, k, vctx, v, durable, false)
}

// MintSupersedingLocal is Mint with the context widened to the stored set's
// own (quorum.LocalSuperseder): the write replaces every sibling this
// replica holds, and only those.
func (r *replica) MintSupersedingLocal(ctx context.Context, t ring.Target, k quorum.Key, vctx vclock.Vector, v vclock.Value, durable bool) (quorum.Minted, error) {
	return r.mint(ctx, t, k, vctx, v, durable, true)
}

func (r *replica) mint(ctx context.Context, t ring.Target, k quorum.Key, vctx vclock.Vector, v vclock.Value, durable, supersede bool) (quorum.Minted, error) {
	var dot vclock.Dot
	for attempt := 0; ; attempt++ {
		if r.ep.low() {
			if err := r.ep.extend(); err != nil {
				return quorum.Minted{}, err
			}
		}
		set, enc, err := r.update(ctx, string(t.HintFor), k, durable, func(mint uint64, cur vclock.Set, found bool) (uint64, vclock.Set, bool, error) {
			if !found || !r.ep.valid(mint) {
				var err error
				if mint, err = r.ep.alloc(); err != nil {
					return 0, vclock.Set{}, false, err
				}
			}
			wctx := vctx
			if supersede && found {
				wctx = vctx.Merge(cur.Context)
			}
			var next vclock.Set
			next, dot = vclock.Update(cur, wctx, vclock.Actor{Node: r.self, Epoch: mint}, v)
			if size := len(v.Data) + len(cur.Siblings)*64; size > maxSetBytes || setDataBytes(next) > maxSetBytes {
				return 0, vclock.Set{}, false, ErrSetTooLarge
			}
			return mint, next, true, nil
		})
		if errors.Is(err, errEpochsExhausted) && attempt < 3 {
			continue
		}
		if err != nil {
			return quorum.Minted{}, err
		}
		return quorum.Minted{Set: set, Encoded: enc, Dot: dot, Durable: durable || r.sync}, nil
	}
}

// MergeSet merges s into this node's copy of k (a hint for hintFor when
// set). It reports whether the stored copy changed.
func (r *replica) MergeSet(ctx context.Context, hintFor string, k quorum.Key, s vclock.Set, durable bool) (changed bool, err error) {
	_, enc, err := r.update(ctx, hintFor, k, durable, func(mint uint64, cur vclock.Set, found bool) (uint64, vclock.Set, bool, error) {
		next := vclock.Sync(cur, s)
		next = plant.Merge(cur, s, next) // plant: MergeKeepsNewest, MergeResurrects
		if found && next.Equal(cur) {
			return mint, cur, false, nil
		}
		return mint, next, true, nil
	})
	return enc != nil, err
}

// viewRaw calls fn with the encoded set of this node's record of k (not
// its hints) as stored, without decoding or copying it: set is the
// store's own slice, valid only during fn. found is false, and fn is not
// called, when there is no record.
func (r *replica) viewRaw(k quorum.Key, fn func(set []byte) error) (found bool, err error) {
	if err := r.gate.enter(); err != nil {
		return false, err
	}
	defer r.gate.exit()
	err = r.st.View(storeKey(k), func(b []byte) error {
		h, err := parseRecordHeader(b)
		if err != nil {
			return err
		}
		return fn(b[h.setOff:])
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
func (r *replica) ReadLocal(hintFor string, k quorum.Key) (s vclock.Set, found bool, err error) {
	if err := r.gate.enter(); err != nil {
		return vclock.Set{}, false, err
	}
	defer r.gate.exit()
	// The store's slice is decoded in place: DecodeSet copies what it keeps.
	err = r.st.View(storeKey(k), func(b []byte) error {
		var err error
		_, s, err = decodeRecord(b)
		return err
	})
	switch {
	case err == nil:
		found = true
	case !errors.Is(err, store.ErrNotFound):
		return vclock.Set{}, false, err
	}
	if hintFor != "" {
		b, err := r.st.GetHint(hintFor, storeKey(k))
		switch {
		case err == nil:
			_, h, err := decodeRecord(b)
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

// maxSetBytes bounds one key's encoded sibling set. A write that would make
// it larger is refused (the client must resolve siblings with a context);
// it keeps every set within one store value and one transport frame.
const maxSetBytes = 12 << 20

// ErrSetTooLarge refuses a write whose key would hold more than maxSetBytes
// of siblings.
var ErrSetTooLarge = errors.New("the key's siblings would exceed the size limit; write with a context that resolves them")

func setDataBytes(s vclock.Set) int {
	n := 0
	for _, sb := range s.Siblings {
		n += len(sb.Value.Data) + len(sb.Value.ContentType) + 64
	}
	return n
}

// ReadLocal returns this node's own stored copy of key (its record, not its
// hints), without a quorum: for operators, tests and the `local` read.
func (n *Node) ReadLocal(key []byte) (s vclock.Set, found bool, err error) {
	return n.rep.ReadLocal("", n.coord.KeyOf(n.Ring(), key))
}
