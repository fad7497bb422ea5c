package oracle

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// hist drives an Oracle through a hand-made history on one key: writes by
// name, answers by the names they returned.
type hist struct {
	t   *testing.T
	o   *Oracle
	key string
	ops map[string]Op
	val map[string][]byte
	now time.Duration
}

func newHist(t *testing.T, cfg Config) *hist {
	t.Helper()
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &hist{t: t, o: o, key: "k", ops: map[string]Op{}, val: map[string][]byte{}}
}

func (h *hist) tick() time.Duration { h.now += ms(1); return h.now }

// write invokes a write named name carrying ctx.
func (h *hist) write(name string, ctx Context, tomb bool) Op {
	op := h.o.Invoke(Write{Key: h.key, Context: ctx, Tombstone: tomb, Invoke: h.tick(), Coord: len(h.ops) % 3})
	h.ops[name] = op
	h.val[name] = append(h.o.AppendTag(nil, op), "-payload"...)
	return op
}

func (h *hist) ack(name string)  { h.o.Complete(h.ops[name], Acked, h.tick()) }
func (h *hist) fail(name string) { h.o.Complete(h.ops[name], Failed, h.tick()) }
func (h *hist) lost(name string) { h.o.Complete(h.ops[name], Unknown, h.tick()) }

// chain writes and acknowledges names in turn, the first with no context
// and each next one with the context of a read that returned the one
// before: each supersedes its predecessor through what the client saw.
func (h *hist) chain(names ...string) {
	var ctx Context
	for i, n := range names {
		if i > 0 {
			ctx, _ = h.read(names[i-1])
		}
		h.put(n, ctx)
	}
}

// put writes name carrying ctx and acknowledges it at once.
func (h *hist) put(name string, ctx Context) {
	h.write(name, ctx, false)
	h.ack(name)
}

func (h *hist) values(names ...string) [][]byte {
	var vs [][]byte
	for _, n := range names {
		vs = append(vs, h.val[n])
	}
	return vs
}

// read is a read that began now and returned names.
func (h *hist) read(names ...string) (Context, Verdict) {
	at := h.tick()
	return h.o.Read(Read{Key: h.key, Values: h.values(names...), Invoke: at, Done: at, Coord: 1})
}

func (h *hist) observe(names ...string) Context { return h.o.Observe(h.key, h.values(names...)) }

func (h *hist) final(names ...string) Result {
	h.o.Final(h.key, h.values(names...))
	return h.o.Result()
}

func (h *hist) id(name string) ID { return h.ops[name].ID() }

func TestSupersededOnlyThroughWhatTheClientSaw(t *testing.T) {
	t.Run("a context that showed the value supersedes it", func(t *testing.T) {
		h := newHist(t, Config{})
		h.chain("a", "b")
		r := h.final("b")
		if r.Lost != 0 || r.Resurrected != 0 {
			t.Fatalf("%+v", r)
		}
	})
	// Planted bug "merge keeps only the newest sibling": two concurrent
	// acknowledged writes, the store keeps one (and its clock still
	// covers the other's dot, which the old checker trusted).
	t.Run("a dropped concurrent sibling is lost", func(t *testing.T) {
		h := newHist(t, Config{})
		h.write("a", Context{}, false)
		h.write("b", Context{}, false)
		h.ack("a")
		h.ack("b")
		r := h.final("b")
		if r.Lost != 1 || len(r.LostWrites) != 1 || r.LostWrites[0].ID != h.id("a") {
			t.Fatalf("want a lost: %+v", r)
		}
	})
	t.Run("a context that never saw the value does not supersede it", func(t *testing.T) {
		h := newHist(t, Config{})
		h.put("a", Context{})
		ctx, v := h.read() // a stale read that missed a
		if !v.Stale || v.K != 1 {
			t.Fatalf("read missing a: %+v", v)
		}
		h.put("b", ctx)
		r := h.final("b")
		if r.Lost != 1 || r.LostWrites[0].ID != h.id("a") {
			t.Fatalf("want a lost: %+v", r)
		}
	})
	t.Run("a context from a write's answer supersedes what that answer showed", func(t *testing.T) {
		h := newHist(t, Config{})
		h.put("a", Context{})
		h.write("b", Context{}, false) // blind: a and b are siblings
		ctx := h.observe("a", "b")     // b's answer shows both
		h.ack("b")
		h.put("c", ctx)
		if r := h.final("c"); r.Lost != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("supersession through a landed write the client was told failed", func(t *testing.T) {
		h := newHist(t, Config{})
		h.put("a", Context{})
		ctx, _ := h.read("a")
		h.write("b", ctx, false)
		h.lost("b") // timed out
		ctx, _ = h.read("b")
		h.put("c", ctx)
		r := h.final("c")
		if r.Lost != 0 || r.Indeterminate != 1 {
			t.Fatalf("want nothing lost and b indeterminate: %+v", r)
		}
	})
	t.Run("a write that failed and was never seen supersedes nothing", func(t *testing.T) {
		h := newHist(t, Config{})
		h.put("a", Context{})
		ctx, _ := h.read("a")
		h.write("b", ctx, false)
		h.fail("b")
		r := h.final()
		if r.Lost != 1 || r.Indeterminate != 0 || r.Failed != 1 {
			t.Fatalf("want a lost, b failed and not indeterminate: %+v", r)
		}
	})
}

func TestIndeterminate(t *testing.T) {
	h := newHist(t, Config{})
	h.write("a", Context{}, false)
	h.fail("a")
	h.write("b", Context{}, false)
	h.lost("b")
	h.write("c", Context{}, false)
	h.read("c") // seen while pending
	h.fail("c")
	h.write("d", Context{}, false)
	h.fail("d") // never seen
	if _, v := h.read("a"); v.Prior || v.Stale {
		t.Fatalf("no acknowledged write yet: %+v", v)
	}
	r := h.final("b", "c")
	want := Result{Writes: 4, Failed: 3, Unknown: 1, Indeterminate: 3, FinalKeys: 1}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
}

func TestResurrection(t *testing.T) {
	t.Run("returned together with its successor", func(t *testing.T) {
		h := newHist(t, Config{})
		h.chain("a", "b")
		_, v := h.read("a", "b")
		if v.Resurrected != 1 {
			t.Fatalf("verdict %+v", v)
		}
		r := h.final("a", "b") // counted once
		if r.Resurrected != 1 || r.Resurrections[0] != (Resurrection{Key: "k", ID: h.id("a"), By: h.id("b")}) || r.Lost != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("returned by the final read after being superseded", func(t *testing.T) {
		h := newHist(t, Config{})
		h.chain("a", "b")
		r := h.final("a")
		if r.Resurrected != 1 || !r.Resurrections[0].Final || r.Lost != 1 || r.LostWrites[0].ID != h.id("b") {
			t.Fatalf("want a resurrected and b lost: %+v", r)
		}
	})
	t.Run("a stale read alone is not a resurrection", func(t *testing.T) {
		h := newHist(t, Config{})
		h.chain("a", "b")
		_, v := h.read("a")
		if v.Resurrected != 0 || !v.Stale {
			t.Fatalf("verdict %+v", v)
		}
		if r := h.final("b"); r.Resurrected != 0 || r.Lost != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("transitively superseded", func(t *testing.T) {
		h := newHist(t, Config{})
		h.chain("a", "b", "c")
		if _, v := h.read("a", "c"); v.Resurrected != 1 {
			t.Fatalf("verdict %+v", v)
		}
	})
}

func TestDeletes(t *testing.T) {
	setup := func(cfg Config) *hist {
		h := newHist(t, cfg)
		h.put("a", Context{})
		ctx, _ := h.read("a")
		h.write("del", ctx, true)
		h.ack("del")
		return h
	}
	h := setup(Config{})
	if _, v := h.read(); v.Stale || v.K != 0 || !v.LatestSeen {
		t.Fatalf("a not-found read after the delete: %+v", v)
	}
	if _, v := h.read("del"); v.Stale || v.K != 0 {
		t.Fatalf("a read showing the tombstone: %+v", v)
	}
	if _, v := h.read("a"); !v.Stale || v.K != 1 {
		t.Fatalf("a read still showing the deleted value: %+v", v)
	}
	if r := h.final("del"); r.Lost != 0 || r.Resurrected != 0 {
		t.Fatalf("%+v", r)
	}

	h = setup(Config{})
	if r := h.final(); r.Lost != 1 || !r.LostWrites[0].Tombstone {
		t.Fatalf("tombstone missing where tombstones show: %+v", r)
	}
	h = setup(Config{TombstonesHidden: true})
	if r := h.final(); r.Lost != 0 {
		t.Fatalf("tombstone missing where they cannot show: %+v", r)
	}
	h = setup(Config{TombstonesHidden: true})
	if r := h.final("a"); r.Resurrected != 1 || r.Resurrections[0].By != h.id("del") {
		t.Fatalf("deleted value back: %+v", r)
	}
}

func TestStaleness(t *testing.T) {
	h := newHist(t, Config{})
	h.write("a", Context{}, false)
	h.write("b", Context{}, false)
	// A read that began before either was acknowledged is not scored.
	early := h.tick()
	h.ack("a")
	h.ack("b")
	if _, v := h.o.Read(Read{Key: "k", Invoke: early, Done: h.tick()}); v.Prior || v.Stale {
		t.Fatalf("early read: %+v", v)
	}
	// Siblings a and b are both newest: missing either is stale.
	if _, v := h.read("b"); !v.Stale || v.K != 1 || v.Latest != h.id("b") || !v.LatestSeen {
		t.Fatalf("read of b only: %+v", v)
	}
	ctx, v := h.read("a", "b")
	if v.Stale || v.K != 0 {
		t.Fatalf("read of both: %+v", v)
	}
	h.put("c", ctx)
	// c supersedes both: the frontier is {c}; a read of a and b is one
	// version behind, a read of c is fresh.
	if _, v := h.read("a", "b"); !v.Stale || v.K != 1 || v.LatestSeen {
		t.Fatalf("read of a and b after c: %+v", v)
	}
	if _, v := h.read("c"); v.Stale || v.K != 0 {
		t.Fatalf("read of c: %+v", v)
	}
	// A landed write nobody acknowledged yet covers what it supersedes.
	ctx, _ = h.read("c")
	h.write("d", ctx, false)
	if _, v := h.read("d"); v.Stale || v.K != 0 {
		t.Fatalf("read of in-flight d: %+v", v)
	}
}

func TestForeignAndUnexpected(t *testing.T) {
	h := newHist(t, Config{Run: 5})
	h.put("a", Context{})
	other, _ := New(Config{Run: 6})
	ov := other.AppendTag(nil, other.Invoke(Write{Key: "k"}))
	wrongKey := appendTag(nil, 5, keyHash("elsewhere"), h.id("a"))
	future := appendTag(nil, 5, keyHash("k"), 99)
	_, v := h.o.Read(Read{Key: "k", Values: [][]byte{h.val["a"], ov, []byte("plain"), wrongKey, future}, Invoke: h.tick()})
	if v.Stale || v.Values != 5 {
		t.Fatalf("verdict %+v", v)
	}
	r := h.final("a")
	if r.Foreign != 2 || r.Unexpected != 2 || r.Lost != 0 {
		t.Fatalf("%+v", r)
	}
	// A key never written: its values are foreign or unexpected too.
	h.o.Read(Read{Key: "never", Values: [][]byte{h.val["a"], ov}})
	if r := h.o.Result(); r.Foreign != 3 || r.Unexpected != 3 {
		t.Fatalf("%+v", r)
	}
}

func TestUnverifiedAndFinalOnce(t *testing.T) {
	h := newHist(t, Config{})
	h.put("a", Context{})
	if r := h.o.Result(); r.Unverified != 1 {
		t.Fatalf("no final yet: %+v", r)
	}
	h.o.FinalFailed("k")
	h.o.Final("k", nil) // ignored: the first one counted
	if r := h.o.Result(); r.Unverified != 1 || r.Lost != 0 || r.FinalKeys != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestCompactionKeepsJudgementsAndBoundsMemory(t *testing.T) {
	for _, keepAll := range []bool{false, true} {
		h := newHist(t, Config{History: 2, KeepAll: keepAll})
		var ctx Context
		names := []string{}
		for i := range 200 {
			n := string(rune('A'+i%26)) + string(rune('a'+i/26))
			names = append(names, n)
			h.write(n, ctx, false)
			h.ack(n)
			ctx, _ = h.read(n)
		}
		k := h.o.keys["k"]
		if keepAll && len(k.nodes) != 200 || !keepAll && len(k.nodes) > 2*2+8 {
			t.Fatalf("keepAll %v: %d writes kept", keepAll, len(k.nodes))
		}
		// The first write, long superseded, comes back in the final read.
		r := h.final(names[0], names[len(names)-1])
		if r.Lost != 0 || r.Resurrected != 1 || r.Resurrections[0].ID != h.id(names[0]) {
			t.Fatalf("keepAll %v: %+v", keepAll, r)
		}
	}
}

func TestTagRoundTrip(t *testing.T) {
	b := appendTag([]byte("x"), 0xdeadbeef, keyHash("key"), 0xabcdef012345)
	if len(b) != 1+TagLen {
		t.Fatalf("tag length %d", len(b)-1)
	}
	run, kh, id, ok := ParseTag(b[1:])
	if !ok || run != 0xdeadbeef || kh != keyHash("key") || id != 0xabcdef012345 {
		t.Fatalf("ParseTag = %x %x %x %v", run, kh, id, ok)
	}
	for _, bad := range []string{"", "qo1:", "qo2:0000000000000000000000000001", "qo1:000000000000000000000000000G", "qo1:00000000000000000000000000A1"} {
		if _, _, _, ok := ParseTag([]byte(bad)); ok {
			t.Errorf("ParseTag(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{History: -1}, {History: MaxHistory + 1}, {MaxListed: MaxListedLimit + 1}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	o, err := New(Config{MaxListed: -1})
	if err != nil {
		t.Fatal(err)
	}
	op := o.Invoke(Write{Key: "k"})
	o.Complete(op, Acked, 1)
	o.Final("k", nil)
	if r := o.Result(); r.Lost != 1 || len(r.LostWrites) != 0 {
		t.Fatalf("negative MaxListed: %+v", r)
	}
}

func TestMissedList(t *testing.T) {
	h := newHist(t, Config{ListMissed: true})
	h.write("a", Context{}, false)
	h.write("b", Context{}, false)
	h.ack("a")
	h.ack("b")
	_, v := h.read()
	if want := []ID{h.id("a"), h.id("b")}; !slices.Equal(v.Missed, want) {
		t.Fatalf("missed %v, want %v", v.Missed, want)
	}
}

// TestMemoryBoundedPerKey: writes that supersede their predecessors (the
// bench's updates) keep at most 3*History+8 writes per key in memory
// however many are made: memory follows the keys, not the run's length.
func TestMemoryBoundedPerKey(t *testing.T) {
	o, err := New(Config{History: 4})
	if err != nil {
		t.Fatal(err)
	}
	const keys = 50
	ctx := make([]Context, keys)
	var buf []byte
	for i := range 20_000 {
		k := i % keys
		if i%7 == 0 {
			k = 0 // a hot key
		}
		name := fmt.Sprint("k", k)
		op := o.Invoke(Write{Key: name, Context: ctx[k], Invoke: time.Duration(i)})
		buf = o.AppendTag(buf[:0], op)
		ctx[k] = o.Observe(name, [][]byte{buf})
		o.Complete(op, Acked, time.Duration(i))
	}
	for name, k := range o.keys {
		if len(k.nodes) > 3*4+8 {
			t.Errorf("%s keeps %d writes, want at most %d", name, len(k.nodes), 3*4+8)
		}
	}
}
