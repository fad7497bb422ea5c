package vclock

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// refUpdate is what Update computes, written as its definition rather
// than its merge loop: the reference TestSharedAllocMatchesReference
// holds Update's single-allocation result to.
func refUpdate(s Set, ctx Vector, a Actor, v Value) (Set, Dot) {
	dot := Dot{Actor: a, Counter: max(s.Context.Get(a), ctx.Get(a)) + 1}
	out := Set{Context: s.Context.Merge(ctx).Merge(Vector{{Actor: a, Counter: dot.Counter}})}
	out.Siblings = []Sibling{{Dot: dot, Value: v}}
	for _, sib := range s.Siblings {
		if !ctx.Covers(sib.Dot) {
			out.Siblings = append(out.Siblings, sib)
		}
	}
	slices.SortFunc(out.Siblings, func(x, y Sibling) int { return compareDots(x.Dot, y.Dot) })
	return out, dot
}

// refDecodeSet is DecodeSet (alias false) and DecodeSetOwned (alias
// true) as they were before a small set's context, siblings and Data
// shared one allocation.
func refDecodeSet(b []byte, alias bool) (Set, error) {
	r, err := formatReader(b, setFormatV1)
	if err != nil {
		return Set{}, fmt.Errorf("decode set: %w", err)
	}
	r.Array(2)
	ctx, err := readVector(&r)
	if err != nil {
		return Set{}, fmt.Errorf("decode set: %w", fmt.Errorf("context: %w", err))
	}
	n, err := readCount(&r, MaxSiblings, minSiblingRaw)
	if err != nil {
		return Set{}, fmt.Errorf("decode set: %w", err)
	}
	var sibs []Sibling
	if n > 0 {
		sibs = make([]Sibling, n)
		total, prevType := 0, ""
		for i := range sibs {
			if sibs[i], err = readSibling(&r, ctx, prevType); err != nil {
				return Set{}, fmt.Errorf("decode set: %w", fmt.Errorf("sibling %d: %w", i, err))
			}
			if i > 0 && compareDots(sibs[i-1].Dot, sibs[i].Dot) >= 0 {
				return Set{}, fmt.Errorf("decode set: %w", fmt.Errorf("sibling %d: unsorted or duplicate dot: %w", i, ErrMalformed))
			}
			prevType = sibs[i].Value.ContentType
			total += len(sibs[i].Value.Data)
		}
		if !alias {
			buf := make([]byte, 0, total)
			for i := range sibs {
				if d := sibs[i].Value.Data; len(d) > 0 {
					start := len(buf)
					buf = append(buf, d...)
					sibs[i].Value.Data = buf[start:len(buf):len(buf)]
				}
			}
		}
	}
	if err := readEnd(&r); err != nil {
		return Set{}, fmt.Errorf("decode set: %w", err)
	}
	return Set{Context: ctx, Siblings: sibs}, nil
}

// drawSet draws a valid set over a few actors (node ids of 1 to 40
// bytes, several epochs), with 0 to 4 siblings of 0 to 400 bytes: small
// and past the shared allocations' sizes.
func drawSet(t *rapid.T, label string) Set {
	nodes := []string{"n1", "n2", "node-03", "a", "a-rather-long-node-identifier-of-40-byte"}
	var ctx []Entry
	for range rapid.IntRange(0, 7).Draw(t, label+"/actors") {
		ctx = append(ctx, Entry{
			Actor:   Actor{Node: rapid.SampledFrom(nodes).Draw(t, label+"/node"), Epoch: rapid.Uint64Range(0, 3).Draw(t, label+"/epoch")},
			Counter: rapid.Uint64Range(1, 1<<20).Draw(t, label+"/counter"),
		})
	}
	s := Set{Context: NewVector(ctx...)}
	for range rapid.IntRange(0, 4).Draw(t, label+"/siblings") {
		if len(s.Context) == 0 {
			break
		}
		e := rapid.SampledFrom(s.Context).Draw(t, label+"/of")
		d := Dot{Actor: e.Actor, Counter: rapid.Uint64Range(1, e.Counter).Draw(t, label+"/dot")}
		if slices.ContainsFunc(s.Siblings, func(o Sibling) bool { return o.Dot == d }) {
			continue
		}
		v := Value{
			Data:        bytes.Repeat([]byte{'x'}, rapid.IntRange(0, 400).Draw(t, label+"/size")),
			ContentType: rapid.SampledFrom([]string{"", "text/plain", "application/x-made-up"}).Draw(t, label+"/type"),
			Deleted:     rapid.Bool().Draw(t, label+"/deleted"),
			Timestamp:   rapid.Int64().Draw(t, label+"/ts"),
			Expires:     rapid.SampledFrom([]int64{0, 1, 1 << 61}).Draw(t, label+"/expires"),
		}
		if len(v.Data) == 0 {
			v.Data = nil
		}
		s.Siblings = append(s.Siblings, Sibling{Dot: d, Value: v})
	}
	slices.SortFunc(s.Siblings, func(a, b Sibling) int { return compareDots(a.Dot, b.Dot) })
	if err := s.Validate(); err != nil {
		t.Fatalf("drawn set invalid: %v", err)
	}
	return s
}

// TestSharedAllocMatchesReference holds Update, DecodeSet and
// DecodeSetOwned to their code before small sets shared one allocation:
// the same sets (nil slices where those had nil), the same dots, the same
// encodings, and on damaged input the same errors.
func TestSharedAllocMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSet(t, "stored")
		ctx := drawSet(t, "client").Context
		if rapid.Bool().Draw(t, "supersede") {
			ctx = ctx.Merge(s.Context)
		}
		a := Actor{Node: rapid.SampledFrom([]string{"n1", "n2", "zz"}).Draw(t, "actor"), Epoch: rapid.Uint64Range(0, 3).Draw(t, "epoch")}
		v := Value{Data: []byte("new"), Timestamp: 9}

		got, gotDot := Update(s, ctx, a, v)
		want, wantDot := refUpdate(s, ctx, a, v)
		if gotDot != wantDot || !reflect.DeepEqual(got, want) {
			t.Fatalf("Update: got %v %+v, want %v %+v", gotDot, got, wantDot, want)
		}
		gotEnc, err1 := got.MarshalBinary()
		wantEnc, err2 := want.MarshalBinary()
		if !bytes.Equal(gotEnc, wantEnc) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Update's encodings differ: %x (%v), %x (%v)", gotEnc, err1, wantEnc, err2)
		}

		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		inputs := [][]byte{enc}
		if len(enc) > 1 {
			cut := rapid.IntRange(0, len(enc)-1).Draw(t, "cut")
			flipped := slices.Clone(enc)
			flipped[cut] ^= byte(rapid.IntRange(1, 255).Draw(t, "flip"))
			inputs = append(inputs, enc[:cut], flipped, append(slices.Clone(enc), 0))
		}
		for i, in := range inputs {
			for _, alias := range []bool{false, true} {
				decode := DecodeSet
				if alias {
					decode = DecodeSetOwned
				}
				got, gotErr := decode(slices.Clone(in))
				want, wantErr := refDecodeSet(slices.Clone(in), alias)
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
					t.Fatalf("decode (alias %v) of %x: got %+v, %v; want %+v, %v", alias, in, got, gotErr, want, wantErr)
				}
				if i == 0 { // the intact encoding (a damaged one may decode, not canonically)
					if re, _ := got.MarshalBinary(); !bytes.Equal(re, in) {
						t.Fatalf("decode (alias %v) of %x re-encodes as %x", alias, in, re)
					}
				}
			}
		}
	})
}

// TestSharedAllocSlicesApart checks that appending to one slice of a set
// sharing an allocation never changes another: each is capped at its
// own array.
func TestSharedAllocSlicesApart(t *testing.T) {
	s, _ := Update(Set{}, nil, act("n1", 1), val("abc"))
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []Set{s, mustDecode(t, enc)} {
		before := got.Clone()
		_ = append(got.Context, Entry{Actor: act("zz", 1), Counter: 1})
		_ = append(got.Siblings, Sibling{Dot: Dot{Actor: act("zz", 1), Counter: 1}, Value: val("zzzzzz")})
		_ = append(got.Siblings[0].Value.Data, "zzzzzz"...)
		if !reflect.DeepEqual(got, before) {
			t.Fatalf("an append changed the set: %+v, was %+v", got, before)
		}
	}
}

func mustDecode(t *testing.T, b []byte) Set {
	t.Helper()
	s, err := DecodeSet(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMintAllocs pins the allocations of the vclock half of a local mint
// (BenchmarkMint): decoding a small stored set takes one, Update one.
func TestMintAllocs(t *testing.T) {
	enc, err := benchSet(1, 1, 100, 0).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	a := Actor{Node: "node-00", Epoch: 1}
	v := Value{Data: make([]byte, 100)}
	// Other tests' damaged inputs may have filled the node id table;
	// start afresh, as a node's decodes of its peers' ids do.
	interned.Store(nil)
	var cur Set
	if n := testing.AllocsPerRun(100, func() { cur, _ = DecodeSet(enc) }); n != 1 {
		t.Errorf("DecodeSet: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Update(cur, cur.Context, a, v) }); n != 1 {
		t.Errorf("Update: %v allocations, want 1", n)
	}
}
