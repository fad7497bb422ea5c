package siblings

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/internal/validtest"
	"github.com/quorumkv/quorumkv/vclock"
)

func actor(node string) vclock.Actor { return vclock.Actor{Node: node, Epoch: 1} }

// many returns the set n blind writes by a (each of size bytes, with
// timestamps from ts on) leave on an empty key, built directly: the same
// set as blind's, without its quadratic cost.
func many(a vclock.Actor, n, size int, ts int64) vclock.Set {
	s := vclock.Set{Context: vclock.NewVector(vclock.Entry{Actor: a, Counter: uint64(n)})}
	data := make([]byte, size)
	for i := range n {
		s.Siblings = append(s.Siblings, vclock.Sibling{Dot: vclock.Dot{Actor: a, Counter: uint64(i + 1)},
			Value: vclock.Value{Data: data, Timestamp: ts + int64(i)}})
	}
	return s
}

// blind returns s after n blind writes by a, each of size bytes, with
// timestamps from ts on.
func blind(s vclock.Set, a vclock.Actor, n, size int, ts int64) vclock.Set {
	for i := range n {
		s, _ = vclock.Update(s, nil, a, vclock.Value{Data: make([]byte, size), Timestamp: ts + int64(i)})
	}
	return s
}

func TestValidate(t *testing.T) {
	validtest.Table[Policy]{
		Base: func() Policy { return Policy{} },
		Same: validtest.Equal[Policy],
		Cases: []validtest.Case[Policy]{
			{"defaults", func(*Policy) {}, true},
			{"default policy", func(p *Policy) { *p = DefaultPolicy() }, true},
			{"merge below client count", func(p *Policy) { p.MaxCount, p.MergeCount = 100, 50 }, false},
			{"merge below client bytes", func(p *Policy) { p.MaxBytes, p.MergeBytes = 100, 50 }, false},
			{"merge count past the encoding", func(p *Policy) { p.MergeCount = vclock.MaxSiblings + 1 }, false},
			{"negative client cap", func(p *Policy) { p.MaxCount = -1 }, false},
			{"equal caps", func(p *Policy) { *p = Policy{MaxCount: 10, MergeCount: 10, MaxBytes: 10, MergeBytes: 10} }, true},
			{"client count above the default merge cap raises it", func(p *Policy) { p.MaxCount = 4096 }, true},
		},
	}.Run(t)
}

func TestCheckWrite(t *testing.T) {
	p := Policy{MaxCount: 3, MaxBytes: 1000, Warn: 2}
	var s vclock.Set
	s = blind(s, actor("a"), 3, 10, 1)
	if err := p.CheckWrite(s); err != nil {
		t.Fatalf("3 small siblings: %v", err)
	}
	if !p.Warns(s) {
		t.Fatal("3 siblings with Warn 2: no warning")
	}
	four := blind(s, actor("a"), 1, 10, 9)
	err := p.CheckWrite(four)
	var ce *CapError
	if !errors.As(err, &ce) || !errors.Is(err, ErrTooMany) || errors.Is(err, ErrTooLarge) || ce.Siblings != 4 || ce.MaxCount != 3 {
		t.Fatalf("4 siblings: %v", err)
	}
	big := blind(vclock.Set{}, actor("a"), 2, 600, 1)
	err = p.CheckWrite(big)
	if !errors.As(err, &ce) || !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrTooMany) || ce.Bytes != 2*(600+Overhead) {
		t.Fatalf("2 × 600 bytes: %v", err)
	}
	for _, want := range []string{"1328 bytes", "over the cap of 1000"} {
		if !contains(err.Error(), want) {
			t.Fatalf("message %q lacks %q", err, want)
		}
	}
	// The default client caps: eleven 1 MiB siblings fit, a twelfth does not.
	d := DefaultPolicy()
	eleven := blind(vclock.Set{}, actor("a"), 11, 1<<20, 1)
	if err := d.CheckWrite(eleven); err != nil {
		t.Fatalf("eleven 1 MiB siblings: %v", err)
	}
	if err := d.CheckWrite(blind(eleven, actor("a"), 1, 1<<20, 20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("twelve 1 MiB siblings: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestMergeWithinCapsIsSync: below the merge caps, Merge is vclock.Sync
// and trims nothing.
func TestMergeWithinCapsIsSync(t *testing.T) {
	p := DefaultPolicy()
	a := many(actor("a"), 900, 100, 1)
	b := many(actor("b"), 900, 100, 1)
	m := p.Merge(a, b)
	if m.Trimmed != nil || !m.Set.Equal(vclock.Sync(a, b)) || len(m.Set.Siblings) != 1800 {
		t.Fatalf("merge of 900 + 900: %d siblings, %d trimmed", len(m.Set.Siblings), len(m.Trimmed))
	}
	if !m.Warn {
		t.Fatal("1800 siblings did not warn")
	}
}

// TestDivergedPastTheCountCap is the issue-14 case: two replicas whose
// sets together exceed 4,096 siblings. They used to be unable to merge
// forever; now the merge keeps the 4,096 newest and reports the rest, and
// the result encodes.
func TestDivergedPastTheCountCap(t *testing.T) {
	p := Policy{MaxCount: 3000}
	a := many(actor("a"), 3000, 10, 1000) // timestamps 1000..3999
	b := many(actor("b"), 3000, 10, 2500) // 2500..5499
	m := p.Merge(a, b)
	if len(m.Set.Siblings) != vclock.MaxSiblings || len(m.Trimmed) != 6000-vclock.MaxSiblings {
		t.Fatalf("%d kept, %d trimmed", len(m.Set.Siblings), len(m.Trimmed))
	}
	if _, err := m.Set.MarshalBinary(); err != nil {
		t.Fatalf("the merged set does not encode: %v", err)
	}
	// The oldest went: every kept sibling is at least as new as every
	// trimmed one.
	var oldestKept int64 = 1 << 62
	for _, s := range m.Set.Siblings {
		oldestKept = min(oldestKept, s.Value.Timestamp)
	}
	for _, s := range m.Trimmed {
		if s.Value.Timestamp > oldestKept {
			t.Fatalf("trimmed %v (ts %d) while keeping ts %d", s.Dot, s.Value.Timestamp, oldestKept)
		}
	}
	// Either side merging the result drops what was trimmed: converged.
	if !p.Merge(a, m.Set).Set.Equal(m.Set) || !p.Merge(b, m.Set).Set.Equal(m.Set) {
		t.Fatal("replicas merging the trimmed set do not converge on it")
	}
	if err := m.Set.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestDivergedPastTheByteCap: two replicas each holding eleven siblings of
// 1 MiB (the attack's key, written on both sides of a partition).
func TestDivergedPastTheByteCap(t *testing.T) {
	p := DefaultPolicy()
	a := blind(vclock.Set{}, actor("a"), 11, 1<<20, 100)
	b := blind(vclock.Set{}, actor("b"), 11, 1<<20, 105)
	m := p.Merge(a, b)
	if Bytes(m.Set) > DefaultMergeBytes {
		t.Fatalf("%d bytes kept, cap %d", Bytes(m.Set), DefaultMergeBytes)
	}
	// 12.5 MiB holds twelve 1 MiB siblings with their overhead.
	if len(m.Set.Siblings) != 12 || len(m.Trimmed) != 10 {
		t.Fatalf("%d kept, %d trimmed; want 12 and 10", len(m.Set.Siblings), len(m.Trimmed))
	}
	if !p.Merge(b, a).Set.Equal(m.Set) {
		t.Fatal("merge not commutative")
	}
	// A later write that covers everything replaces all of it, trimmed or not.
	w, _ := vclock.Update(m.Set, m.Set.Context, actor("a"), vclock.Value{Data: []byte("x"), Timestamp: 999})
	if got := p.Merge(a, w).Set; len(got.Siblings) != 1 {
		t.Fatalf("after a covering write: %d siblings", len(got.Siblings))
	}
}

// TestTrimTiesByDot: equal timestamps keep the greater dots.
func TestTrimTiesByDot(t *testing.T) {
	p := Policy{MaxCount: 2, MergeCount: 3}
	var s vclock.Set
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		s, _ = vclock.Update(s, nil, actor(n), vclock.Value{Timestamp: 7})
	}
	m := p.Fit(s)
	var got []string
	for _, sib := range m.Set.Siblings {
		got = append(got, sib.Dot.Actor.Node)
	}
	if fmt.Sprint(got) != "[c d e]" || len(m.Trimmed) != 2 {
		t.Fatalf("kept %v, trimmed %d", got, len(m.Trimmed))
	}
}

func BenchmarkMerge(b *testing.B) {
	p := DefaultPolicy()
	for _, n := range []int{1, 25, 1000} {
		a := many(actor("a"), n, 100, 1)
		c := many(actor("b"), n, 100, 1)
		b.Run(fmt.Sprintf("siblings=%d/policy", 2*n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Merge(a, c)
			}
		})
		b.Run(fmt.Sprintf("siblings=%d/sync", 2*n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = vclock.Sync(a, c)
			}
		})
	}
	big := Policy{MaxCount: 3000}
	a := many(actor("a"), 3000, 10, 1)
	c := many(actor("b"), 3000, 10, 1)
	b.Run("siblings=6000/trimmed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = big.Merge(a, c)
		}
	})
}

func TestManyIsBlind(t *testing.T) {
	if !many(actor("a"), 30, 10, 1000).Equal(blind(vclock.Set{}, actor("a"), 30, 10, 1000)) {
		t.Fatal("many and blind disagree")
	}
}
