package wire

import (
	"bytes"
	"errors"
	"testing"
)

// aeMessages lists each anti-entropy message with samples, for the
// round-trip test and the fuzz targets.
var aeMessages = map[string]struct {
	samples []message
	fresh   func() message
}{
	"ReadManyRequest": {
		samples: []message{
			&ReadManyRequest{Partition: 3, Keys: []KeyRef{{Hash: 1 << 60, Key: []byte("k1")}, {Hash: 7, Key: []byte("k2")}}},
			&ReadManyRequest{},
		},
		fresh: func() message { return &ReadManyRequest{} },
	},
	"ReadManyResponse": {
		samples: []message{&ReadManyResponse{Entries: []ReadManyEntry{{Found: true, Set: []byte{1, 2}}, {}, {Found: true, Confirmed: true, Set: []byte{}}}}},
		fresh:   func() message { return &ReadManyResponse{} },
	},
	"MergeManyRequest": {
		samples: []message{&MergeManyRequest{Partition: 255, Entries: []MergeManyEntry{{Hash: 9, Key: []byte("k"), Set: []byte("set")}}}},
		fresh:   func() message { return &MergeManyRequest{} },
	},
	"MergeManyResponse": {
		samples: []message{&MergeManyResponse{Changed: 12}},
		fresh:   func() message { return &MergeManyResponse{} },
	},
	"TombAckRequest": {
		samples: []message{&TombAckRequest{Partition: 1, Entries: []TombAckEntry{{Hash: 5, Key: []byte("x"), Digest: 1<<64 - 1}}}},
		fresh:   func() message { return &TombAckRequest{} },
	},
	"TombAckResponse": {
		samples: []message{&TombAckResponse{Held: []bool{true, false, true}}},
		fresh:   func() message { return &TombAckResponse{} },
	},
	"PeerStatusRequest": {
		samples: []message{&PeerStatusRequest{Clear: true}, &PeerStatusRequest{}},
		fresh:   func() message { return &PeerStatusRequest{} },
	},
	"PeerStatusResponse": {
		samples: []message{&PeerStatusResponse{Excluded: true}, &PeerStatusResponse{Quarantined: true}},
		fresh:   func() message { return &PeerStatusResponse{} },
	},
}

func isWireErr(err error) bool { return errors.Is(err, ErrMalformed) }

func TestAEMessagesRoundTrip(t *testing.T) {
	for name, m := range aeMessages {
		t.Run(name, func(t *testing.T) {
			for _, s := range m.samples {
				b, err := s.Append(nil)
				if err != nil {
					t.Fatal(err)
				}
				v := m.fresh()
				if err := v.Decode(b); err != nil {
					t.Fatalf("decode %x: %v", b, err)
				}
				b2, err := v.Append(nil)
				if err != nil || !bytes.Equal(b, b2) {
					t.Fatalf("re-encoding of %+v = %x, %v; want %x", v, b2, err, b)
				}
				// Every strict prefix and a trailing byte are refused.
				for i := range len(b) {
					if err := m.fresh().Decode(b[:i]); !isWireErr(err) {
						t.Fatalf("prefix of %d bytes: %v, want ErrMalformed", i, err)
					}
				}
				if err := m.fresh().Decode(append(bytes.Clone(b), 0)); !isWireErr(err) {
					t.Fatalf("trailing byte: %v", err)
				}
			}
		})
	}
}

func TestAEMessagesReject(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		m    message
	}{
		{"wrong version", []byte{0x92, 0x02, 0xc3}, &PeerStatusRequest{}},
		{"map not array", []byte{0x81, 0x01, 0xc3}, &PeerStatusRequest{}},
		{"negative count", []byte{0x92, 0x01, 0xff}, &MergeManyResponse{}},
		{"count over batch", []byte{0x92, 0x01, 0xcd, 0x04, 0x01}, &MergeManyResponse{}},
		{"array claims more than the bytes", []byte{0x92, 0x01, 0xdd, 0x00, 0x00, 0x03, 0xff}, &TombAckResponse{}},
		{"array over batch", []byte{0x92, 0x01, 0xdd, 0x00, 0x00, 0x04, 0x01}, &TombAckResponse{}},
		{"empty key", []byte{0x93, 0x01, 0x00, 0x91, 0x92, 0x01, 0xc4, 0x00}, &ReadManyRequest{}},
		{"partition over uint32", []byte{0x93, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x90}, &ReadManyRequest{}},
		{"found without set", []byte{0x92, 0x01, 0x91, 0x93, 0xc3, 0xc2, 0xc0}, &ReadManyResponse{}},
		{"set claims 4 GiB", []byte{0x92, 0x01, 0x91, 0x93, 0xc3, 0xc2, 0xc6, 0xff, 0xff, 0xff, 0xff}, &ReadManyResponse{}},
		{"merge entry without set", []byte{0x93, 0x01, 0x00, 0x91, 0x93, 0x01, 0xa1, 'k', 0xc0}, &MergeManyRequest{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Decode(tc.b); !isWireErr(err) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestAEMessagesRefuseOversizedBatches(t *testing.T) {
	keys := make([]KeyRef, MaxBatch+1)
	for i := range keys {
		keys[i] = KeyRef{Key: []byte("k")}
	}
	if _, err := (&ReadManyRequest{Keys: keys}).Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encoded more than MaxBatch keys: %v", err)
	}
}

// fuzzAE checks one decoder: no panic, errors wrap ErrMalformed, and
// decode(encode(decode(b))) == decode(b).
func fuzzAE(f *testing.F, name string) {
	m := aeMessages[name]
	for _, s := range m.samples {
		b, err := s.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkReencode(t, m.fresh(), b) })
}

func FuzzDecodeReadManyRequest(f *testing.F)    { fuzzAE(f, "ReadManyRequest") }
func FuzzDecodeReadManyResponse(f *testing.F)   { fuzzAE(f, "ReadManyResponse") }
func FuzzDecodeMergeManyRequest(f *testing.F)   { fuzzAE(f, "MergeManyRequest") }
func FuzzDecodeMergeManyResponse(f *testing.F)  { fuzzAE(f, "MergeManyResponse") }
func FuzzDecodeTombAckRequest(f *testing.F)     { fuzzAE(f, "TombAckRequest") }
func FuzzDecodeTombAckResponse(f *testing.F)    { fuzzAE(f, "TombAckResponse") }
func FuzzDecodePeerStatusRequest(f *testing.F)  { fuzzAE(f, "PeerStatusRequest") }
func FuzzDecodePeerStatusResponse(f *testing.F) { fuzzAE(f, "PeerStatusResponse") }
