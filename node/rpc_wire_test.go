package node

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// wireMsg is a message with a hand-written codec.
type wireMsg interface {
	wireAppender
	wireDecoder
}

func genMergeRequest(t *rapid.T) *mergeRequest {
	return &mergeRequest{
		P:       rapid.Uint32().Draw(t, "p"),
		H:       rapid.Uint64().Draw(t, "h"),
		K:       rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "k"),
		HintFor: rapid.StringN(0, 70, -1).Draw(t, "hint"),
		Set:     rapid.SliceOfN(rapid.Byte(), 0, 70000).Draw(t, "set"),
		Durable: rapid.Bool().Draw(t, "durable"),
	}
}

// TestWireMatchesMsgpack checks the hand-written codecs against the msgpack
// library they replace: the same bytes out, the same values back in, both
// ways, so nodes with either codec understand each other.
func TestWireMatchesMsgpack(t *testing.T) {
	gens := map[string]func(t *rapid.T) wireMsg{
		"merge request": func(t *rapid.T) wireMsg { return genMergeRequest(t) },
		"merge response": func(t *rapid.T) wireMsg {
			return &mergeResponse{Durable: rapid.Bool().Draw(t, "durable")}
		},
		"read request": func(t *rapid.T) wireMsg {
			m := genMergeRequest(t)
			return &readRequest{P: m.P, H: m.H, K: m.K, HintFor: m.HintFor}
		},
		"read response": func(t *rapid.T) wireMsg {
			r := &readResponse{Found: rapid.Bool().Draw(t, "found")}
			if rapid.Bool().Draw(t, "has set") {
				r.Set = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "set")
			}
			return r
		},
	}
	for name, gen := range gens {
		t.Run(name, rapid.MakeCheck(func(t *rapid.T) {
			m := gen(t)
			lib, err := msgpack.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.appendWire(nil); !bytes.Equal(got, lib) {
				t.Fatalf("appendWire\n got %x\nwant %x", got, lib)
			}
			fresh := func() wireMsg { return reflect.New(reflect.TypeOf(m).Elem()).Interface().(wireMsg) }
			mine, theirs := fresh(), fresh()
			if err := mine.decodeWire(lib); err != nil {
				t.Fatalf("decodeWire of the library's bytes: %v", err)
			}
			if err := msgpack.Unmarshal(lib, theirs); err != nil {
				t.Fatal(err)
			}
			if !wireEqual(mine, theirs) {
				t.Fatalf("decodeWire = %+v, msgpack = %+v", mine, theirs)
			}
		}))
	}
}

// wireEqual compares messages treating nil and empty byte slices alike
// (msgpack decodes an empty bin as empty, ours aliases).
func wireEqual(a, b any) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		if !va.Type().Field(i).IsExported() {
			continue
		}
		if fa.Kind() == reflect.Slice {
			if !bytes.Equal(fa.Bytes(), fb.Bytes()) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			return false
		}
	}
	return true
}

// TestWireAcceptsOtherWidths: the msgpack library accepts any integer width
// and str for bin; so must we.
func TestWireAcceptsOtherWidths(t *testing.T) {
	// [P=int16 5, H=uint64 7, K=str "k", HintFor=bin "n2", Set=nil, true]
	b := []byte{0x96, 0xd1, 0x00, 0x05, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xa1, 'k', 0xc4, 2, 'n', '2', 0xc0, 0xc3}
	var m mergeRequest
	if err := m.decodeWire(b); err != nil {
		t.Fatal(err)
	}
	if m.P != 5 || m.H != 7 || string(m.K) != "k" || m.HintFor != "n2" || m.Set != nil || !m.Durable {
		t.Fatalf("decoded %+v", m)
	}
}

func TestWireRejectsMalformed(t *testing.T) {
	good := (&mergeRequest{P: 1, H: 2, K: []byte("k"), Set: []byte{1}}).appendWire(nil)
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"wrong arity":    append([]byte{0x95}, good[1:]...),
		"negative":       {0x96, 0xd0, 0xff},
		"p over uint32":  {0x96, 0xcf, 1, 0, 0, 0, 0, 0, 0, 0},
		"bin past end":   {0x96, 1, 2, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"not a bool":     (&mergeResponse{}).appendWire(nil)[:1],
		"map not array":  {0x81, 0xa1, 'P', 1},
		"reserved 0xc1":  {0xc1},
		"bool as number": {0x91, 0x01},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var m mergeRequest
			var r mergeResponse
			if m.decodeWire(b) == nil && r.decodeWire(b) == nil {
				t.Fatalf("%x decoded without error", b)
			}
		})
	}
}

// FuzzWireDecode feeds untrusted bytes to every hand-written decoder: no
// panic, and whatever decodes re-encodes to bytes that decode the same.
func FuzzWireDecode(f *testing.F) {
	f.Add((&mergeRequest{P: 3, H: 1 << 40, K: []byte("key"), HintFor: "n2", Set: []byte{1, 2, 3}, Durable: true}).appendWire(nil))
	f.Add((&readRequest{P: 3, H: 9, K: []byte("key")}).appendWire(nil))
	f.Add((&readResponse{Found: true, Set: bytes.Repeat([]byte{7}, 300)}).appendWire(nil))
	f.Add((&mergeResponse{Durable: true}).appendWire(nil))
	f.Add([]byte{0x96, 0xd1, 0x00, 0x05, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xa1, 'k', 0xc4, 2, 'n', '2', 0xc0, 0xc3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []wireMsg{&mergeRequest{}, &mergeResponse{}, &readRequest{}, &readResponse{}} {
			if err := m.decodeWire(b); err != nil {
				continue
			}
			again := reflect.New(reflect.TypeOf(m).Elem()).Interface().(wireMsg)
			if err := again.decodeWire(m.appendWire(nil)); err != nil {
				t.Fatalf("%T: re-encoding of a decoded message does not decode: %v", m, err)
			}
			if !wireEqual(m, again) {
				t.Fatalf("%T: decode(encode(decode(b))) = %+v, decode(b) = %+v", m, again, m)
			}
		}
	})
}

// BenchmarkWire compares the hand-written merge request codec with the
// msgpack library's reflection, per encoded-set size.
func BenchmarkWire(b *testing.B) {
	for _, size := range []int{200, 2000, 20000} {
		m := &mergeRequest{P: 17, H: 1 << 60, K: []byte("key:000123"), Set: bytes.Repeat([]byte{1}, size), Durable: true}
		b.Run(fmt.Sprintf("codec=hand/set=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 64+size)
			var out mergeRequest
			for b.Loop() {
				buf = m.appendWire(buf[:0])
				if err := out.decodeWire(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("codec=msgpack/set=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			var out mergeRequest
			for b.Loop() {
				buf, err := msgpack.Marshal(m)
				if err != nil {
					b.Fatal(err)
				}
				if err := msgpack.Unmarshal(buf, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
