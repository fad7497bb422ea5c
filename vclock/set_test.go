package vclock

import (
	"errors"
	"slices"
	"testing"
)

func val(s string) Value { return Value{Data: []byte(s), ContentType: "text/plain"} }

func tomb() Value { return Value{Deleted: true} }

func sib(node string, epoch, counter uint64, v Value) Sibling {
	return Sibling{Dot: Dot{act(node, epoch), counter}, Value: v}
}

// data lists the siblings' Data as strings, tombstones as "†".
func data(s Set) []string {
	var out []string
	for _, sib := range s.Siblings {
		if sib.Value.Deleted {
			out = append(out, "†")
			continue
		}
		out = append(out, string(sib.Value.Data))
	}
	return out
}

func mustValid(t *testing.T, s Set) {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("set %v is not valid: %v", s, err)
	}
}

func TestUpdate(t *testing.T) {
	a, b, c := act("a", 1), act("b", 1), act("c", 1)
	ab := Set{ // two concurrent writes, through a and through c
		Context:  vec(ent("a", 1, 1), ent("c", 1, 1)),
		Siblings: []Sibling{sib("a", 1, 1, val("x")), sib("c", 1, 1, val("y"))},
	}
	tests := []struct {
		name    string
		s       Set
		ctx     Vector
		actor   Actor
		v       Value
		wantDot Dot
		wantCtx Vector
		want    []string
	}{
		{"first write", Set{}, nil, a, val("x"),
			Dot{a, 1}, vec(ent("a", 1, 1)), []string{"x"}},
		{"blind write keeps what is there", ab, nil, a, val("z"),
			Dot{a, 2}, vec(ent("a", 1, 2), ent("c", 1, 1)), []string{"x", "z", "y"}},
		{"context covering both replaces both", ab, ab.Context, a, val("z"),
			Dot{a, 2}, vec(ent("a", 1, 2), ent("c", 1, 1)), []string{"z"}},
		{"context covering one drops only it", ab, vec(ent("c", 1, 1)), a, val("z"),
			Dot{a, 2}, vec(ent("a", 1, 2), ent("c", 1, 1)), []string{"x", "z"}},
		{"new actor sorts between the others", ab, nil, b, val("z"),
			Dot{b, 1}, vec(ent("a", 1, 1), ent("b", 1, 1), ent("c", 1, 1)), []string{"x", "z", "y"}},
		{"context ahead of the store for the actor", ab, vec(ent("a", 1, 5)), a, val("z"),
			Dot{a, 6}, vec(ent("a", 1, 6), ent("c", 1, 1)), []string{"z", "y"}},
		{"context has seen writes this store has not", ab, vec(ent("a", 1, 1), ent("d", 1, 4)), c, val("z"),
			Dot{c, 2}, vec(ent("a", 1, 1), ent("c", 1, 2), ent("d", 1, 4)), []string{"y", "z"}},
		{"delete is a tombstone write", ab, ab.Context, c, tomb(),
			Dot{c, 2}, vec(ent("a", 1, 1), ent("c", 1, 2)), []string{"†"}},
		{"new epoch starts its own counter", ab, ab.Context, act("a", 2), val("z"),
			Dot{act("a", 2), 1}, vec(ent("a", 1, 1), ent("a", 2, 1), ent("c", 1, 1)), []string{"z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.s.Clone()
			got, dot := Update(tc.s, tc.ctx, tc.actor, tc.v)
			if dot != tc.wantDot {
				t.Errorf("dot = %v, want %v", dot, tc.wantDot)
			}
			if !got.Context.Equal(tc.wantCtx) {
				t.Errorf("context = %v, want %v", got.Context, tc.wantCtx)
			}
			if !slices.Equal(data(got), tc.want) {
				t.Errorf("siblings = %q, want %q", data(got), tc.want)
			}
			if v, ok := got.Find(dot); !ok || !v.Equal(tc.v) {
				t.Errorf("Find(new dot) = %v, %v", v, ok)
			}
			mustValid(t, got)
			if !tc.s.Equal(before) {
				t.Errorf("Update modified its input set")
			}
		})
	}
}

// TestUpdateNoAliasing checks that two updates of one stored set do not
// write into each other's slices, even when the input has spare capacity.
func TestUpdateNoAliasing(t *testing.T) {
	a := act("a", 1)
	s := Set{
		Context:  make(Vector, 1, 8),
		Siblings: make([]Sibling, 1, 8),
	}
	s.Context[0] = ent("a", 1, 1)
	s.Siblings[0] = sib("a", 1, 1, val("x"))
	s1, _ := Update(s, nil, a, val("one"))
	keep := s1.Clone()
	s2, _ := Update(s, nil, act("b", 1), val("two"))
	if !s1.Equal(keep) {
		t.Fatalf("second Update changed the first result: %v", s1)
	}
	if !slices.Equal(data(s2), []string{"x", "two"}) || !slices.Equal(data(s1), []string{"x", "one"}) {
		t.Fatalf("s1 %q s2 %q", data(s1), data(s2))
	}
	// Appending to a result must not reach into another.
	s1.Siblings = append(s1.Siblings, sib("z", 1, 1, val("junk")))
	s1.Context = append(s1.Context, ent("z", 1, 1))
	if !slices.Equal(data(s2), []string{"x", "two"}) || len(s2.Context) != 2 {
		t.Fatalf("append to one result changed another: %q %v", data(s2), s2.Context)
	}
}

func TestSync(t *testing.T) {
	x := sib("a", 1, 1, val("x"))
	y := sib("b", 1, 1, val("y"))
	z := sib("b", 1, 2, val("z")) // written at b with a context covering x and y
	onlyX := Set{Context: vec(ent("a", 1, 1)), Siblings: []Sibling{x}}
	onlyY := Set{Context: vec(ent("b", 1, 1)), Siblings: []Sibling{y}}
	xy := Set{Context: vec(ent("a", 1, 1), ent("b", 1, 1)), Siblings: []Sibling{x, y}}
	onlyZ := Set{Context: vec(ent("a", 1, 1), ent("b", 1, 2)), Siblings: []Sibling{z}}
	tests := []struct {
		name string
		a, b Set
		want []string
	}{
		{"zero sets", Set{}, Set{}, nil},
		{"zero is the identity", xy, Set{}, []string{"x", "y"}},
		{"concurrent writes become siblings", onlyX, onlyY, []string{"x", "y"}},
		{"same set", xy, xy, []string{"x", "y"}},
		{"a newer write drops what its context covered", xy, onlyZ, []string{"z"}},
		{"an old set does not bring superseded values back", onlyX, onlyZ, []string{"z"}},
		{"shared dot kept once", onlyX, xy, []string{"x", "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ab, ba := Sync(tc.a, tc.b), Sync(tc.b, tc.a)
			if !slices.Equal(data(ab), tc.want) {
				t.Fatalf("Sync = %q, want %q", data(ab), tc.want)
			}
			if !ab.Equal(ba) {
				t.Fatalf("Sync is not commutative: %v vs %v", ab, ba)
			}
			if !ab.Context.Equal(tc.a.Context.Merge(tc.b.Context)) {
				t.Fatalf("context = %v", ab.Context)
			}
			mustValid(t, ab)
			if tc.want == nil && ab.Siblings != nil {
				t.Fatalf("empty result is not nil")
			}
		})
	}
}

func TestLiveDeletedFind(t *testing.T) {
	s := Set{
		Context:  vec(ent("a", 1, 2), ent("b", 1, 1)),
		Siblings: []Sibling{sib("a", 1, 2, tomb()), sib("b", 1, 1, val("y"))},
	}
	if s.IsDeleted() {
		t.Error("a set with a live sibling reads as deleted")
	}
	if live := s.Live(); len(live) != 1 || string(live[0].Value.Data) != "y" {
		t.Errorf("Live = %v", live)
	}
	if !(Set{}).IsDeleted() || (Set{}).Live() != nil {
		t.Error("the zero set is not deleted")
	}
	onlyTomb := Set{Context: s.Context, Siblings: s.Siblings[:1]}
	if !onlyTomb.IsDeleted() || onlyTomb.Live() != nil {
		t.Error("all tombstones should read as deleted")
	}
	if _, ok := s.Find(Dot{act("a", 1), 1}); ok {
		t.Error("Find found a dot the set does not hold")
	}
	if v, ok := s.Find(Dot{act("b", 1), 1}); !ok || string(v.Data) != "y" {
		t.Error("Find missed a held dot")
	}
}

func TestClone(t *testing.T) {
	s := Set{Context: vec(ent("a", 1, 1)), Siblings: []Sibling{sib("a", 1, 1, val("x"))}}
	c := s.Clone()
	c.Siblings[0].Value.Data[0] = 'X'
	c.Context[0].Counter = 9
	if string(s.Siblings[0].Value.Data) != "x" || s.Context[0].Counter != 1 {
		t.Fatal("Clone shares memory with the original")
	}
}

func TestResolveLWW(t *testing.T) {
	at := func(node string, counter uint64, ts int64, deleted bool) Sibling {
		return Sibling{Dot: Dot{act(node, 1), counter}, Value: Value{Timestamp: ts, Deleted: deleted, Data: []byte(node)}}
	}
	tests := []struct {
		name string
		sibs []Sibling
		want Dot
		ok   bool
	}{
		{"no siblings", nil, Dot{}, false},
		{"one", []Sibling{at("a", 1, 5, false)}, Dot{act("a", 1), 1}, true},
		{"latest timestamp wins", []Sibling{at("a", 1, 9, false), at("b", 1, 5, false)}, Dot{act("a", 1), 1}, true},
		{"ties go to the greater dot", []Sibling{at("a", 1, 5, false), at("b", 1, 5, false)}, Dot{act("b", 1), 1}, true},
		{"a tombstone can win", []Sibling{at("a", 1, 1, false), at("b", 1, 7, true)}, Dot{act("b", 1), 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ResolveLWW(Set{Siblings: tc.sibs})
			if ok != tc.ok || got.Dot != tc.want {
				t.Fatalf("ResolveLWW = %v, %v; want %v, %v", got.Dot, ok, tc.want, tc.ok)
			}
			rev := slices.Clone(tc.sibs)
			slices.Reverse(rev)
			if got2, _ := ResolveLWW(Set{Siblings: rev}); got2.Dot != got.Dot {
				t.Fatalf("result depends on sibling order")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := Set{Context: vec(ent("a", 1, 2)), Siblings: []Sibling{sib("a", 1, 1, val("x")), sib("a", 1, 2, val("y"))}}
	tests := []struct {
		name string
		s    Set
		want error
	}{
		{"zero set", Set{}, nil},
		{"good", good, nil},
		{"unsorted context", Set{Context: Vector{ent("b", 1, 1), ent("a", 1, 1)}}, ErrMalformed},
		{"duplicate actor", Set{Context: Vector{ent("a", 1, 1), ent("a", 1, 2)}}, ErrMalformed},
		{"zero counter", Set{Context: Vector{ent("a", 1, 0)}}, ErrMalformed},
		{"empty node", Set{Context: Vector{ent("", 1, 1)}}, ErrMalformed},
		{"node too long", Set{Context: Vector{ent(string(make([]byte, MaxNodeLen+1)), 1, 1)}}, ErrMalformed},
		{"counter past MaxCounter", Set{Context: Vector{ent("a", 1, MaxCounter+1)}}, ErrTooLarge},
		{"sibling not covered", Set{Context: vec(ent("a", 1, 1)), Siblings: []Sibling{sib("a", 1, 2, val("x"))}}, ErrMalformed},
		{"sibling of an absent actor", Set{Context: vec(ent("a", 1, 1)), Siblings: []Sibling{sib("b", 1, 1, val("x"))}}, ErrMalformed},
		{"zero sibling counter", Set{Context: vec(ent("a", 1, 1)), Siblings: []Sibling{sib("a", 1, 0, val("x"))}}, ErrMalformed},
		{"duplicate dot", Set{Context: good.Context, Siblings: []Sibling{good.Siblings[0], good.Siblings[0]}}, ErrMalformed},
		{"unsorted siblings", Set{Context: good.Context, Siblings: []Sibling{good.Siblings[1], good.Siblings[0]}}, ErrMalformed},
		{"content type too long", Set{Context: vec(ent("a", 1, 1)),
			Siblings: []Sibling{sib("a", 1, 1, Value{ContentType: string(make([]byte, MaxContentTypeLen+1))})}}, ErrTooLarge},
		{"too many siblings", Set{Context: vec(ent("a", 1, MaxSiblings+1)), Siblings: manySiblings(MaxSiblings + 1)}, ErrTooLarge},
		{"too many actors", Set{Context: manyActors(MaxActors+1, 3, 1)}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			// The encoder enforces the same rules.
			b, err := tc.s.AppendBinary([]byte("keep"))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("AppendBinary error = %v, want %v", err, tc.want)
			}
			if err != nil && string(b) != "keep" {
				t.Fatalf("AppendBinary changed the buffer on error: %q", b)
			}
		})
	}
}

// manySiblings returns n siblings of actor a#1 with counters 1..n.
func manySiblings(n int) []Sibling {
	sibs := make([]Sibling, n)
	for i := range sibs {
		sibs[i] = sib("a", 1, uint64(i+1), Value{})
	}
	return sibs
}

// manyActors returns a canonical vector of n actors with nodeLen-byte ids.
func manyActors(n, nodeLen int, counter uint64) Vector {
	v := make(Vector, n)
	for i := range v {
		node := make([]byte, nodeLen)
		for j := range node {
			node[j] = 'a'
		}
		// Big-endian index in the last bytes keeps the ids sorted and distinct.
		for j, x := len(node)-1, i; j >= 0 && x > 0; j, x = j-1, x/26 {
			node[j] = 'a' + byte(x%26)
		}
		v[i] = Entry{Actor: Actor{Node: string(node), Epoch: 1}, Counter: counter}
	}
	return v
}
