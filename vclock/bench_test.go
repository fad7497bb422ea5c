package vclock

import (
	"fmt"
	"slices"
	"testing"
)

// benchSet returns a set over `nodes` actors with counters near 1000 and
// `siblings` siblings of valueSize bytes, written by distinct actors (cycling
// through them with distinct counters if siblings > nodes).
func benchSet(nodes, siblings, valueSize int, seed uint64) Set {
	var s Set
	for i := range nodes {
		s.Context = append(s.Context, Entry{Actor: Actor{Node: fmt.Sprintf("node-%02d", i), Epoch: 1}, Counter: 1000 + seed})
	}
	data := make([]byte, valueSize)
	for i := range siblings {
		e := s.Context[i%nodes]
		s.Siblings = append(s.Siblings, Sibling{
			Dot:   Dot{Actor: e.Actor, Counter: e.Counter - uint64(i/nodes)},
			Value: Value{Data: data, ContentType: "application/octet-stream", Timestamp: 1700000000000000000},
		})
	}
	slices.SortFunc(s.Siblings, func(a, b Sibling) int { return compareDots(a.Dot, b.Dot) })
	if err := s.Validate(); err != nil {
		panic(err) // benchmark setup bug
	}
	return s
}

func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1, 3, 16} {
		s := benchSet(5, n, 100, 0)
		a := s.Context[0].Actor
		v := Value{Data: make([]byte, 100), Timestamp: 1}
		b.Run(fmt.Sprintf("siblings=%d/context", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Update(s, s.Context, a, v)
			}
		})
		b.Run(fmt.Sprintf("siblings=%d/blind", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Update(s, nil, a, v)
			}
		})
	}
}

// syncSets returns three sets over `nodes` actors, each with 3 siblings of
// 100 bytes: y has seen all of x and replaced its siblings; z is concurrent
// with x (each holds 3 dots the other has not seen).
func syncSets(nodes int) (x, y, z Set) {
	v := Value{Data: make([]byte, 100), ContentType: "application/octet-stream", Timestamp: 1700000000000000000}
	build := func(counters map[int]uint64, dots ...[2]int) Set {
		var s Set
		for i := range nodes {
			s.Context = append(s.Context, Entry{Actor: Actor{Node: fmt.Sprintf("node-%02d", i), Epoch: 1}, Counter: 999})
			if c, ok := counters[i]; ok {
				s.Context[i].Counter = c
			}
		}
		for _, d := range dots {
			s.Siblings = append(s.Siblings, Sibling{Dot: Dot{Actor: s.Context[d[0]].Actor, Counter: uint64(d[1])}, Value: v})
		}
		if err := s.Validate(); err != nil {
			panic(err) // benchmark setup bug
		}
		return s
	}
	x = build(map[int]uint64{0: 1000, 1: 1000, 2: 1000}, [2]int{0, 1000}, [2]int{1, 1000}, [2]int{2, 1000})
	y = build(map[int]uint64{0: 1001, 1: 1001, 2: 1001, 3: 1000, 4: 1000}, [2]int{0, 1001}, [2]int{1, 1001}, [2]int{2, 1001})
	z = build(map[int]uint64{3: 1001, 4: 1000}, [2]int{3, 1000}, [2]int{3, 1001}, [2]int{4, 1000})
	return x, y, z
}

func BenchmarkSync(b *testing.B) {
	for _, nodes := range []int{5, 50} {
		x, y, z := syncSets(nodes)
		if !Sync(x, y).Equal(y) || len(Sync(x, z).Siblings) != 6 {
			b.Fatal("benchmark sets do not relate as intended")
		}
		b.Run(fmt.Sprintf("siblings=3/nodes=%d/equal", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Sync(x, x)
			}
		})
		b.Run(fmt.Sprintf("siblings=3/nodes=%d/newer", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Sync(x, y)
			}
		})
		b.Run(fmt.Sprintf("siblings=3/nodes=%d/concurrent", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Sync(x, z)
			}
		})
	}
}

func BenchmarkEncodeContext(b *testing.B) {
	for _, nodes := range []int{1, 5, 50} {
		v := benchSet(nodes, 0, 0, 0).Context
		b.Run(fmt.Sprintf("actors=%d", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = EncodeContext(v)
			}
		})
	}
}

func BenchmarkDecodeContext(b *testing.B) {
	for _, nodes := range []int{1, 5, 50} {
		tok := EncodeContext(benchSet(nodes, 0, 0, 0).Context)
		b.Run(fmt.Sprintf("actors=%d", nodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeContext(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var setSizes = []struct{ siblings, value int }{{1, 100}, {3, 100}, {3, 4096}, {16, 100}}

func BenchmarkMarshalBinary(b *testing.B) {
	benchSetSizes(b, func(b *testing.B, s Set) {
		for b.Loop() {
			if _, err := s.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendBinary(b *testing.B) {
	benchSetSizes(b, func(b *testing.B, s Set) {
		buf := make([]byte, 0, 64<<10)
		for b.Loop() {
			var err error
			if buf, err = s.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchSetSizes runs bench on a set of 5 actors of each of setSizes, as
// a sub-benchmark named after the size, with allocations reported.
func benchSetSizes(b *testing.B, bench func(b *testing.B, s Set)) {
	for _, sz := range setSizes {
		s := benchSet(5, sz.siblings, sz.value, 0)
		b.Run(fmt.Sprintf("siblings=%d/value=%d", sz.siblings, sz.value), func(b *testing.B) {
			b.ReportAllocs()
			bench(b, s)
		})
	}
}

func BenchmarkDecodeSet(b *testing.B) {
	benchEncodedSizes(b, func(enc []byte) error { _, err := DecodeSet(enc); return err })
}

// BenchmarkCheckSet is a replica's check of a peer's set that it stores
// as it came (vclock.CheckSet): against BenchmarkDecodeSet, which it
// replaces there along with the encode (BenchmarkAppendBinary).
func BenchmarkCheckSet(b *testing.B) {
	benchEncodedSizes(b, func(enc []byte) error { _, err := CheckSet(enc); return err })
}

// benchEncodedSizes runs fn on the encoding of a set of 5 actors of each
// of setSizes, as benchSetSizes does.
func benchEncodedSizes(b *testing.B, fn func(enc []byte) error) {
	for _, sz := range setSizes {
		enc, err := benchSet(5, sz.siblings, sz.value, 0).MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("siblings=%d/value=%d", sz.siblings, sz.value), func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := fn(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDigest(b *testing.B) {
	benchSetSizes(b, func(b *testing.B, s Set) {
		for b.Loop() {
			_ = s.Digest()
		}
	})
}

// BenchmarkMint is the vclock half of a coordinator's local mint for a
// Redis SET (replica's mintSet under MintSupersedingLocal): decode the
// stored set (one sibling of 100 bytes), supersede its context, mint a
// dot with Update and encode the new set into a reused buffer. actors is
// the stored context's size (1: only this node's epoch has written).
func BenchmarkMint(b *testing.B) {
	for _, actors := range []int{1, 3} {
		enc, err := benchSet(actors, 1, 100, 0).MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		a := Actor{Node: "node-00", Epoch: 1}
		v := Value{Data: make([]byte, 100), Timestamp: 1700000000000000000}
		b.Run(fmt.Sprintf("actors=%d", actors), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				cur, err := DecodeSet(enc)
				if err != nil {
					b.Fatal(err)
				}
				var ctx Vector // the client's (none), superseding the stored one
				wctx := ctx.Merge(cur.Context)
				next, _ := Update(cur, wctx, a, v)
				if buf, err = next.AppendBinary(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
