package oracle

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// ID names one write: 1 for the first write an Oracle was told of, then
// 2, 3, ... in the order of Invoke. 0 is never issued.
type ID uint64

// Outcome is what the client was told about a write.
type Outcome uint8

// Write outcomes.
const (
	// Pending: sent, no answer yet.
	Pending Outcome = iota
	// Acked: the store acknowledged it.
	Acked
	// Failed: the store answered with an error. Under Dynamo semantics
	// the write may still land (nothing is rolled back).
	Failed
	// Unknown: no answer (timeout, connection lost): it may have landed.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Acked:
		return "acked"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Limits and defaults.
const (
	// DefaultHistory is the default Config.History.
	DefaultHistory = 8
	// MaxHistory caps Config.History.
	MaxHistory = 1024
	// DefaultMaxListed is the default Config.MaxListed.
	DefaultMaxListed = 100
	// MaxListedLimit caps Config.MaxListed.
	MaxListedLimit = 1 << 20
)

// ErrInvalidConfig is wrapped by Config.Validate.
var ErrInvalidConfig = errors.New("invalid oracle config")

// Config configures an Oracle.
type Config struct {
	// Run is the nonce every tag carries: values of other runs (other
	// nonces) are foreign and ignored. Pick it at random per run, so a
	// rerun against the same keys is not confused with the last one.
	Run uint32
	// History is how many of a key's latest acknowledged writes are
	// scored for k-staleness and kept in full whatever else happens. Zero
	// means DefaultHistory; at most MaxHistory.
	History int
	// KeepAll keeps every write in memory (exact checks for old values;
	// memory grows with the number of writes). For tests.
	KeepAll bool
	// MaxListed caps how many lost and how many resurrected writes are
	// listed individually (all are counted). Zero means DefaultMaxListed;
	// negative lists none; at most MaxListedLimit.
	MaxListed int
	// TombstonesHidden says that answers cannot show tombstones (the HTTP
	// API answers 404 for a key whose siblings are all tombstones): an
	// acknowledged tombstone absent from the final read is then not lost.
	TombstonesHidden bool
	// ListMissed fills Verdict.Missed. It allocates per stale read.
	ListMissed bool
}

// Validate checks ranges; it does not change c.
func (c Config) Validate() error {
	if c.History < 0 || c.History > MaxHistory {
		return fmt.Errorf("history %d: must be in [0, %d]: %w", c.History, MaxHistory, ErrInvalidConfig)
	}
	if c.MaxListed > MaxListedLimit {
		return fmt.Errorf("max listed %d: at most %d: %w", c.MaxListed, MaxListedLimit, ErrInvalidConfig)
	}
	return nil
}

// Write describes a write as it is sent.
type Write struct {
	Key string
	// Context is the context the write carries: the one an earlier
	// answer for the same key gave (Observe, Read). The zero Context is a
	// blind write. A Context of another key or Oracle counts as blind.
	Context Context
	// Tombstone marks a delete.
	Tombstone bool
	// Invoke is when it was sent.
	Invoke time.Duration
	// Coord is the node it was sent through (for t-visibility and lists).
	Coord int
}

// Op is a write the oracle issued an ID for; pass it to Complete and
// AppendTag.
type Op struct {
	k  *key
	id ID
}

// ID is the write's id.
func (op Op) ID() ID { return op.id }

// Key is the key written ("" for the zero Op).
func (op Op) Key() string {
	if op.k == nil {
		return ""
	}
	return op.k.name
}

// Context is what a client holds after an answer: the writes the answer
// showed it. Pass it with the next write of the same key.
type Context struct {
	k   *key
	ids []ID // sorted, distinct; shared, never modified
}

// IDs returns the writes the answer showed, sorted.
func (c Context) IDs() []ID { return slices.Clone(c.ids) }

// Read is a completed read.
type Read struct {
	Key string
	// Values are the data of the values the read returned (tombstones
	// too, when the API shows them), in any order. Not retained.
	Values [][]byte
	// Invoke and Done are when the read was sent and answered.
	Invoke, Done time.Duration
	// Coord is the node it was sent through.
	Coord int
}

// Verdict is the oracle's judgement of one read.
type Verdict struct {
	// Values counts the values returned (foreign ones included).
	Values int
	// Prior is true when some acknowledged write of the key was among its
	// last History and acknowledged before the read began (H(r) not empty).
	Prior bool
	// Stale: the read missed a write of its frontier F(r).
	Stale bool
	// K is its k-staleness: the writes of H(r) it missed.
	K int
	// KCapped: K equals len(H(r)) and older acknowledged writes exist, so
	// the read may be further behind than K says.
	KCapped bool
	// Latest is the newest write of H(r) (0 when Prior is false), with
	// when it was acknowledged, its coordinator and whether the read
	// covered it: the t-visibility sample.
	Latest      ID
	LatestAck   time.Duration
	LatestCoord int
	LatestSeen  bool
	// Resurrected counts writes this answer newly showed resurrected.
	Resurrected int
	// Missed lists, with Config.ListMissed, the writes of H(r) and F(r)
	// the read missed, sorted.
	Missed []ID
}

// Lost is an acknowledged write the final read neither returned nor
// showed superseded.
type Lost struct {
	Key       string        `json:"key"`
	ID        ID            `json:"id"`
	Tombstone bool          `json:"tombstone,omitempty"`
	Coord     int           `json:"coord"`
	Invoke    time.Duration `json:"invoke_ns"`
	Ack       time.Duration `json:"ack_ns"`
}

// Resurrection is a superseded write an answer returned.
type Resurrection struct {
	Key string `json:"key"`
	ID  ID     `json:"id"`
	// By is a write that supersedes it (directly or through writes it
	// superseded); 0 when the write was dropped from memory.
	By ID `json:"by,omitempty"`
	// Final is true when the final read returned it (else an answer
	// returned it together with By).
	Final bool `json:"final,omitempty"`
}

// Result is the oracle's summary.
type Result struct {
	Writes  int64 `json:"writes"`  // writes invoked
	Acked   int64 `json:"acked"`   // acknowledged
	Failed  int64 `json:"failed"`  // answered with an error
	Unknown int64 `json:"unknown"` // no answer
	Pending int64 `json:"pending"` // never completed
	// Indeterminate counts Failed or Unknown writes an answer showed.
	Indeterminate int64 `json:"indeterminate"`
	// Lost counts lost writes; LostWrites lists the first MaxListed.
	Lost       int64  `json:"lost"`
	LostWrites []Lost `json:"lost_writes,omitempty"`
	// Resurrected counts resurrected writes; Resurrections lists the
	// first MaxListed.
	Resurrected   int64          `json:"resurrected"`
	Resurrections []Resurrection `json:"resurrections,omitempty"`
	// Unexpected counts values with this run's tag the oracle never
	// issued for the key they came back under.
	Unexpected int64 `json:"unexpected"`
	// Foreign counts values without this run's tag (ignored).
	Foreign int64 `json:"foreign"`
	// FinalKeys counts keys whose final read was judged.
	FinalKeys int64 `json:"final_keys"`
	// Unverified counts acknowledged writes of keys whose final read
	// failed or never ran: neither lost nor kept.
	Unverified int64 `json:"unverified"`
}

const noTime = time.Duration(math.MaxInt64)

const (
	finalNone uint8 = iota
	finalChecked
	finalFailed
)

type key struct {
	name  string
	hash  uint32
	nodes []*node // kept writes, sorted by id
	// recent holds the ids of the last History acknowledged writes, a
	// circular buffer once full (next is the slot to overwrite).
	recent    []ID
	next      int
	acked     int64
	final     uint8
	compactAt int
}

type node struct {
	id     ID
	past   []ID // the writes its context's answer returned; shared, read only
	succ   []ID // writes whose context's answer returned it
	invoke time.Duration
	ack    time.Duration
	supAck time.Duration // earliest ack of an acknowledged write superseding it; noTime if none
	supBy  ID            // the write whose landing or ack first marked it superseded
	coord  int32
	ret    uint32 // == Oracle.retGen: returned by the answer being judged
	seen   uint32 // == Oracle.searchGen: visited by the current search
	resp   uint32 // == Oracle.retGen: a tombstone candidate the read respects
	out    Outcome
	tomb   bool
	// observed: an answer showed it. supAny: a landed or acknowledged
	// write supersedes it. resurrected: already counted as such.
	observed, supAny, resurrected bool
}

// Oracle records a history and judges it. Create it with New. It is not
// safe for concurrent use.
type Oracle struct {
	cfg  Config
	keys map[string]*key
	next ID

	retGen, searchGen uint32
	stack             []ID
	cands             []*node
	covered           []bool

	r Result
}

// New returns an empty Oracle.
func New(cfg Config) (*Oracle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.History == 0 {
		cfg.History = DefaultHistory
	}
	if cfg.MaxListed == 0 {
		cfg.MaxListed = DefaultMaxListed
	}
	return &Oracle{cfg: cfg, keys: make(map[string]*key)}, nil
}

func (k *key) find(id ID) *node {
	i, ok := slices.BinarySearchFunc(k.nodes, id, func(n *node, id ID) int { return cmp.Compare(n.id, id) })
	if !ok {
		return nil
	}
	return k.nodes[i]
}

// AppendTag appends the tag of write op (TagLen bytes) to dst. The value
// sent must start with it; what follows is free.
func (o *Oracle) AppendTag(dst []byte, op Op) []byte {
	return appendTag(dst, o.cfg.Run, op.k.hash, op.id)
}

// Invoke records a write as it is sent and returns its Op. It panics after
// 2^48 writes (the tag's width), which no run reaches.
func (o *Oracle) Invoke(w Write) Op {
	k := o.keys[w.Key]
	if k == nil {
		k = &key{name: w.Key, hash: keyHash(w.Key), compactAt: 2*o.cfg.History + 8}
		o.keys[w.Key] = k
	}
	if o.next >= maxTagID {
		panic("oracle: more than 2^48 writes")
	}
	o.next++
	n := &node{id: o.next, invoke: w.Invoke, ack: noTime, supAck: noTime, coord: int32(w.Coord), tomb: w.Tombstone}
	if w.Context.k == k {
		n.past = w.Context.ids
		for _, p := range n.past {
			if pn := k.find(p); pn != nil {
				pn.succ = append(pn.succ, n.id)
			}
		}
	}
	k.nodes = append(k.nodes, n)
	o.r.Writes++
	return Op{k: k, id: n.id}
}

// Complete records a write's outcome; at is when it was acknowledged
// (ignored for the other outcomes). Only the first Complete of a write
// counts; Pending is ignored.
func (o *Oracle) Complete(op Op, out Outcome, at time.Duration) {
	if op.k == nil || out == Pending {
		return
	}
	k := op.k
	n := k.find(op.id)
	if n == nil || n.out != Pending {
		return
	}
	n.out = out
	switch out {
	case Acked:
		o.r.Acked++
		k.acked++
		n.ack = at
		if len(k.recent) < o.cfg.History {
			k.recent = append(k.recent, n.id)
		} else {
			k.recent[k.next] = n.id
			k.next = (k.next + 1) % len(k.recent)
		}
		o.markAck(k, n.past, at, n.id)
	case Failed, Unknown:
		if out == Failed {
			o.r.Failed++
		} else {
			o.r.Unknown++
		}
		if n.observed {
			o.r.Indeterminate++
		}
	}
	if !o.cfg.KeepAll && len(k.nodes) >= k.compactAt {
		o.compact(k)
	}
}

// markAck records that a write acknowledged at t supersedes ids and,
// transitively, their Past. Invariant kept: a node's Past has supAck at
// most its own.
func (o *Oracle) markAck(k *key, ids []ID, t time.Duration, by ID) {
	st := append(o.stack[:0], ids...)
	for len(st) > 0 {
		id := st[len(st)-1]
		st = st[:len(st)-1]
		n := k.find(id)
		if n == nil || n.supAck <= t {
			continue // dropped nodes were acknowledged-superseded already
		}
		n.supAck = t
		if !n.supAny {
			n.supAny, n.supBy = true, by
		}
		st = append(st, n.past...)
	}
	o.stack = st
}

// markAny records that a landed write supersedes ids and their Past.
func (o *Oracle) markAny(k *key, ids []ID, by ID) {
	st := append(o.stack[:0], ids...)
	for len(st) > 0 {
		id := st[len(st)-1]
		st = st[:len(st)-1]
		n := k.find(id)
		if n == nil || n.supAny {
			continue
		}
		n.supAny, n.supBy = true, by
		st = append(st, n.past...)
	}
	o.stack = st
}

// compact drops the writes no later judgement needs: superseded by an
// acknowledged write, completed, older than every write in recent and
// every write still pending (which may join recent), and not already
// counted resurrected (so they are not counted twice).
// Every write a search can reach from a kept candidate stays (its
// descendants are newer, or not acknowledged-superseded either).
func (o *Oracle) compact(k *key) {
	// A write still pending may be acknowledged later and join recent:
	// its descendants must stay too.
	start := ID(math.MaxUint64)
	if len(k.recent) > 0 {
		start = slices.Min(k.recent)
	}
	for _, n := range k.nodes {
		if n.out == Pending {
			start = min(start, n.id)
			break // nodes are sorted by id
		}
	}
	kept := k.nodes[:0]
	for _, n := range k.nodes {
		if n.out == Pending || n.supAck == noTime || n.id >= start || n.resurrected {
			kept = append(kept, n)
		}
	}
	clear(k.nodes[len(kept):])
	k.nodes = kept
	k.compactAt = max(2*len(kept), 2*o.cfg.History+8)
}

// parse returns the ids of this run's writes of k among values, sorted and
// distinct, counting foreign and unexpected values. k may be nil.
func (o *Oracle) parse(k *key, name string, values [][]byte) []ID {
	var ids []ID
	for _, v := range values {
		run, kh, id, ok := ParseTag(v)
		switch {
		case !ok || run != o.cfg.Run:
			o.r.Foreign++
		case k == nil || kh != k.hash || id == 0 || id > o.next:
			o.r.Unexpected++
		default:
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Observe records an answer that showed values without being a scored
// read: a write's answer (the key's siblings after it) or any other. It
// returns the Context a write may carry next. Values are not retained.
func (o *Oracle) Observe(key string, values [][]byte) Context {
	c, _ := o.observe(o.keys[key], key, values)
	return c
}

// observe lands what an answer returned and checks it for writes returned
// together with a successor. It stamps the returned nodes with a fresh
// retGen and returns the Context and the resurrections it found.
func (o *Oracle) observe(k *key, name string, values [][]byte) (Context, int) {
	ids := o.parse(k, name, values)
	o.retGen++
	if k == nil || len(ids) == 0 {
		return Context{k: k}, 0
	}
	var maxRet ID
	for _, id := range ids {
		n := k.find(id)
		if n == nil {
			continue // dropped: acknowledged-superseded long ago
		}
		n.ret = o.retGen
		maxRet = max(maxRet, id)
		if !n.observed {
			n.observed = true
			if n.out == Failed || n.out == Unknown {
				o.r.Indeterminate++
			}
			o.markAny(k, n.past, n.id)
		}
	}
	found := 0
	for _, id := range ids {
		n := k.find(id)
		if n == nil || !n.supAny || n.resurrected {
			continue
		}
		if by := o.search(k, n, maxRet, func(m *node) bool { return m.ret == o.retGen }); by != nil {
			o.resurrect(k, n.id, by.id, false)
			n.resurrected = true
			found++
		}
	}
	return Context{k: k, ids: ids}, found
}

func (o *Oracle) resurrect(k *key, id, by ID, final bool) {
	o.r.Resurrected++
	if len(o.r.Resurrections) < o.cfg.MaxListed {
		o.r.Resurrections = append(o.r.Resurrections, Resurrection{Key: k.name, ID: id, By: by, Final: final})
	}
}

// search walks the writes that supersede from (its successors,
// transitively), skipping ids above limit (ids grow along successor
// edges), and returns the first for which hit holds, or nil.
func (o *Oracle) search(k *key, from *node, limit ID, hit func(*node) bool) *node {
	o.searchGen++
	gen := o.searchGen
	st := append(o.stack[:0], from.succ...)
	defer func() { o.stack = st[:0] }()
	for len(st) > 0 {
		id := st[len(st)-1]
		st = st[:len(st)-1]
		if id > limit {
			continue
		}
		n := k.find(id)
		if n == nil || n.seen == gen {
			continue
		}
		n.seen = gen
		if hit(n) {
			return n
		}
		st = append(st, n.succ...)
	}
	return nil
}

// Read records a completed read, judges it and returns the Context it
// gave. Values are not retained.
func (o *Oracle) Read(r Read) (Context, Verdict) {
	k := o.keys[r.Key]
	ctx, res := o.observe(k, r.Key, r.Values)
	v := Verdict{Values: len(r.Values), Resurrected: res}
	if k == nil {
		return ctx, v
	}
	gen := o.retGen
	var maxRet ID
	for _, id := range ctx.ids {
		maxRet = max(maxRet, id)
	}

	// Candidates: H(r) first, then the rest of F(r).
	cands := o.cands[:0]
	for _, id := range k.recent {
		if n := k.find(id); n != nil && n.ack < r.Invoke {
			cands = append(cands, n)
		}
	}
	h := len(cands)
	o.searchGen++
	for _, n := range cands {
		n.seen = o.searchGen
	}
	for _, n := range k.nodes {
		if n.out == Acked && n.ack < r.Invoke && n.supAck >= r.Invoke && n.seen != o.searchGen {
			cands = append(cands, n)
		}
	}
	o.cands = cands
	if h == 0 && len(cands) == 0 {
		return ctx, v
	}

	// Which kept writes reach a returned one through their successors:
	// one pass over the key's writes from maxRet down to the oldest
	// candidate (successors have larger ids, so they are done first),
	// instead of one search per candidate.
	minCand := cands[0].id
	for _, c := range cands {
		minCand = min(minCand, c.id)
	}
	o.searchGen++
	reach := o.searchGen
	hi, _ := slices.BinarySearchFunc(k.nodes, maxRet+1, func(n *node, id ID) int { return cmp.Compare(n.id, id) })
	for i := hi - 1; i >= 0 && k.nodes[i].id >= minCand; i-- {
		n := k.nodes[i]
		if n.ret == gen {
			n.seen = reach
			continue
		}
		for _, sid := range n.succ {
			if sid > maxRet {
				continue
			}
			if sn := k.find(sid); sn != nil && sn.seen == reach {
				n.seen = reach
				break
			}
		}
	}
	covered := o.covered[:0]
	for _, c := range cands {
		covered = append(covered, c.seen == reach)
	}
	// Tombstones the read respects (it returns nothing they removed), and
	// the writes they supersede.
	var maxResp ID
	for i, c := range cands {
		if c.tomb && !covered[i] && o.respects(k, c, ctx.ids) {
			covered[i] = true
			c.resp = gen
			maxResp = max(maxResp, c.id)
		}
	}
	if maxResp != 0 {
		for i, c := range cands {
			if !covered[i] && o.search(k, c, maxResp, func(m *node) bool { return m.resp == gen }) != nil {
				covered[i] = true
			}
		}
	}
	o.covered = covered

	latest := -1
	for i, c := range cands {
		inF := c.supAck >= r.Invoke
		if !covered[i] {
			if inF {
				v.Stale = true
			}
			if i < h {
				v.K++
			}
			if o.cfg.ListMissed {
				v.Missed = append(v.Missed, c.id)
			}
		}
		if i < h && (latest < 0 || c.ack > cands[latest].ack || (c.ack == cands[latest].ack && c.id > cands[latest].id)) {
			latest = i
		}
	}
	slices.Sort(v.Missed)
	if h > 0 {
		v.Prior = true
		l := cands[latest]
		v.Latest, v.LatestAck, v.LatestCoord, v.LatestSeen = l.id, l.ack, int(l.coord), covered[latest]
		v.KCapped = v.K == h && k.acked > int64(len(k.recent))
	}
	clear(cands)
	return ctx, v
}

// respects reports whether an answer that returned ret reflects tombstone
// t: it returned none of the writes t supersedes. A returned write dropped
// from memory is taken as one t supersedes (it is old and superseded).
func (o *Oracle) respects(k *key, t *node, ret []ID) bool {
	for _, id := range ret {
		if id >= t.id {
			continue // t cannot supersede a later write
		}
		n := k.find(id)
		if n == nil {
			return false
		}
		if o.search(k, n, t.id, func(m *node) bool { return m == t }) != nil {
			return false
		}
	}
	return true
}

// Final judges key against the result of a read at R=N made after every
// write completed and repair settled: acknowledged writes neither returned
// nor superseded are lost, superseded writes returned are resurrected.
// Only the first Final or FinalFailed of a key counts.
func (o *Oracle) Final(key string, values [][]byte) {
	k := o.keys[key]
	if k == nil {
		o.parse(nil, key, values)
		return
	}
	if k.final != finalNone {
		return
	}
	k.final = finalChecked
	o.r.FinalKeys++
	ctx, _ := o.observe(k, key, values)
	gen := o.retGen
	for _, id := range ctx.ids {
		n := k.find(id)
		switch {
		case n == nil:
			o.resurrect(k, id, 0, true)
		case n.supAny && !n.resurrected:
			n.resurrected = true
			o.resurrect(k, id, n.supBy, true)
		}
	}
	for _, n := range k.nodes {
		if n.out != Acked || n.ret == gen || n.supAny || (n.tomb && o.cfg.TombstonesHidden) {
			continue
		}
		o.r.Lost++
		if len(o.r.LostWrites) < o.cfg.MaxListed {
			o.r.LostWrites = append(o.r.LostWrites, Lost{Key: key, ID: n.id, Tombstone: n.tomb, Coord: int(n.coord), Invoke: n.invoke, Ack: n.ack})
		}
	}
}

// FinalFailed records that the final read of key failed: its acknowledged
// writes are unverified.
func (o *Oracle) FinalFailed(key string) {
	if k := o.keys[key]; k != nil && k.final == finalNone {
		k.final = finalFailed
	}
}

// Keys returns, sorted, every key a write was invoked for: the keys the
// final check must read.
func (o *Oracle) Keys() []string {
	return slices.Sorted(maps.Keys(o.keys))
}

// Result summarises the history so far. Acknowledged writes of keys with
// no judged final read count as unverified.
func (o *Oracle) Result() Result {
	r := o.r
	r.LostWrites = slices.Clone(r.LostWrites)
	r.Resurrections = slices.Clone(r.Resurrections)
	r.Pending = r.Writes - r.Acked - r.Failed - r.Unknown
	for _, k := range o.keys {
		if k.final != finalChecked {
			r.Unverified += k.acked
		}
	}
	return r
}
