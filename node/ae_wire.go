package node

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Anti-entropy messages besides the tree messages of package antientropy
// (methodHashes, methodKeys). Each is one msgpack array whose first element
// is aeWireVersion; decoders refuse other versions, check every length
// against the bytes left before allocating, and never panic.
//
//	readManyRequest:    [1, partition, [[hash, key]...]]
//	readManyResponse:   [1, [[found, confirmed, set or nil]...]]
//	mergeManyRequest:   [1, partition, [[hash, key, set]...]]
//	mergeManyResponse:  [1, changed]
//	tombAckRequest:     [1, partition, [[hash, key, setDigest]...]]
//	tombAckResponse:    [1, [held...]]
//	peerStatusRequest:  [1, clear]
//	peerStatusResponse: [1, excluded, quarantined]
const aeWireVersion = 1

// Size limits of those messages.
const (
	// aeMaxBatch caps the keys of one readMany, mergeMany or tombAck.
	aeMaxBatch = 1024
	// aeMaxWireKey is the longest key accepted (Config.MaxKeySize's upper
	// bound); the handler checks the node's own limit.
	aeMaxWireKey = 64 << 10
	// aeMaxWireSet is the longest set encoding accepted: a record's set is
	// at most maxSetBytes of data plus its sibling and context overhead.
	aeMaxWireSet = maxSetBytes + 1<<20
	// aeBatchBytes is the budget of set bytes in one readMany answer or
	// mergeMany request: a message stays well inside a transport frame
	// (16 MiB by default) unless a single set is larger, which is then sent
	// alone.
	aeBatchBytes = 4 << 20
)

// errAEWire is a malformed anti-entropy message.
var errAEWire = errors.New("malformed anti-entropy message")

type aeKeyRef struct {
	Hash uint64
	Key  []byte
}

type readManyRequest struct {
	P    uint32
	Keys []aeKeyRef
}

// readManyEntry is one key's copy on the answering replica. Confirmed is set
// when the copy is all tombstones that every primary is known to hold
// (tomb field confirmed): the asker then leaves it to the reaper instead of
// copying it.
type readManyEntry struct {
	Found, Confirmed bool
	Set              []byte
}

// readManyResponse answers a prefix of the request's keys (at least one):
// the answering side stops once aeBatchBytes of sets are in, and the asker
// asks again for the rest.
type readManyResponse struct {
	Entries []readManyEntry
}

type mergeManyEntry struct {
	Hash uint64
	Key  []byte
	Set  []byte
}

type mergeManyRequest struct {
	P       uint32
	Entries []mergeManyEntry
}

type mergeManyResponse struct {
	Changed int
}

type tombAckEntry struct {
	Hash   uint64
	Key    []byte
	Digest uint64 // set digest the asker holds
}

type tombAckRequest struct {
	P       uint32
	Entries []tombAckEntry
}

// tombAckResponse says, per key, whether the answering replica holds the
// asker's set (same digest) or nothing at all for it.
type tombAckResponse struct {
	Held []bool
}

// peerStatusRequest asks a peer whether it reaped tombstones without this
// node (its exclusion ledger); Clear tells it this node has dropped its data
// since, so the entry can go.
type peerStatusRequest struct {
	Clear bool
}

type peerStatusResponse struct {
	Excluded, Quarantined bool
}

func aeEncode(n int, f func(e *msgpack.Encoder) error) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.GetEncoder()
	defer msgpack.PutEncoder(e)
	e.Reset(&buf)
	if err := e.EncodeArrayLen(n); err != nil {
		return nil, err
	}
	if err := e.EncodeUint(aeWireVersion); err != nil {
		return nil, err
	}
	if err := f(e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// aeDec reads one message from untrusted bytes.
type aeDec struct {
	d *msgpack.Decoder
	r *bytes.Reader
}

// aeDecode runs f over b after checking the array header (n elements) and
// the version, and checks that f consumed every byte. Every failure wraps
// errAEWire.
func aeDecode(b []byte, n int, f func(x *aeDec) error) error {
	r := bytes.NewReader(b)
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(r) // a *bytes.Reader is read directly: r.Len() stays exact
	x := &aeDec{d: d, r: r}
	err := func() error {
		got, err := x.arrayLen(n)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("array of %d elements, want %d", got, n)
		}
		v, err := x.uint(math.MaxUint64)
		if err != nil {
			return err
		}
		if v != aeWireVersion {
			return fmt.Errorf("version %d, want %d", v, aeWireVersion)
		}
		if err := f(x); err != nil {
			return err
		}
		if r.Len() != 0 {
			return fmt.Errorf("%d trailing bytes", r.Len())
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("%w: %w", errAEWire, err)
	}
	return nil
}

// uint reads an unsigned integer no larger than limit.
func (x *aeDec) uint(limit uint64) (uint64, error) {
	c, err := x.d.PeekCode()
	if err != nil {
		return 0, err
	}
	if !(c <= 0x7f || (c >= 0xcc && c <= 0xcf)) {
		return 0, fmt.Errorf("code %#x is not an unsigned integer", c)
	}
	v, err := x.d.DecodeUint64()
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fmt.Errorf("integer %d over %d", v, limit)
	}
	return v, nil
}

// arrayLen reads an array header of at most limit elements, each of which
// takes at least one of the bytes left.
func (x *aeDec) arrayLen(limit int) (int, error) {
	n, err := x.d.DecodeArrayLen()
	switch {
	case err != nil:
		return 0, err
	case n < 0:
		return 0, errors.New("nil array")
	case n > limit:
		return 0, fmt.Errorf("array of %d elements over %d", n, limit)
	case n > x.r.Len():
		return 0, fmt.Errorf("array of %d elements in %d bytes", n, x.r.Len())
	}
	return n, nil
}

// bytes reads a byte string of at most limit bytes (nil stays nil) into a
// fresh slice.
func (x *aeDec) bytes(limit int) ([]byte, error) {
	n, err := x.d.DecodeBytesLen()
	switch {
	case err != nil:
		return nil, err
	case n < 0:
		return nil, nil
	case n > limit:
		return nil, fmt.Errorf("byte string of %d bytes over %d", n, limit)
	case n > x.r.Len():
		return nil, fmt.Errorf("byte string of %d bytes in %d", n, x.r.Len())
	}
	b := make([]byte, n)
	if err := x.d.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (x *aeDec) bool() (bool, error) { return x.d.DecodeBool() }

// entry reads the array header of one list element of n fields.
func (x *aeDec) entry(n int) error {
	got, err := x.arrayLen(n)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("entry of %d elements, want %d", got, n)
	}
	return nil
}

func encodeKeyRef(e *msgpack.Encoder, h uint64, k []byte) error {
	if err := e.EncodeUint(h); err != nil {
		return err
	}
	return e.EncodeBytes(k)
}

func (x *aeDec) keyRef() (uint64, []byte, error) {
	h, err := x.uint(math.MaxUint64)
	if err != nil {
		return 0, nil, err
	}
	k, err := x.bytes(aeMaxWireKey)
	if err != nil {
		return 0, nil, err
	}
	if len(k) == 0 {
		return 0, nil, errors.New("empty key")
	}
	return h, k, nil
}

func checkBatch(n int) error {
	if n > aeMaxBatch {
		return fmt.Errorf("%d keys over %d", n, aeMaxBatch)
	}
	return nil
}

func (m readManyRequest) encode() ([]byte, error) {
	if err := checkBatch(len(m.Keys)); err != nil {
		return nil, err
	}
	return aeEncode(3, func(e *msgpack.Encoder) error {
		if err := e.EncodeUint(uint64(m.P)); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(m.Keys)); err != nil {
			return err
		}
		for _, k := range m.Keys {
			if err := e.EncodeArrayLen(2); err != nil {
				return err
			}
			if err := encodeKeyRef(e, k.Hash, k.Key); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeReadManyRequest(b []byte) (m readManyRequest, err error) {
	err = aeDecode(b, 3, func(x *aeDec) error {
		p, err := x.uint(math.MaxUint32)
		if err != nil {
			return err
		}
		m.P = uint32(p)
		n, err := x.arrayLen(aeMaxBatch)
		if err != nil {
			return err
		}
		m.Keys = make([]aeKeyRef, n)
		for i := range m.Keys {
			if err := x.entry(2); err != nil {
				return err
			}
			if m.Keys[i].Hash, m.Keys[i].Key, err = x.keyRef(); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

func (m readManyResponse) encode() ([]byte, error) {
	if err := checkBatch(len(m.Entries)); err != nil {
		return nil, err
	}
	return aeEncode(2, func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(len(m.Entries)); err != nil {
			return err
		}
		for _, en := range m.Entries {
			if err := e.EncodeArrayLen(3); err != nil {
				return err
			}
			if err := e.EncodeBool(en.Found); err != nil {
				return err
			}
			if err := e.EncodeBool(en.Confirmed); err != nil {
				return err
			}
			if err := e.EncodeBytes(en.Set); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeReadManyResponse(b []byte) (m readManyResponse, err error) {
	err = aeDecode(b, 2, func(x *aeDec) error {
		n, err := x.arrayLen(aeMaxBatch)
		if err != nil {
			return err
		}
		m.Entries = make([]readManyEntry, n)
		for i := range m.Entries {
			en := &m.Entries[i]
			if err := x.entry(3); err != nil {
				return err
			}
			if en.Found, err = x.bool(); err != nil {
				return err
			}
			if en.Confirmed, err = x.bool(); err != nil {
				return err
			}
			if en.Set, err = x.bytes(aeMaxWireSet); err != nil {
				return err
			}
			if en.Found != (en.Set != nil) {
				return errors.New("found without a set, or a set without found")
			}
		}
		return nil
	})
	return m, err
}

func (m mergeManyRequest) encode() ([]byte, error) {
	if err := checkBatch(len(m.Entries)); err != nil {
		return nil, err
	}
	return aeEncode(3, func(e *msgpack.Encoder) error {
		if err := e.EncodeUint(uint64(m.P)); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(m.Entries)); err != nil {
			return err
		}
		for _, en := range m.Entries {
			if err := e.EncodeArrayLen(3); err != nil {
				return err
			}
			if err := encodeKeyRef(e, en.Hash, en.Key); err != nil {
				return err
			}
			if err := e.EncodeBytes(en.Set); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeMergeManyRequest(b []byte) (m mergeManyRequest, err error) {
	err = aeDecode(b, 3, func(x *aeDec) error {
		p, err := x.uint(math.MaxUint32)
		if err != nil {
			return err
		}
		m.P = uint32(p)
		n, err := x.arrayLen(aeMaxBatch)
		if err != nil {
			return err
		}
		m.Entries = make([]mergeManyEntry, n)
		for i := range m.Entries {
			en := &m.Entries[i]
			if err := x.entry(3); err != nil {
				return err
			}
			if en.Hash, en.Key, err = x.keyRef(); err != nil {
				return err
			}
			if en.Set, err = x.bytes(aeMaxWireSet); err != nil {
				return err
			}
			if en.Set == nil {
				return errors.New("nil set")
			}
		}
		return nil
	})
	return m, err
}

func (m mergeManyResponse) encode() ([]byte, error) {
	return aeEncode(2, func(e *msgpack.Encoder) error { return e.EncodeUint(uint64(max(0, m.Changed))) })
}

func decodeMergeManyResponse(b []byte) (m mergeManyResponse, err error) {
	err = aeDecode(b, 2, func(x *aeDec) error {
		v, err := x.uint(aeMaxBatch)
		m.Changed = int(v)
		return err
	})
	return m, err
}

func (m tombAckRequest) encode() ([]byte, error) {
	if err := checkBatch(len(m.Entries)); err != nil {
		return nil, err
	}
	return aeEncode(3, func(e *msgpack.Encoder) error {
		if err := e.EncodeUint(uint64(m.P)); err != nil {
			return err
		}
		if err := e.EncodeArrayLen(len(m.Entries)); err != nil {
			return err
		}
		for _, en := range m.Entries {
			if err := e.EncodeArrayLen(3); err != nil {
				return err
			}
			if err := encodeKeyRef(e, en.Hash, en.Key); err != nil {
				return err
			}
			if err := e.EncodeUint(en.Digest); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeTombAckRequest(b []byte) (m tombAckRequest, err error) {
	err = aeDecode(b, 3, func(x *aeDec) error {
		p, err := x.uint(math.MaxUint32)
		if err != nil {
			return err
		}
		m.P = uint32(p)
		n, err := x.arrayLen(aeMaxBatch)
		if err != nil {
			return err
		}
		m.Entries = make([]tombAckEntry, n)
		for i := range m.Entries {
			en := &m.Entries[i]
			if err := x.entry(3); err != nil {
				return err
			}
			if en.Hash, en.Key, err = x.keyRef(); err != nil {
				return err
			}
			if en.Digest, err = x.uint(math.MaxUint64); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

func (m tombAckResponse) encode() ([]byte, error) {
	if err := checkBatch(len(m.Held)); err != nil {
		return nil, err
	}
	return aeEncode(2, func(e *msgpack.Encoder) error {
		if err := e.EncodeArrayLen(len(m.Held)); err != nil {
			return err
		}
		for _, h := range m.Held {
			if err := e.EncodeBool(h); err != nil {
				return err
			}
		}
		return nil
	})
}

func decodeTombAckResponse(b []byte) (m tombAckResponse, err error) {
	err = aeDecode(b, 2, func(x *aeDec) error {
		n, err := x.arrayLen(aeMaxBatch)
		if err != nil {
			return err
		}
		m.Held = make([]bool, n)
		for i := range m.Held {
			if m.Held[i], err = x.bool(); err != nil {
				return err
			}
		}
		return nil
	})
	return m, err
}

func (m peerStatusRequest) encode() ([]byte, error) {
	return aeEncode(2, func(e *msgpack.Encoder) error { return e.EncodeBool(m.Clear) })
}

func decodePeerStatusRequest(b []byte) (m peerStatusRequest, err error) {
	err = aeDecode(b, 2, func(x *aeDec) error {
		m.Clear, err = x.bool()
		return err
	})
	return m, err
}

func (m peerStatusResponse) encode() ([]byte, error) {
	return aeEncode(3, func(e *msgpack.Encoder) error {
		if err := e.EncodeBool(m.Excluded); err != nil {
			return err
		}
		return e.EncodeBool(m.Quarantined)
	})
}

func decodePeerStatusResponse(b []byte) (m peerStatusResponse, err error) {
	err = aeDecode(b, 3, func(x *aeDec) error {
		if m.Excluded, err = x.bool(); err != nil {
			return err
		}
		m.Quarantined, err = x.bool()
		return err
	})
	return m, err
}
