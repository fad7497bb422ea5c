package vclock

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// goldenSet and goldenHex pin the v1 set encoding. If this test fails, the
// format changed: old stored sets and other nodes' digests no longer match,
// so bump setFormatV1 instead.
var goldenSet = Set{
	Context: vec(ent("n1", 1, 2), ent("n2", 7, 1)),
	Siblings: []Sibling{
		{Dot{act("n1", 1), 2}, Value{Data: []byte("hi"), ContentType: "text/plain", Timestamp: 5}},
		{Dot{act("n2", 7), 1}, Value{Deleted: true, Timestamp: -1}},
	},
}

const goldenHex = "01" + "92" +
	"92" + "93a26e310102" + "93a26e320701" +
	"92" + "960002c4026869aa746578742f706c61696ec205" + "960101c400a0c3ff"

func TestSetEncodingGolden(t *testing.T) {
	b, err := goldenSet.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != goldenHex {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, goldenHex)
	}
	s, err := DecodeSet(b)
	if err != nil || !s.Equal(goldenSet) {
		t.Fatalf("DecodeSet = %v, %v", s, err)
	}
}

func TestSetRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 70000) // bin32
	mid := bytes.Repeat([]byte{0xcd}, 300)   // bin16
	long := strings.Repeat("n", MaxNodeLen)
	tests := []struct {
		name string
		s    Set
	}{
		{"zero", Set{}},
		{"golden", goldenSet},
		{"context only", Set{Context: vec(ent("a", 1, 3))}},
		{"value sizes", Set{Context: vec(ent("a", 1, 3)), Siblings: []Sibling{
			sib("a", 1, 1, Value{Data: big}), sib("a", 1, 2, Value{Data: mid}), sib("a", 1, 3, Value{Data: []byte{}})}}},
		{"extreme numbers", Set{Context: Vector{Entry{act(long, math.MaxUint64), MaxCounter}}, Siblings: []Sibling{
			{Dot{act(long, math.MaxUint64), MaxCounter - 1}, Value{Timestamp: math.MaxInt64}},
			{Dot{act(long, math.MaxUint64), MaxCounter}, Value{Timestamp: math.MinInt64, ContentType: strings.Repeat("t", MaxContentTypeLen)}}}}},
		{"all integer widths", Set{Context: vec(ent("a", 0, 1), ent("b", 200, 300), ent("c", 70000, 1<<33)), Siblings: []Sibling{
			sib("a", 0, 1, Value{Timestamp: -33}), sib("b", 200, 255, Value{Timestamp: -200}),
			sib("c", 70000, 65536, Value{Timestamp: -40000}), sib("c", 70000, 1<<33, Value{Timestamp: -1 << 40})}}},
		{"many actors", Set{Context: manyActors(300, 8, 2), Siblings: []Sibling{
			{Dot{manyActors(300, 8, 2)[299].Actor, 2}, val("last")}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustValid(t, tc.s)
			b, err := tc.s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeSet(b)
			if err != nil {
				t.Fatalf("DecodeSet: %v", err)
			}
			if !got.Equal(tc.s) {
				t.Fatalf("round trip changed the set")
			}
			b2, _ := got.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs")
			}
			if got.Digest() != tc.s.Digest() {
				t.Fatalf("digest changed in the round trip")
			}
			// Decoded Data does not alias the input.
			for i := range b {
				b[i] = 0
			}
			if !got.Equal(tc.s) {
				t.Fatalf("decoded set aliases its input")
			}
			var u Set
			if err := u.UnmarshalBinary(b2); err != nil || !u.Equal(tc.s) {
				t.Fatalf("UnmarshalBinary = %v", err)
			}
		})
	}
}

// Both decoders cap each sibling's Data, so that an append to one cannot
// run into the next; DecodeSetOwned's are the input's bytes (no copy),
// DecodeSet's a copy.
func TestDecodedDataDoesNotOverlap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte) (Set, error)
		alias  bool
	}{
		{"DecodeSet", DecodeSet, false},
		{"DecodeSetOwned", DecodeSetOwned, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Set{Context: vec(ent("a", 1, 2)), Siblings: []Sibling{sib("a", 1, 1, val("xx")), sib("a", 1, 2, val("yy"))}}
			b, _ := s.MarshalBinary()
			got, err := tc.decode(b)
			if err != nil || !got.Equal(s) {
				t.Fatalf("decoded %v, %v; want %v", got, err, s)
			}
			_ = append(got.Siblings[0].Value.Data, "ZZ"...)
			if string(got.Siblings[1].Value.Data) != "yy" {
				t.Fatalf("append to one sibling's Data overwrote the next: %q", got.Siblings[1].Value.Data)
			}
			if _, err := tc.decode(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated input: err = %v, want ErrMalformed", err)
			}
			clear(b)
			if aliased := string(got.Siblings[1].Value.Data) != "yy"; aliased != tc.alias {
				t.Fatalf("values alias the input: %v, want %v", aliased, tc.alias)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	sets := []Set{{}, goldenSet}
	for _, n := range []int{0, 1, hashDirect - 1, hashDirect, hashFlush, 1000, 70000} {
		d := bytes.Repeat([]byte{byte(n)}, n)
		sets = append(sets, Set{Context: vec(ent("a", 1, 3)), Siblings: []Sibling{
			sib("a", 1, 1, Value{Data: d}), sib("a", 1, 2, Value{Data: []byte("small")}), sib("a", 1, 3, Value{Data: d})}})
	}
	seen := map[uint64]int{}
	for i, s := range sets {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := xxhash.Sum64(b)
		if want == 0 {
			want = 1
		}
		if got := s.Digest(); got != want {
			t.Fatalf("set %d: Digest = %x, want xxhash of the encoding %x", i, got, want)
		}
		if j, dup := seen[s.Digest()]; dup {
			t.Fatalf("sets %d and %d share a digest", j, i)
		}
		seen[s.Digest()] = i
	}
}

// The msgpack library's view of the format: the same shapes as in codec.go.
type (
	mpEntry struct {
		_msgpack struct{} `msgpack:",as_array"`
		Node     string
		Epoch    uint64
		Counter  uint64
	}
	mpSibling struct {
		_msgpack    struct{} `msgpack:",as_array"`
		Actor       uint64
		Counter     uint64
		Data        []byte
		ContentType string
		Deleted     bool
		Timestamp   int64
	}
	mpSet struct {
		_msgpack struct{} `msgpack:",as_array"`
		Context  []mpEntry
		Siblings []mpSibling
	}
)

// TestMsgpackInterop checks that the hand-rolled codec is plain msgpack: the
// library reads what we write, and we read what the library writes (it uses
// full-width integers and nil for empty bytes, unlike our writer).
func TestMsgpackInterop(t *testing.T) {
	b, err := goldenSet.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m mpSet
	if err := msgpack.Unmarshal(b[1:], &m); err != nil {
		t.Fatalf("msgpack library cannot read our encoding: %v", err)
	}
	if len(m.Context) != 2 || m.Context[1].Node != "n2" || m.Context[1].Epoch != 7 ||
		len(m.Siblings) != 2 || m.Siblings[0].Actor != 0 || string(m.Siblings[0].Data) != "hi" ||
		m.Siblings[1].Actor != 1 || !m.Siblings[1].Deleted || m.Siblings[1].Timestamp != -1 {
		t.Fatalf("library decoded %+v", m)
	}

	theirs, err := msgpack.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(theirs, b[1:]) {
		t.Log("library output equals ours; the leniency below is not exercised")
	}
	got, err := DecodeSet(append([]byte{setFormatV1}, theirs...))
	if err != nil || !got.Equal(goldenSet) {
		t.Fatalf("cannot read the library's encoding: %v", err)
	}

	var e mpEntry
	tok := EncodeContext(goldenSet.Context)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	var es []mpEntry
	if err := msgpack.Unmarshal(raw[1:], &es); err != nil || len(es) != 2 || es[0].Node != "n1" || es[0].Counter != 2 {
		t.Fatalf("library reads context as %+v, %v", es, err)
	}
	raw, _ = base64.RawURLEncoding.DecodeString(EncodeDot(Dot{act("n9", 3), 4}))
	if err := msgpack.Unmarshal(raw[1:], &e); err != nil || e.Node != "n9" || e.Epoch != 3 || e.Counter != 4 {
		t.Fatalf("library reads dot as %+v, %v", e, err)
	}
}

// hexSet builds a set encoding from hex fragments, with the version byte.
func hexSet(parts ...string) []byte {
	b, err := hex.DecodeString("01" + strings.Join(parts, ""))
	if err != nil {
		panic(err) // test table typo
	}
	return b
}

func TestDecodeSetRejects(t *testing.T) {
	const (
		ctxA2  = "91" + "93a1610102"                // [a#1:2]
		sibA1  = "960001c40178a0c200"               // actor 0, counter 1, "x"
		sibA2  = "960002c40178a0c200"               // actor 0, counter 2
		ctxAB  = "92" + "93a1610101" + "93a1620101" // [a#1:1 b#1:1]
		ctxBA  = "92" + "93a1620101" + "93a1610101" // unsorted
		ctxAA  = "92" + "93a1610101" + "93a1610102" // duplicate actor
		nodeOK = "93a1610101"
	)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"version only", hexSet(), ErrMalformed},
		{"unknown version", []byte{0x02, 0x92, 0x90, 0x90}, ErrVersion},
		{"version zero", []byte{0x00, 0x92, 0x90, 0x90}, ErrVersion},
		{"top level not an array", hexSet("c0"), ErrMalformed},
		{"top level of three", hexSet("93", "90", "90", "90"), ErrMalformed},
		{"trailing byte", hexSet("92", "90", "90", "00"), ErrMalformed},
		{"truncated", hexSet("92", ctxA2, "91", sibA1)[:12], ErrMalformed},
		{"unsorted actors", hexSet("92", ctxBA, "90"), ErrMalformed},
		{"duplicate actor", hexSet("92", ctxAA, "90"), ErrMalformed},
		{"zero counter", hexSet("92", "91", "93a1610100", "90"), ErrMalformed},
		{"counter past MaxCounter", hexSet("92", "91", "93a16101cf8000000000000000", "90"), ErrTooLarge},
		{"negative counter", hexSet("92", "91", "93a16101ff", "90"), ErrMalformed},
		{"empty node", hexSet("92", "91", "93a00101", "90"), ErrMalformed},
		{"node too long", hexSet("92", "91", "93da0100"+strings.Repeat("61", 256)+"0101", "90"), ErrMalformed},
		{"node as bin", hexSet("92", "91", "93c401610101", "90"), ErrMalformed},
		{"entry of two", hexSet("92", "91", "92a16101", "90"), ErrMalformed},
		{"sibling not covered", hexSet("92", "91", nodeOK, "91", sibA2), ErrMalformed},
		{"sibling zero counter", hexSet("92", "91", nodeOK, "91", "960000c40178a0c200"), ErrMalformed},
		{"sibling actor out of range", hexSet("92", "91", nodeOK, "91", "960101c40178a0c200"), ErrMalformed},
		{"sibling without context", hexSet("92", "90", "91", sibA1), ErrMalformed},
		{"duplicate dot", hexSet("92", ctxA2, "92", sibA1, sibA1), ErrMalformed},
		{"unsorted siblings", hexSet("92", ctxA2, "92", sibA2, sibA1), ErrMalformed},
		{"unsorted siblings across actors", hexSet("92", ctxAB, "92", "960101c40178a0c200", sibA1), ErrMalformed},
		{"sibling of five fields", hexSet("92", ctxA2, "91", "950001c40178a0c2"), ErrMalformed},
		{"data as str", hexSet("92", ctxA2, "91", "960001a178a0c200"), ErrMalformed},
		{"deleted not a bool", hexSet("92", ctxA2, "91", "960001c40178a00000"), ErrMalformed},
		{"timestamp not an int", hexSet("92", ctxA2, "91", "960001c40178a0c2c0"), ErrMalformed},
		{"timestamp past int64", hexSet("92", ctxA2, "91", "960001c40178a0c2cfffffffffffffffff"), ErrMalformed},
		{"content type too long", hexSet("92", ctxA2, "91", "960001c40178da0100"+strings.Repeat("74", 256)+"c200"), ErrTooLarge},
		{"bin longer than the input", hexSet("92", ctxA2, "91", "960001c6ffffffff"), ErrMalformed},
		{"too many actors", hexSet("92", "dc0401"), ErrTooLarge},
		{"huge actor count", hexSet("92", "ddffffffff"), ErrTooLarge},
		{"actor count past the input", hexSet("92", "dc0010", nodeOK), ErrMalformed},
		{"too many siblings", hexSet("92", ctxA2, "dc1001"+strings.Repeat(sibA1, 600)), ErrTooLarge},
		{"sibling count past the input", hexSet("92", ctxA2, "dc0100", sibA1), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DecodeSet(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeSet(%x) = %v, %v; want %v", tc.in, s, err, tc.want)
			}
			if !s.Equal(Set{}) {
				t.Fatalf("a failed decode returned a set")
			}
			var u Set = goldenSet
			if u.UnmarshalBinary(tc.in) == nil || !u.Equal(goldenSet) {
				t.Fatalf("UnmarshalBinary changed its receiver on error")
			}
		})
	}
	// The table's good building blocks decode, so each rejection is for the
	// reason its name gives.
	for _, ok := range [][]byte{hexSet("92", ctxA2, "92", sibA1, sibA2), hexSet("92", ctxAB, "92", sibA1, "960101c40178a0c200")} {
		if _, err := DecodeSet(ok); err != nil {
			t.Fatalf("DecodeSet(%x): %v", ok, err)
		}
	}
}

func TestContextRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    Vector
	}{
		{"one", vec(ent("n1", 1, 1))},
		{"five", vec(ent("n1", 1, 10000), ent("n2", 1, 3), ent("n3", 2, 99), ent("n4", 1, 1), ent("n5", 9, 70000))},
		{"extreme", Vector{Entry{act(strings.Repeat("\xff", MaxNodeLen), math.MaxUint64), MaxCounter}}},
		{"many", manyActors(200, 10, 12345)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := EncodeContext(tc.v)
			for _, c := range []byte(tok) {
				if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(c)) {
					t.Fatalf("token %q is not URL-safe", tok)
				}
			}
			got, err := DecodeContext(tok)
			if err != nil || !got.Equal(tc.v) {
				t.Fatalf("DecodeContext = %v, %v", got, err)
			}
		})
	}
	if tok := EncodeContext(nil); tok != "" {
		t.Fatalf("empty context encodes as %q", tok)
	}
	if v, err := DecodeContext(""); v != nil || err != nil {
		t.Fatalf(`DecodeContext("") = %v, %v`, v, err)
	}
}

// TestContextLimits checks that MaxContextLen is exactly the longest context
// within the other limits, so every such context round-trips.
func TestContextLimits(t *testing.T) {
	v := manyActors(MaxActors, MaxNodeLen, MaxCounter)
	for i := range v {
		v[i].Actor.Epoch = math.MaxUint64
	}
	tok := EncodeContext(v)
	if len(tok) != MaxContextLen {
		t.Fatalf("largest context is %d characters, MaxContextLen is %d", len(tok), MaxContextLen)
	}
	if got, err := DecodeContext(tok); err != nil || !got.Equal(v) {
		t.Fatalf("largest context does not round-trip: %v", err)
	}
	over := append(v[:len(v):len(v)], Entry{Actor: act("zzz", 1), Counter: 1})
	if _, err := DecodeContext(EncodeContext(over)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("context of MaxActors+1: %v", err)
	}
	small := manyActors(MaxActors+1, 3, 1)
	if _, err := DecodeContext(EncodeContext(small)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxActors+1 short actors: %v", err)
	}
}

func TestDecodeContextRejects(t *testing.T) {
	good := EncodeContext(vec(ent("a", 1, 1)))
	raw := func(h string) string {
		b, _ := hex.DecodeString(h)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"too long", strings.Repeat("A", MaxContextLen+1), ErrTooLarge},
		{"padding", base64.URLEncoding.EncodeToString([]byte{1, 0x91, 0x93, 0xa1, 'a', 1, 1}), ErrMalformed},
		{"newline inside", good[:2] + "\n" + good[2:], ErrMalformed},
		{"standard alphabet", "+/+/", ErrMalformed},
		{"space", " " + good, ErrMalformed},
		{"impossible length", "A", ErrMalformed},
		{"non-zero trailing bits", good[:len(good)-1] + "B", ErrMalformed},
		{"unknown version", raw("029193a1610101"), ErrVersion},
		{"version only", raw("01"), ErrMalformed},
		{"trailing byte", raw("019193a161010100"), ErrMalformed},
		{"not an array", raw("01c0"), ErrMalformed},
		{"unsorted", raw("019293a162010193a1610101"), ErrMalformed},
		{"zero counter", raw("019193a1610100"), ErrMalformed},
		{"too many actors", raw("01dc0401"), ErrTooLarge},
		{"count past input", raw("01dc0010"), ErrMalformed},
		{"set encoding is not a context", raw(goldenHex), ErrMalformed},
		{"dot token is not a context", EncodeDot(Dot{act("a", 1), 1}), ErrMalformed},
	}
	if good[len(good)-1] == 'B' {
		t.Fatal("pick another trailing character for the test")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeContext(tc.in)
			if !errors.Is(err, tc.want) || v != nil {
				t.Fatalf("DecodeContext(%.40q) = %v, %v; want %v", tc.in, v, err, tc.want)
			}
		})
	}
}

func TestDotToken(t *testing.T) {
	for _, d := range []Dot{
		{act("n1", 1), 1},
		{act("node-with-a-long-name.example.com", 1<<40), MaxCounter},
		{act(strings.Repeat("#", MaxNodeLen), math.MaxUint64), 7},
	} {
		tok := EncodeDot(d)
		got, err := DecodeDot(tok)
		if err != nil || got != d {
			t.Fatalf("DecodeDot(EncodeDot(%v)) = %v, %v", d, got, err)
		}
		if len(tok) > maxDotLen {
			t.Fatalf("dot token of %d characters, limit %d", len(tok), maxDotLen)
		}
	}
	raw := func(h string) string {
		b, _ := hex.DecodeString(h)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"too long", strings.Repeat("A", maxDotLen+1), ErrTooLarge},
		{"bad character", "AQ.", ErrMalformed},
		{"unknown version", raw("0993a1610101"), ErrVersion},
		{"zero counter", raw("0193a1610100"), ErrMalformed},
		{"trailing byte", raw("0193a161010100"), ErrMalformed},
		{"a context is not a dot", EncodeContext(vec(ent("a", 1, 1))), ErrMalformed},
	} {
		if d, err := DecodeDot(tc.in); !errors.Is(err, tc.want) || d != (Dot{}) {
			t.Errorf("%s: DecodeDot = %v, %v; want %v", tc.name, d, err, tc.want)
		}
	}
}

// TestHostileLengthsAllocateLittle checks that a claimed length is never
// trusted: inputs that announce huge counts allocate about nothing.
func TestHostileLengthsAllocateLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocation")
	}
	inputs := [][]byte{
		hexSet("92", "ddffffffff"),
		hexSet("92", "dc0400", strings.Repeat("00", 64)),
		hexSet("92", "91", "93a1610101", "dc1000", strings.Repeat("00", 64)),
		hexSet("92", "91", "93a1610101", "91", "960001c6ffffffff", strings.Repeat("00", 64)),
		hexSet("92", "91", "93db7fffffff"),
	}
	tokens := []string{
		base64.RawURLEncoding.EncodeToString(hexSet("ddffffffff")),
		base64.RawURLEncoding.EncodeToString(hexSet("dc0400")),
	}
	var before, after runtime.MemStats
	const runs = 100
	runtime.ReadMemStats(&before)
	for range runs {
		for _, in := range inputs {
			if _, err := DecodeSet(in); err == nil {
				t.Fatalf("DecodeSet(%x) accepted", in)
			}
		}
		for _, tok := range tokens {
			if _, err := DecodeContext(tok); err == nil {
				t.Fatalf("DecodeContext(%s) accepted", tok)
			}
		}
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	if perRun > 4096 {
		t.Fatalf("hostile inputs allocated %d bytes per round", perRun)
	}
}
