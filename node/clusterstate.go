package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// MemberRecord is one member's entry in the ring state: who it is, where to
// reach it, whether it is on the ring (Left: a tombstone, so older records
// cannot revive it), the data directory's incarnation (a leave or removal
// applies to one; the same id on a new, empty directory rejoins), and the
// signature that makes it changeable only by the member itself or by an
// admin remove (memberauth; node/memberauth.go). Every change bumps
// Version. Unsigned records encode as the release before signing wrote them.
type MemberRecord = memberauth.Record

// ClusterState is the ring membership: a state-based CRDT (a map of
// last-writer-wins registers ordered by Version) gossiped through
// memberlist's push/pull and broadcasts, and persisted in the store. It is
// distinct from liveness: a crashed member stays on the ring.
type ClusterState struct {
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
}

// Limits on ring state decoded from the network.
const (
	maxStateBytes   = 4 << 20
	maxStateMembers = 4096
	// maxStateProgress bounds the progress records, like the members.
	maxStateProgress = maxStateMembers
	stateFormat      = 1
)

var errRingMismatch = errors.New("ring settings differ")

// newer reports whether a should replace b: a total order, so merges are
// commutative, associative and idempotent. Higher versions win; at equal
// versions a tombstone wins, then the larger encoding, so every node picks
// the same record.
func newer(a, b MemberRecord) bool {
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
func (s *ClusterState) Merge(o ClusterState) (bool, error) {
	if o.Partitions != s.Partitions || o.Tokens != s.Tokens || o.Mode != s.Mode || o.Replicas != s.Replicas {
		return false, fmt.Errorf("%w: ours %s, theirs %s", errRingMismatch, s.settings(), o.settings())
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
	if k := ctxauth.MergeClusterKey(s.ContextKey, o.ContextKey); !bytes.Equal(k, s.ContextKey) {
		s.ContextKey, changed = bytes.Clone(k), true
	}
	for id, r := range o.Members {
		if r.ID != id {
			continue
		}
		cur, ok := s.Members[id]
		if !ok || newer(r, cur) {
			if s.Members == nil {
				s.Members = make(map[string]MemberRecord)
			}
			s.Members[id] = r
			changed = true
		}
	}
	return changed, nil
}

// settings describes the ring settings for an error.
func (s ClusterState) settings() string {
	if ring.Mode(s.Mode) == ring.ModeClaim {
		return fmt.Sprintf("mode=claim partitions=%d n=%d", s.Partitions, s.Replicas)
	}
	return fmt.Sprintf("mode=tokens partitions=%d tokens=%d", s.Partitions, s.Tokens)
}

// claim reports whether the state places by an agreed assignment.
func (s ClusterState) claim() bool { return ring.Mode(s.Mode) == ring.ModeClaim }

// Clone returns a deep copy.
func (s ClusterState) Clone() ClusterState {
	c := s
	c.Members = make(map[string]MemberRecord, len(s.Members))
	for k, v := range s.Members {
		c.Members[k] = v
	}
	c.Assign = bytes.Clone(s.Assign)
	if s.Progress != nil {
		c.Progress = make(map[string]ownership.Progress, len(s.Progress))
		for k, v := range s.Progress {
			c.Progress[k] = v
		}
	}
	return c
}

// RingMembers returns the members on the ring, sorted by id. A token
// ring ignores zones, so they are only given in claim mode (a token ring
// of zoned members would place differently from the one before zones).
func (s ClusterState) RingMembers() []ring.Member {
	out := make([]ring.Member, 0, len(s.Members))
	for id, r := range s.Members {
		if !r.Left {
			m := ring.Member{ID: ring.NodeID(id)}
			if s.claim() {
				m.Zone = r.Zone
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IDs returns every member id, on the ring or not, sorted.
func (s ClusterState) IDs() []string {
	ids := make([]string, 0, len(s.Members))
	for id := range s.Members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Encode returns the state's wire and disk form: a format byte, then msgpack.
func (s ClusterState) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(stateFormat)
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(&s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeClusterState parses untrusted bytes from gossip or disk.
func DecodeClusterState(b []byte) (ClusterState, error) {
	var s ClusterState
	if len(b) == 0 {
		return s, errors.New("ring state: empty")
	}
	if len(b) > maxStateBytes {
		return s, fmt.Errorf("ring state: %d bytes, limit %d", len(b), maxStateBytes)
	}
	if b[0] != stateFormat {
		return s, fmt.Errorf("ring state: unknown format %d", b[0])
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b[1:]))
	if err := dec.Decode(&s); err != nil {
		return ClusterState{}, fmt.Errorf("ring state: %w", err)
	}
	if len(s.Members) > maxStateMembers {
		return ClusterState{}, fmt.Errorf("ring state: %d members, limit %d", len(s.Members), maxStateMembers)
	}
	for id, r := range s.Members {
		if id != r.ID || !nodeIDPattern.MatchString(id) {
			return ClusterState{}, fmt.Errorf("ring state: bad member id %q", id)
		}
		if len(r.Zone) > ring.MaxZoneLen {
			return ClusterState{}, fmt.Errorf("ring state: member %q: zone of %d bytes, limit %d", id, len(r.Zone), ring.MaxZoneLen)
		}
	}
	if len(s.Progress) > maxStateProgress {
		return ClusterState{}, fmt.Errorf("ring state: %d progress records, limit %d", len(s.Progress), maxStateProgress)
	}
	for id := range s.Progress {
		if !nodeIDPattern.MatchString(id) {
			return ClusterState{}, fmt.Errorf("ring state: bad progress id %q", id)
		}
	}
	if m := ring.Mode(s.Mode); m > ring.ModeClaim {
		return ClusterState{}, fmt.Errorf("ring state: unknown mode %d", s.Mode)
	}
	if len(s.Assign) > 0 {
		if !s.claim() {
			return ClusterState{}, errors.New("ring state: an assignment in a token ring")
		}
		a, err := ring.DecodeAssignment(s.Assign)
		if err != nil {
			return ClusterState{}, fmt.Errorf("ring state: %w", err)
		}
		if a.Partitions() != s.Partitions {
			return ClusterState{}, fmt.Errorf("ring state: assignment of %d partitions, state says %d", a.Partitions(), s.Partitions)
		}
	}
	return s, nil
}

// encodeMeta and decodeMeta carry a member's own record in memberlist node
// metadata, so peers learn addresses as soon as gossip reports the member.
func encodeMeta(r MemberRecord) []byte {
	b, err := msgpack.Marshal(&r)
	if err != nil {
		return nil
	}
	return b
}

func decodeMeta(b []byte) (MemberRecord, error) {
	var r MemberRecord
	if len(b) == 0 || len(b) > 512 {
		return r, fmt.Errorf("node metadata: %d bytes", len(b))
	}
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("node metadata: %w", err)
	}
	if !nodeIDPattern.MatchString(r.ID) {
		return r, fmt.Errorf("node metadata: bad id %q", r.ID)
	}
	return r, nil
}
