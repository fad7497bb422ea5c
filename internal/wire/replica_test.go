package wire

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// message is what every message of this package implements.
type message interface {
	Append(b []byte) ([]byte, error)
	Decode(b []byte) error
}

// The msgpack library's view of the replica messages: the structs these
// messages were once encoded from by reflection.
type (
	libMergeRequest struct {
		_msgpack struct{} `msgpack:",as_array"`
		P        uint32
		H        uint64
		K        []byte
		HintFor  string
		Set      []byte
		Durable  bool
	}
	libMergeResponse struct {
		_msgpack struct{} `msgpack:",as_array"`
		Durable  bool
	}
	libReadRequest struct {
		_msgpack struct{} `msgpack:",as_array"`
		P        uint32
		H        uint64
		K        []byte
		HintFor  string
	}
	libReadResponse struct {
		_msgpack struct{} `msgpack:",as_array"`
		Found    bool
		Set      []byte
	}
	libForwardRequest struct {
		_msgpack       struct{} `msgpack:",as_array"`
		Key            []byte
		Data           []byte
		ContentType    string
		Deleted        bool
		Context        string
		N, R, W        int
		PR, PW, DW     int
		TimeoutMS      int64
		Hops           int
		SupersedeLocal bool
	}
	// libError lays out Error's fields by reflection (Kind, a uint8, at
	// full width as the library writes every uint8).
	libError struct {
		_msgpack struct{} `msgpack:",as_array"`
		Error    `msgpack:",inline"`
	}
	libForwardResponse struct {
		_msgpack    struct{} `msgpack:",as_array"`
		Err         *libError
		Set         []byte
		Dot         string
		Primary     int
		Fallback    int
		Durable     int
		Coordinator string
	}
)

func genBytes(t *rapid.T, label string, maxLen int) []byte {
	if rapid.Bool().Draw(t, label+" nil") {
		return nil
	}
	return rapid.SliceOfN(rapid.Byte(), 0, maxLen).Draw(t, label)
}

func genInt(t *rapid.T, label string) int {
	return rapid.OneOf(rapid.IntRange(-40, 300), rapid.Int()).Draw(t, label)
}

func genError(t *rapid.T) *Error {
	if rapid.Bool().Draw(t, "no error") {
		return nil
	}
	e := &Error{Kind: ErrorKind(rapid.Uint8().Draw(t, "kind")), Msg: rapid.String().Draw(t, "msg"),
		Param: rapid.String().Draw(t, "param"), Op: rapid.String().Draw(t, "op")}
	for _, p := range []*int{&e.Required, &e.Acks, &e.ReqPrim, &e.Prim, &e.ReqDur, &e.Durable, &e.Fallback, &e.Targets} {
		*p = genInt(t, "count")
	}
	return e
}

// pair is a message and the library struct with the same values.
type pair struct {
	ours message
	lib  any
}

var pairGens = map[string]func(t *rapid.T) pair{
	"merge request": func(t *rapid.T) pair {
		m := &MergeRequest{Partition: rapid.Uint32().Draw(t, "p"), Hash: rapid.Uint64().Draw(t, "h"),
			Key: rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "k"), HintFor: rapid.StringN(0, 70, MaxNodeID).Draw(t, "hint"),
			Set: genBytes(t, "set", 70000), Durable: rapid.Bool().Draw(t, "durable")}
		return pair{m, &libMergeRequest{P: m.Partition, H: m.Hash, K: m.Key, HintFor: m.HintFor, Set: m.Set, Durable: m.Durable}}
	},
	"merge response": func(t *rapid.T) pair {
		m := &MergeResponse{Durable: rapid.Bool().Draw(t, "durable")}
		return pair{m, &libMergeResponse{Durable: m.Durable}}
	},
	"read request": func(t *rapid.T) pair {
		m := &ReadRequest{Partition: rapid.Uint32().Draw(t, "p"), Hash: rapid.Uint64().Draw(t, "h"),
			Key: rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "k"), HintFor: rapid.StringN(0, 70, MaxNodeID).Draw(t, "hint")}
		return pair{m, &libReadRequest{P: m.Partition, H: m.Hash, K: m.Key, HintFor: m.HintFor}}
	},
	"read response": func(t *rapid.T) pair {
		m := &ReadResponse{Found: rapid.Bool().Draw(t, "found"), Set: genBytes(t, "set", 300)}
		return pair{m, &libReadResponse{Found: m.Found, Set: m.Set}}
	},
	"forward request": func(t *rapid.T) pair {
		m := &ForwardRequest{Key: genBytes(t, "key", 300), Data: genBytes(t, "data", 70000), ContentType: rapid.String().Draw(t, "ct"),
			Deleted: rapid.Bool().Draw(t, "deleted"), Context: rapid.String().Draw(t, "ctx"),
			N: genInt(t, "n"), R: genInt(t, "r"), W: genInt(t, "w"), PR: genInt(t, "pr"), PW: genInt(t, "pw"), DW: genInt(t, "dw"),
			TimeoutMS: rapid.Int64().Draw(t, "timeout"), Hops: genInt(t, "hops"), SupersedeLocal: rapid.Bool().Draw(t, "supersede")}
		return pair{m, &libForwardRequest{Key: m.Key, Data: m.Data, ContentType: m.ContentType, Deleted: m.Deleted, Context: m.Context,
			N: m.N, R: m.R, W: m.W, PR: m.PR, PW: m.PW, DW: m.DW, TimeoutMS: m.TimeoutMS, Hops: m.Hops, SupersedeLocal: m.SupersedeLocal}}
	},
	"forward response": func(t *rapid.T) pair {
		m := &ForwardResponse{Err: genError(t), Set: genBytes(t, "set", 300), Dot: rapid.String().Draw(t, "dot"),
			Primary: genInt(t, "primary"), Fallback: genInt(t, "fallback"), Durable: genInt(t, "durable"),
			Coordinator: rapid.String().Draw(t, "coord")}
		l := &libForwardResponse{Set: m.Set, Dot: m.Dot, Primary: m.Primary, Fallback: m.Fallback, Durable: m.Durable, Coordinator: m.Coordinator}
		if e := m.Err; e != nil {
			l.Err = &libError{Error: *e}
		}
		return pair{m, l}
	},
}

// TestReplicaMessagesMatchMsgpack checks the hand-written codecs against
// the msgpack library that encoded these messages by reflection before:
// the same bytes out, the same values back in, both ways, so nodes with
// either codec understand each other.
func TestReplicaMessagesMatchMsgpack(t *testing.T) {
	for name, gen := range pairGens {
		t.Run(name, rapid.MakeCheck(func(t *rapid.T) {
			p := gen(t)
			lib, err := msgpack.Marshal(p.lib)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.ours.Append(nil)
			if err != nil || !bytes.Equal(got, lib) {
				t.Fatalf("Append = %x, %v\nlibrary %x", got, err, lib)
			}
			mine := reflect.New(reflect.TypeOf(p.ours).Elem()).Interface().(message)
			if err := mine.Decode(lib); err != nil {
				t.Fatalf("Decode of the library's bytes: %v", err)
			}
			theirs := reflect.New(reflect.TypeOf(p.lib).Elem()).Interface()
			if err := msgpack.Unmarshal(got, theirs); err != nil {
				t.Fatalf("the library cannot read ours: %v", err)
			}
			again, err := mine.Append(nil)
			if err != nil || !bytes.Equal(again, lib) {
				t.Fatalf("decoded %+v re-encodes to %x, want %x", mine, again, lib)
			}
			if ta, _ := msgpack.Marshal(theirs); !bytes.Equal(ta, lib) {
				t.Fatalf("the library decoded our bytes to %+v", theirs)
			}
		}))
	}
}

// TestReplicaMessagesAcceptOtherWidths: the msgpack library accepts any
// integer width and str for bin; so must we.
func TestReplicaMessagesAcceptOtherWidths(t *testing.T) {
	// [P=int16 5, H=uint64 7, K=str "k", HintFor=bin "n2", Set=nil, true]
	b := []byte{0x96, 0xd1, 0x00, 0x05, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xa1, 'k', 0xc4, 2, 'n', '2', 0xc0, 0xc3}
	var m MergeRequest
	if err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	if m.Partition != 5 || m.Hash != 7 || string(m.Key) != "k" || m.HintFor != "n2" || m.Set != nil || !m.Durable {
		t.Fatalf("decoded %+v", m)
	}
}

func TestReplicaMessagesRejectMalformed(t *testing.T) {
	good, _ := (&MergeRequest{Partition: 1, Hash: 2, Key: []byte("k"), Set: []byte{1}}).Append(nil)
	resp, _ := (&MergeResponse{}).Append(nil)
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"wrong arity":    append([]byte{0x95}, good[1:]...),
		"negative":       {0x96, 0xd0, 0xff},
		"p over uint32":  {0x96, 0xcf, 1, 0, 0, 0, 0, 0, 0, 0},
		"bin past end":   {0x96, 1, 2, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"not a bool":     resp[:1],
		"map not array":  {0x81, 0xa1, 'P', 1},
		"reserved 0xc1":  {0xc1},
		"bool as number": {0x91, 0x01},
		"long hint":      append([]byte{0x96, 1, 2, 0xa1, 'k', 0xda, 0x01, 0x00}, make([]byte, 256)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var m MergeRequest
			var r MergeResponse
			if m.Decode(b) == nil && r.Decode(b) == nil {
				t.Fatalf("%x decoded without error", b)
			}
		})
	}
	if err := (&ForwardRequest{}).Decode(append([]byte{0x9d}, make([]byte, 13)...)); err == nil {
		t.Fatal("a forward request of 13 fields decoded")
	}
	// A deadline makes a fifteenth field, under its own method; zero there
	// is not canonical.
	m := ForwardRequest{Key: []byte("k"), Expires: 42}
	b, _ := m.Append(nil)
	var got ForwardRequest
	if err := got.Decode(b); err != nil || got.Expires != 42 || b[0] != 0x9f || m.Method() != MethodForwardExpiring {
		t.Fatalf("expiring forward: %x decoded %+v, %v", b, got, err)
	}
	if (&ForwardRequest{}).Method() != MethodForward {
		t.Fatal("a forward without a deadline changed method")
	}
	b[len(b)-1] = 0
	if err := got.Decode(b); err == nil {
		t.Fatal("a fifteenth field of 0 decoded")
	}
	// pz makes a sixteenth field (after the deadline, which may then be
	// 0), under its own method; the answer to it an eighth, the zones.
	for _, exp := range []int64{0, 42} {
		m = ForwardRequest{Key: []byte("k"), Expires: exp, PZ: 2}
		b, _ = m.Append(nil)
		if err := got.Decode(b); err != nil || got.PZ != 2 || got.Expires != exp || b[0] != 0xdc || m.Method() != MethodForwardZones {
			t.Fatalf("forward with pz: %x decoded %+v, %v", b, got, err)
		}
		b[len(b)-1] = 0
		if err := got.Decode(b); err == nil {
			t.Fatal("a sixteenth field of 0 decoded")
		}
	}
	fresp := ForwardResponse{Set: []byte{1}, Coordinator: "n1", Zones: 3}
	b, _ = fresp.Append(nil)
	var gotResp ForwardResponse
	if err := gotResp.Decode(b); err != nil || gotResp.Zones != 3 || b[0] != 0x98 {
		t.Fatalf("forward answer with zones: %x decoded %+v, %v", b, gotResp, err)
	}
	b[len(b)-1] = 0
	if err := gotResp.Decode(b); err == nil {
		t.Fatal("an eighth field of 0 decoded")
	}
	fresp.Zones = 0
	if b, _ = fresp.Append(nil); b[0] != 0x97 {
		t.Fatalf("an answer without zones is not the 7-element one: %x", b)
	}
}

// FuzzWireDecode feeds untrusted bytes to every replica-path decoder:
// no panic, and whatever decodes re-encodes to bytes that decode the same.
func FuzzWireDecode(f *testing.F) {
	for _, m := range []message{
		&MergeRequest{Partition: 3, Hash: 1 << 40, Key: []byte("key"), HintFor: "n2", Set: []byte{1, 2, 3}, Durable: true},
		&ReadRequest{Partition: 3, Hash: 9, Key: []byte("key")},
		&ReadResponse{Found: true, Set: bytes.Repeat([]byte{7}, 300)},
		&MergeResponse{Durable: true},
		&MergeCheckResponse{Durable: true},
		&MergeCheckResponse{Clean: false, Prior: []byte{0x92, 0x90, 0x90}},
		&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, Hops: 1},
		&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, Expires: 7},
		&ForwardRequest{Key: []byte("k"), Data: []byte("v"), N: 3, R: 2, W: 2, TimeoutMS: 1500, PZ: 2},
		&ForwardResponse{Set: []byte{1}, Dot: "d", Primary: 2, Coordinator: "n1", Zones: 3},
		&ForwardResponse{Err: &Error{Kind: KindQuorum, Msg: "m", Required: 2, Acks: 1}},
		&ForwardResponse{Set: []byte{1}, Dot: "d", Primary: 2, Coordinator: "n1"},
	} {
		b, _ := m.Append(nil)
		f.Add(b)
	}
	f.Add([]byte{0x96, 0xd1, 0x00, 0x05, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xa1, 'k', 0xc4, 2, 'n', '2', 0xc0, 0xc3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []message{&MergeRequest{}, &MergeResponse{}, &MergeCheckResponse{}, &ReadRequest{}, &ReadResponse{}, &ForwardRequest{}, &ForwardResponse{}} {
			checkReencode(t, m, b)
		}
	})
}

// checkReencode decodes b into m; if that works, m's encoding must decode
// to the same values.
func checkReencode(t *testing.T, m message, b []byte) {
	t.Helper()
	if err := m.Decode(b); err != nil {
		if !isWireErr(err) {
			t.Fatalf("%T: error %v does not wrap ErrMalformed", m, err)
		}
		return
	}
	enc, err := m.Append(nil)
	if err != nil {
		t.Fatalf("%T: re-encode %+v: %v", m, m, err)
	}
	again := reflect.New(reflect.TypeOf(m).Elem()).Interface().(message)
	if err := again.Decode(enc); err != nil {
		t.Fatalf("%T: re-encoding of a decoded message does not decode: %v", m, err)
	}
	if !sameMessage(m, again) {
		t.Fatalf("%T: decode(encode(decode(b))) = %+v, decode(b) = %+v", m, again, m)
	}
}

// sameMessage compares messages treating nil and empty byte slices of a
// Set alike only where the encoding does (it keeps nil apart).
func sameMessage(a, b message) bool {
	ea, _ := a.Append(nil)
	eb, _ := b.Append(nil)
	return bytes.Equal(ea, eb) && reflect.DeepEqual(a, b)
}

// BenchmarkMergeRequest compares the hand-written merge request codec with
// the msgpack library's reflection, per encoded-set size.
func BenchmarkMergeRequest(b *testing.B) {
	for _, size := range []int{200, 2000, 20000} {
		m := &MergeRequest{Partition: 17, Hash: 1 << 60, Key: []byte("key:000123"), Set: bytes.Repeat([]byte{1}, size), Durable: true}
		b.Run(fmt.Sprintf("codec=hand/set=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 64+size)
			var out MergeRequest
			for b.Loop() {
				buf, _ = m.Append(buf[:0])
				if err := out.Decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		lm := &libMergeRequest{P: m.Partition, H: m.Hash, K: m.Key, Set: m.Set, Durable: true}
		b.Run(fmt.Sprintf("codec=msgpack/set=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			var out libMergeRequest
			for b.Loop() {
				buf, err := msgpack.Marshal(lm)
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
