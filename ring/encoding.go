package ring

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// assignmentFormat is the first byte of an encoded Assignment. A new
// layout gets a new value; decoders keep reading the old ones.
const assignmentFormat = 1

// MaxAssignmentBytes caps an encoded Assignment: the largest legal one
// (MaxPartitions x MaxReplicas two-byte owners, MaxAssignmentMembers
// members with the longest ids and zones) fits, and a decoder refuses more
// before reading anything.
const MaxAssignmentBytes = 1 + binary.MaxVarintLen64 + 2 + binary.MaxVarintLen32 +
	MaxAssignmentMembers*(2+MaxIDLen+2+1+MaxZoneLen) +
	MaxPartitions*MaxReplicas*2 + 8

// Encode returns a's wire and disk form, version 1:
//
//	byte      format (1)
//	uvarint   Version
//	byte      log2(Q)
//	byte      N
//	uvarint   M, the number of members
//	M times:  uvarint len(id), id, uvarint weight, uvarint len(zone), zone
//	Q*R owner indexes into the members (R = min(N, M)), row by row in
//	          order, one byte each when M <= 256, else two (big-endian)
//	8 bytes   xxhash64 of everything before, big-endian
//
// Members are in ascending id order and weights are >= 1, so the encoding
// is canonical: equal assignments encode to equal bytes, and
// DecodeAssignment accepts nothing else. At Q=4096, N=3 and 100 members
// it is 12,288 bytes of owners plus the member table.
func (a *Assignment) Encode() []byte {
	w := ownerWidth(len(a.members))
	b := make([]byte, 0, 32+len(a.members)*24+len(a.owners)*w)
	b = append(b, assignmentFormat)
	b = binary.AppendUvarint(b, a.version)
	b = append(b, byte(bits.TrailingZeros(uint(a.q))), byte(a.n))
	b = binary.AppendUvarint(b, uint64(len(a.members)))
	for _, m := range a.members {
		b = binary.AppendUvarint(b, uint64(len(m.ID)))
		b = append(b, m.ID...)
		b = binary.AppendUvarint(b, uint64(m.Weight))
		b = binary.AppendUvarint(b, uint64(len(m.Zone)))
		b = append(b, m.Zone...)
	}
	for _, o := range a.owners {
		if w == 1 {
			b = append(b, byte(o))
		} else {
			b = binary.BigEndian.AppendUint16(b, o)
		}
	}
	return binary.BigEndian.AppendUint64(b, xxhash.Sum64(b))
}

func ownerWidth(m int) int {
	if m <= 256 {
		return 1
	}
	return 2
}

// DecodeAssignment parses an encoded Assignment from untrusted bytes
// (gossip, disk). It never panics; every failure wraps
// ErrInvalidAssignment and says what was wrong. It checks lengths before
// allocating, the checksum, the limits (Q a power of two up to
// MaxPartitions, N up to MaxReplicas, members up to MaxAssignmentMembers,
// ids, weights and zones as for New), ids strictly ascending, owners in
// range and distinct within each partition, and that the bytes are the
// canonical encoding. It does not check zone spread or balance: an
// assignment from another planner is still an assignment, and
// Ring.ZoneStatus reports its spread.
func DecodeAssignment(b []byte) (*Assignment, error) {
	bad := func(format string, args ...any) (*Assignment, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidAssignment, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxAssignmentBytes {
		return bad("%d bytes, limit %d", len(b), MaxAssignmentBytes)
	}
	if len(b) < 1+1+2+1+8 {
		return bad("%d bytes, too short", len(b))
	}
	if b[0] != assignmentFormat {
		return bad("unknown format %d", b[0])
	}
	body := b[:len(b)-8]
	if sum := binary.BigEndian.Uint64(b[len(b)-8:]); sum != xxhash.Sum64(body) {
		return bad("checksum mismatch")
	}
	d := decoder{b: body[1:]}
	a := &Assignment{}
	a.version = d.uvarint()
	log2q, n := d.byte(), d.byte()
	m := d.uvarint()
	if d.err != nil {
		return bad("header: %v", d.err)
	}
	if log2q > 16 {
		return bad("log2(partitions) %d, limit 16", log2q)
	}
	if n < 1 || n > MaxReplicas {
		return bad("replicas %d, want 1 to %d", n, MaxReplicas)
	}
	if m > MaxAssignmentMembers {
		return bad("%d members, limit %d", m, MaxAssignmentMembers)
	}
	a.q, a.n = 1<<log2q, int(n)
	if int(m) > MaxPlacements/a.q {
		return bad("%d partitions x %d members exceeds %d", a.q, m, MaxPlacements)
	}
	// Each member takes at least 4 bytes: refuse a count the input cannot
	// hold before allocating for it.
	if int(m)*4 > len(d.b) {
		return bad("%d members in %d bytes", m, len(d.b))
	}
	a.members = make([]Member, m)
	for i := range a.members {
		id := d.bytes(MaxIDLen)
		w := d.uvarint()
		zone := d.bytes(MaxZoneLen)
		if d.err != nil {
			return bad("member %d: %v", i, d.err)
		}
		if len(id) == 0 {
			return bad("member %d: empty id", i)
		}
		if w < 1 || w > MaxWeight {
			return bad("member %q: weight %d, want 1 to %d", id, w, MaxWeight)
		}
		a.members[i] = Member{ID: NodeID(id), Weight: int(w), Zone: string(zone)}
		if i > 0 && a.members[i-1].ID >= a.members[i].ID {
			return bad("member ids not strictly ascending at %q", id)
		}
	}
	a.rowWidth = min(a.n, len(a.members))
	w := ownerWidth(len(a.members))
	if want := a.q * a.rowWidth * w; len(d.b) != want {
		return bad("%d bytes of owners, want %d", len(d.b), want)
	}
	a.owners = make([]uint16, a.q*a.rowWidth)
	for j := range a.owners {
		if w == 1 {
			a.owners[j] = uint16(d.b[j])
		} else {
			a.owners[j] = binary.BigEndian.Uint16(d.b[2*j:])
		}
		if int(a.owners[j]) >= len(a.members) {
			return bad("partition %d: owner %d of %d members", j/a.rowWidth, a.owners[j], len(a.members))
		}
	}
	for p := range a.q {
		row := a.owners[p*a.rowWidth : (p+1)*a.rowWidth]
		for k := 1; k < len(row); k++ {
			if slices.Contains(row[:k], row[k]) {
				return bad("partition %d: owner %q twice", p, a.members[row[k]].ID)
			}
		}
	}
	if !slices.Equal(a.Encode(), b) {
		return bad("not in canonical form")
	}
	return a, nil
}

// decoder reads varints and length-prefixed bytes, keeping the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = fmt.Errorf("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("length %d (limit %d, %d bytes left)", n, limit, len(d.b))
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}
