// Package ringstate is a cluster's ring state: a state-based CRDT of member
// records (last-writer-wins registers ordered by version), the ring
// settings fixed at cluster birth, and for a claim ring the committed
// assignment and each member's progress record (package ownership). It
// merges, encodes and decodes (untrusted bytes from gossip or disk, within
// limits). Pure: the node gossips, persists and routes with it.
package ringstate

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// ValidID reports whether id is a well-formed member id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// MemberRecord is one member's entry in the ring state: who it is, where to
// reach it, whether it is on the ring (Left: a tombstone, so older records
// cannot revive it), the data directory's incarnation (a leave or removal
// applies to one; the same id on a new, empty directory rejoins), and the
// signature that makes it changeable only by the member itself or by an
// admin remove (memberauth; node/memberauth.go). Every change bumps
// Version. Unsigned records encode as the release before signing wrote them.
type MemberRecord = memberauth.Record

// State is the ring membership: a state-based CRDT (a map of
// last-writer-wins registers ordered by Version) gossiped through
// memberlist's push/pull and broadcasts, and persisted in the store. It is
// distinct from liveness: a crashed member stays on the ring.
type State struct {
	// Partitions and Tokens are the ring settings, fixed at cluster birth.
	Partitions int `msgpack:"q"`
	Tokens     int `msgpack:"t"`
	// Members by id.
	Members map[string]MemberRecord `msgpack:"m"`
	// Mode is the placement mode (ring.Mode), fixed at cluster birth like
	// Partitions. Zero, as in every state persisted before modes existed,
	// is the token ring.
	Mode uint8 `msgpack:"mode,omitempty"`
	// Replicas is the N a ModeClaim assignment is planned for.
	Replicas int `msgpack:"n,omitempty"`
	// Assign is the committed assignment of a ModeClaim cluster
	// (ring.Assignment.Encode), which reads route with; the newest wins
	// (ownership.Newer).
	Assign []byte `msgpack:"a,omitempty"`
	// Progress is each member's report on the ring change in course
	// (package ownership), by member id.
	Progress map[string]ownership.Progress `msgpack:"pg,omitempty"`
	// ContextKey signs client contexts in a cluster without a secret
	// (ctxauth.NewClusterKey; node/context.go). Members that hold
	// different keys keep the smaller (ctxauth.MergeClusterKey).
	ContextKey []byte `msgpack:"ck,omitempty"`
	// Stage is the staged ring changes (ownership.Stage; package
	// ringstage): per member, its latest staged, committed or cleared
	// change.
	Stage ownership.Stage `msgpack:"stg,omitempty"`
}

// Limits on ring state decoded from the network.
const (
	maxStateBytes   = 4 << 20
	maxStateMembers = 4096
	// maxStateProgress bounds the progress records, like the members.
	maxStateProgress = maxStateMembers
	Format           = 1
)

// ErrRingMismatch is the error of a merge of states with other ring settings.
var ErrRingMismatch = errors.New("ring settings differ")

// Newer reports whether a should replace b: a total order, so merges are
// commutative, associative and idempotent. Higher versions win; at equal
// versions a tombstone wins, then the larger encoding, so every node picks
// the same record.
func Newer(a, b MemberRecord) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	if a.Left != b.Left {
		return a.Left
	}
	return recordKey(a) > recordKey(b)
}

// recordKey orders records that tie on version and left flag by every
// other field, so the order is total.
func recordKey(r MemberRecord) string {
	return fmt.Sprintf("%020d\x00%s\x00%s\x00%s\x00%s", r.Incarnation, r.RPC, r.HTTP, r.RESP, r.Gossip)
}

// Merge folds o into s and reports whether s changed. It refuses o whole if
// its ring settings differ from s's.
func (s *State) Merge(o State) (bool, error) {
	if o.Partitions != s.Partitions || o.Tokens != s.Tokens || o.Mode != s.Mode || o.Replicas != s.Replicas {
		return false, fmt.Errorf("%w: ours %s, theirs %s", ErrRingMismatch, s.Settings(), o.Settings())
	}
	changed := false
	if len(o.Assign) > 0 && !bytes.Equal(o.Assign, s.Assign) && ownership.Newer(o.Assign, s.Assign) {
		s.Assign = bytes.Clone(o.Assign)
		changed = true
	}
	for id, p := range o.Progress {
		if cur, ok := s.Progress[id]; !ok || p.After(cur) {
			if s.Progress == nil {
				s.Progress = make(map[string]ownership.Progress)
			}
			s.Progress[id] = p
			changed = true
		}
	}
	if s.Stage.Merge(o.Stage) {
		changed = true
	}
	if k := ctxauth.MergeClusterKey(s.ContextKey, o.ContextKey); !bytes.Equal(k, s.ContextKey) {
		s.ContextKey, changed = bytes.Clone(k), true
	}
	for id, r := range o.Members {
		if r.ID != id {
			continue
		}
		cur, ok := s.Members[id]
		if !ok || Newer(r, cur) {
			if s.Members == nil {
				s.Members = make(map[string]MemberRecord)
			}
			s.Members[id] = r
			changed = true
		}
	}
	return changed, nil
}

// Settings describes the ring settings for an error.
func (s State) Settings() string {
	if ring.Mode(s.Mode) == ring.ModeClaim {
		return fmt.Sprintf("mode=claim partitions=%d n=%d", s.Partitions, s.Replicas)
	}
	return fmt.Sprintf("mode=tokens partitions=%d tokens=%d", s.Partitions, s.Tokens)
}

// Claim reports whether the state places by an agreed assignment.
func (s State) Claim() bool { return ring.Mode(s.Mode) == ring.ModeClaim }

// Clone returns a deep copy.
func (s State) Clone() State {
	c := s
	c.Members = make(map[string]MemberRecord, len(s.Members))
	for k, v := range s.Members {
		c.Members[k] = v
	}
	c.Assign = bytes.Clone(s.Assign)
	c.Stage = s.Stage.Clone()
	if s.Progress != nil {
		c.Progress = make(map[string]ownership.Progress, len(s.Progress))
		for k, v := range s.Progress {
			c.Progress[k] = v
		}
	}
	return c
}

// RingMembers returns the members on the ring, sorted by id: not left,
// and not staged joiners whose join is not committed (ownership.Stage). A token
// ring ignores zones, so they are only given in claim mode (a token ring
// of zoned members would place differently from the one before zones).
func (s State) RingMembers() []ring.Member {
	out := make([]ring.Member, 0, len(s.Members))
	for id, r := range s.Members {
		if !r.Left && (!r.Staged || s.Stage.Joined(id, r.Incarnation)) {
			m := ring.Member{ID: ring.NodeID(id)}
			if s.Claim() {
				m.Zone = r.Zone
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Encode returns the state's wire and disk form: a format byte, then msgpack.
func (s State) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(Format)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode parses untrusted bytes from gossip or disk.
func Decode(b []byte) (State, error) {
	var s State
	if len(b) == 0 {
		return s, errors.New("ring state: empty")
	}
	if len(b) > maxStateBytes {
		return s, fmt.Errorf("ring state: %d bytes, limit %d", len(b), maxStateBytes)
	}
	if b[0] != Format {
		return s, fmt.Errorf("ring state: unknown format %d", b[0])
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b[1:]))
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("ring state: %w", err)
	}
	if len(s.Members) > maxStateMembers {
		return State{}, fmt.Errorf("ring state: %d members, limit %d", len(s.Members), maxStateMembers)
	}
	for id, r := range s.Members {
		if id != r.ID || !ValidID(id) {
			return State{}, fmt.Errorf("ring state: bad member id %q", id)
		}
		if len(r.Zone) > ring.MaxZoneLen {
			return State{}, fmt.Errorf("ring state: member %q: zone of %d bytes, limit %d", id, len(r.Zone), ring.MaxZoneLen)
		}
	}
	if err := s.Stage.Check(maxStateMembers); err != nil {
		return State{}, fmt.Errorf("ring state: %w", err)
	}
	if len(s.Progress) > maxStateProgress {
		return State{}, fmt.Errorf("ring state: %d progress records, limit %d", len(s.Progress), maxStateProgress)
	}
	for id := range s.Progress {
		if !ValidID(id) {
			return State{}, fmt.Errorf("ring state: bad progress id %q", id)
		}
	}
	if m := ring.Mode(s.Mode); m > ring.ModeClaim {
		return State{}, fmt.Errorf("ring state: unknown mode %d", s.Mode)
	}
	if len(s.Assign) > 0 {
		if !s.Claim() {
			return State{}, errors.New("ring state: an assignment in a token ring")
		}
		a, err := ring.DecodeAssignment(s.Assign)
		if err != nil {
			return State{}, fmt.Errorf("ring state: %w", err)
		}
		if a.Partitions() != s.Partitions {
			return State{}, fmt.Errorf("ring state: assignment of %d partitions, state says %d", a.Partitions(), s.Partitions)
		}
	}
	return s, nil
}

// EncodeMeta and DecodeMeta carry a member's own record in memberlist node
// metadata, so peers learn addresses as soon as gossip reports the member.
func EncodeMeta(r MemberRecord) []byte {
	b, err := msgpack.Marshal(&r)
	if err != nil {
		return nil
	}
	return b
}

func DecodeMeta(b []byte) (MemberRecord, error) {
	var r MemberRecord
	if len(b) == 0 || len(b) > 512 {
		return r, fmt.Errorf("node metadata: %d bytes", len(b))
	}
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("node metadata: %w", err)
	}
	if !ValidID(r.ID) {
		return r, fmt.Errorf("node metadata: bad id %q", r.ID)
	}
	return r, nil
}

// New returns the ring state of a new cluster with the
// settings of cfg; n is the node's default N, which a claim ring places
// (the cluster's N is fixed at birth with Q).
func New(cfg ring.Config, n int) State {
	s := State{Partitions: cfg.Partitions, Tokens: cfg.Tokens, Members: map[string]MemberRecord{}}
	if s.Partitions == 0 {
		s.Partitions = ring.DefaultPartitions
	}
	if s.Tokens == 0 {
		s.Tokens = ring.DefaultTokens
	}
	if cfg.Mode == ring.ModeClaim {
		s.Mode = uint8(ring.ModeClaim)
		s.Replicas = n
	}
	return s
}

// CheckDir refuses a data directory whose ring settings differ
// from the configured ones, except a token-ring directory under the
// default settings: that is an upgraded node of a cluster born before
// claim rings, and it keeps its cluster's placement.
func CheckDir(s State, cfg ring.Config) error {
	want := New(cfg, s.Replicas)
	same := s.Mode == want.Mode && s.Partitions == want.Partitions && (s.Claim() || s.Tokens == want.Tokens)
	def := ring.DefaultConfig()
	isDefault := cfg.Mode == def.Mode && want.Partitions == def.Partitions && want.Tokens == def.Tokens
	if same || (!s.Claim() && isDefault) {
		return nil
	}
	return fmt.Errorf("data directory was created with ring settings %s, config says %s: ring settings are fixed at cluster birth",
		s.Settings(), want.Settings())
}

// Delta returns an empty state with s's ring settings, for a broadcast of
// one record.
func (s State) Delta() State {
	return State{Partitions: s.Partitions, Tokens: s.Tokens, Mode: s.Mode, Replicas: s.Replicas}
}
