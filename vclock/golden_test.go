package vclock

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/quorumkv/quorumkv/internal/golden"
)

// TestCodecGolden pins the set, context and dot encodings across integer,
// string and byte-string widths: sets are stored on disk and sent between
// nodes, contexts and dots are held by clients.
func TestCodecGolden(t *testing.T) {
	var s []golden.Sample
	add := func(name string, b []byte) { s = append(s, golden.Sample{Name: name, Bytes: b}) }
	set := func(name string, x Set) {
		t.Helper()
		b, err := x.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		add("set/"+name, b)
		add("digest/"+name, fmt.Appendf(nil, "%016x", x.Digest()))
	}
	set("empty", Set{})
	set("golden", goldenSet)
	wide := Set{
		Context: vec(ent("a", 0, 1), ent("b", 200, 127), ent("c", 1<<16, 128), ent(string(bytes.Repeat([]byte("n"), 40)), 1<<32, 1<<16),
			ent("z", math.MaxUint64, MaxCounter)),
	}
	ts := []int64{0, -1, -33, -200, -40000, -1 << 40, 127, 255, 70000, math.MaxInt64, math.MinInt64}
	for i, e := range wide.Context {
		v := Value{ContentType: "application/octet-stream", Timestamp: ts[i%len(ts)]}
		switch i {
		case 1:
			v.Data = make([]byte, 300)
		case 2:
			v.Data = bytes.Repeat([]byte{0xab}, 70000)
			v.ContentType = string(bytes.Repeat([]byte("t"), MaxContentTypeLen))
		case 3:
			v.Deleted = true
		}
		wide.Siblings = append(wide.Siblings, Sibling{Dot: Dot{Actor: e.Actor, Counter: e.Counter}, Value: v})
	}
	set("wide", wide)
	many := Set{Context: manyActors(20, 3, 1)}
	for i, e := range many.Context {
		many.Siblings = append(many.Siblings, Sibling{Dot: Dot{Actor: e.Actor, Counter: 1}, Value: Value{Data: []byte{byte(i)}, Timestamp: ts[i%len(ts)]}})
	}
	set("array16", many)
	for name, v := range map[string]Vector{"one": goldenSet.Context, "wide": wide.Context, "array16": many.Context} {
		add("context/"+name, []byte(EncodeContext(v)))
	}
	for i, e := range wide.Context {
		add(fmt.Sprintf("dot/%d", i), []byte(EncodeDot(Dot(e))))
	}
	sortSamples(s)
	golden.Check(t, "testdata/codec.golden", s)
}

func sortSamples(s []golden.Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Name < s[j-1].Name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
