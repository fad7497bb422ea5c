package node

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// aeMessages lists each anti-entropy message with an encoder and a decoder
// that re-encodes, for the round-trip test and the fuzz targets.
var aeMessages = map[string]struct {
	samples []func() ([]byte, error)
	decode  func([]byte) (any, func() ([]byte, error), error)
}{
	"readManyRequest": {
		samples: []func() ([]byte, error){
			readManyRequest{P: 3, Keys: []aeKeyRef{{Hash: 1 << 60, Key: []byte("k1")}, {Hash: 7, Key: []byte("k2")}}}.encode,
			readManyRequest{}.encode,
		},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeReadManyRequest(b)
			return m, m.encode, err
		},
	},
	"readManyResponse": {
		samples: []func() ([]byte, error){
			readManyResponse{Entries: []readManyEntry{{Found: true, Set: []byte{1, 2}}, {}, {Found: true, Confirmed: true, Set: []byte{}}}}.encode,
		},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeReadManyResponse(b)
			return m, m.encode, err
		},
	},
	"mergeManyRequest": {
		samples: []func() ([]byte, error){
			mergeManyRequest{P: 255, Entries: []mergeManyEntry{{Hash: 9, Key: []byte("k"), Set: []byte("set")}}}.encode,
		},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeMergeManyRequest(b)
			return m, m.encode, err
		},
	},
	"mergeManyResponse": {
		samples: []func() ([]byte, error){mergeManyResponse{Changed: 12}.encode},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeMergeManyResponse(b)
			return m, m.encode, err
		},
	},
	"tombAckRequest": {
		samples: []func() ([]byte, error){
			tombAckRequest{P: 1, Entries: []tombAckEntry{{Hash: 5, Key: []byte("x"), Digest: 1<<64 - 1}}}.encode,
		},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeTombAckRequest(b)
			return m, m.encode, err
		},
	},
	"tombAckResponse": {
		samples: []func() ([]byte, error){tombAckResponse{Held: []bool{true, false, true}}.encode},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodeTombAckResponse(b)
			return m, m.encode, err
		},
	},
	"peerStatusRequest": {
		samples: []func() ([]byte, error){peerStatusRequest{Clear: true}.encode, peerStatusRequest{}.encode},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodePeerStatusRequest(b)
			return m, m.encode, err
		},
	},
	"peerStatusResponse": {
		samples: []func() ([]byte, error){peerStatusResponse{Excluded: true}.encode, peerStatusResponse{Quarantined: true}.encode},
		decode: func(b []byte) (any, func() ([]byte, error), error) {
			m, err := decodePeerStatusResponse(b)
			return m, m.encode, err
		},
	},
}

func TestAEWireRoundTrip(t *testing.T) {
	for name, m := range aeMessages {
		t.Run(name, func(t *testing.T) {
			for _, enc := range m.samples {
				b, err := enc()
				if err != nil {
					t.Fatal(err)
				}
				v, reenc, err := m.decode(b)
				if err != nil {
					t.Fatalf("decode %x: %v", b, err)
				}
				b2, err := reenc()
				if err != nil || !bytes.Equal(b, b2) {
					t.Fatalf("re-encoding of %+v = %x, %v; want %x", v, b2, err, b)
				}
				// Every strict prefix and a trailing byte are refused.
				for i := range len(b) {
					if _, _, err := m.decode(b[:i]); !errors.Is(err, errAEWire) {
						t.Fatalf("prefix of %d bytes: %v, want errAEWire", i, err)
					}
				}
				if _, _, err := m.decode(append(bytes.Clone(b), 0)); !errors.Is(err, errAEWire) {
					t.Fatalf("trailing byte: %v", err)
				}
			}
		})
	}
}

func TestAEWireRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		dec  func([]byte) error
	}{
		{"wrong version", []byte{0x92, 0x02, 0xc3}, func(b []byte) error { _, err := decodePeerStatusRequest(b); return err }},
		{"map not array", []byte{0x81, 0x01, 0xc3}, func(b []byte) error { _, err := decodePeerStatusRequest(b); return err }},
		{"negative count", []byte{0x92, 0x01, 0xff}, func(b []byte) error { _, err := decodeMergeManyResponse(b); return err }},
		{"count over batch", []byte{0x92, 0x01, 0xcd, 0x04, 0x01}, func(b []byte) error { _, err := decodeMergeManyResponse(b); return err }},
		{"array claims more than the bytes", []byte{0x92, 0x01, 0xdd, 0x00, 0x00, 0x03, 0xff}, func(b []byte) error { _, err := decodeTombAckResponse(b); return err }},
		{"array over batch", []byte{0x92, 0x01, 0xdd, 0x00, 0x00, 0x04, 0x01}, func(b []byte) error { _, err := decodeTombAckResponse(b); return err }},
		{"empty key", []byte{0x93, 0x01, 0x00, 0x91, 0x92, 0x01, 0xc4, 0x00}, func(b []byte) error { _, err := decodeReadManyRequest(b); return err }},
		{"partition over uint32", []byte{0x93, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x90}, func(b []byte) error { _, err := decodeReadManyRequest(b); return err }},
		{"found without set", []byte{0x92, 0x01, 0x91, 0x93, 0xc3, 0xc2, 0xc0}, func(b []byte) error { _, err := decodeReadManyResponse(b); return err }},
		{"set claims 4 GiB", []byte{0x92, 0x01, 0x91, 0x93, 0xc3, 0xc2, 0xc6, 0xff, 0xff, 0xff, 0xff}, func(b []byte) error { _, err := decodeReadManyResponse(b); return err }},
		{"merge entry without set", []byte{0x93, 0x01, 0x00, 0x91, 0x93, 0x01, 0xa1, 'k', 0xc0}, func(b []byte) error { _, err := decodeMergeManyRequest(b); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.dec(tc.b); !errors.Is(err, errAEWire) {
				t.Fatalf("got %v, want errAEWire", err)
			}
		})
	}
}

func TestAEWireEncodeRefusesOversizedBatches(t *testing.T) {
	keys := make([]aeKeyRef, aeMaxBatch+1)
	for i := range keys {
		keys[i] = aeKeyRef{Key: []byte("k")}
	}
	if _, err := (readManyRequest{Keys: keys}).encode(); err == nil {
		t.Fatal("encoded more than aeMaxBatch keys")
	}
}

// fuzzAE checks one decoder: no panic, errors wrap errAEWire, and
// decode(encode(decode(b))) == decode(b).
func fuzzAE(f *testing.F, name string) {
	m := aeMessages[name]
	for _, enc := range m.samples {
		b, err := enc()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, reenc, err := m.decode(b)
		if err != nil {
			if !errors.Is(err, errAEWire) {
				t.Fatalf("error %v does not wrap errAEWire", err)
			}
			return
		}
		b2, err := reenc()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		v2, _, err := m.decode(b2)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", v, v2, err)
		}
	})
}

func FuzzDecodeReadManyRequest(f *testing.F)    { fuzzAE(f, "readManyRequest") }
func FuzzDecodeReadManyResponse(f *testing.F)   { fuzzAE(f, "readManyResponse") }
func FuzzDecodeMergeManyRequest(f *testing.F)   { fuzzAE(f, "mergeManyRequest") }
func FuzzDecodeMergeManyResponse(f *testing.F)  { fuzzAE(f, "mergeManyResponse") }
func FuzzDecodeTombAckRequest(f *testing.F)     { fuzzAE(f, "tombAckRequest") }
func FuzzDecodeTombAckResponse(f *testing.F)    { fuzzAE(f, "tombAckResponse") }
func FuzzDecodePeerStatusRequest(f *testing.F)  { fuzzAE(f, "peerStatusRequest") }
func FuzzDecodePeerStatusResponse(f *testing.F) { fuzzAE(f, "peerStatusResponse") }
