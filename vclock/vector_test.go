package vclock

import (
	"testing"
)

func act(node string, epoch uint64) Actor { return Actor{Node: node, Epoch: epoch} }

func ent(node string, epoch, counter uint64) Entry {
	return Entry{Actor: act(node, epoch), Counter: counter}
}

func vec(entries ...Entry) Vector { return NewVector(entries...) }

func TestNewVector(t *testing.T) {
	tests := []struct {
		name string
		in   []Entry
		want Vector
	}{
		{"empty", nil, nil},
		{"zero counters dropped", []Entry{ent("a", 1, 0)}, nil},
		{"sorted by node then epoch", []Entry{ent("b", 1, 1), ent("a", 2, 1), ent("a", 1, 1)},
			Vector{ent("a", 1, 1), ent("a", 2, 1), ent("b", 1, 1)}},
		{"duplicates keep the max", []Entry{ent("a", 1, 3), ent("a", 1, 7), ent("a", 1, 2)},
			Vector{ent("a", 1, 7)}},
		{"bytewise node order", []Entry{ent("b", 0, 1), ent("B", 0, 1), ent("a", 0, 1)},
			Vector{ent("B", 0, 1), ent("a", 0, 1), ent("b", 0, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Entry(nil), tc.in...)
			got := NewVector(in...)
			if !got.Equal(tc.want) {
				t.Fatalf("NewVector(%v) = %v, want %v", tc.in, got, tc.want)
			}
			if err := got.validate(); err != nil {
				t.Fatalf("result not canonical: %v", err)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("NewVector modified its input")
				}
			}
		})
	}
}

func TestVectorGetCovers(t *testing.T) {
	v := vec(ent("a", 1, 3), ent("a", 2, 1), ent("c", 5, 9))
	tests := []struct {
		name   string
		dot    Dot
		get    uint64
		covers bool
	}{
		{"inside", Dot{act("a", 1), 2}, 3, true},
		{"at the counter", Dot{act("a", 1), 3}, 3, true},
		{"past the counter", Dot{act("a", 1), 4}, 3, false},
		{"zero counter is never covered", Dot{act("a", 1), 0}, 3, false},
		{"other epoch of the same node", Dot{act("a", 3), 1}, 0, false},
		{"absent actor", Dot{act("b", 1), 1}, 0, false},
		{"last entry", Dot{act("c", 5), 9}, 9, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.Get(tc.dot.Actor); got != tc.get {
				t.Errorf("Get(%v) = %d, want %d", tc.dot.Actor, got, tc.get)
			}
			if got := v.Covers(tc.dot); got != tc.covers {
				t.Errorf("Covers(%v) = %v, want %v", tc.dot, got, tc.covers)
			}
		})
	}
	if Vector(nil).Get(act("a", 1)) != 0 || Vector(nil).Covers(Dot{act("a", 1), 1}) {
		t.Error("the nil vector has seen something")
	}
}

func TestVectorCompare(t *testing.T) {
	tests := []struct {
		name string
		v, o Vector
		want Order
	}{
		{"both empty", nil, nil, Equal},
		{"nil equals empty", nil, Vector{}, Equal},
		{"same", vec(ent("a", 1, 1), ent("b", 1, 2)), vec(ent("a", 1, 1), ent("b", 1, 2)), Equal},
		{"empty before anything", nil, vec(ent("a", 1, 1)), Before},
		{"anything after empty", vec(ent("a", 1, 1)), nil, After},
		{"greater counter", vec(ent("a", 1, 2)), vec(ent("a", 1, 1)), After},
		{"smaller counter", vec(ent("a", 1, 1)), vec(ent("a", 1, 2)), Before},
		{"extra actor", vec(ent("a", 1, 1), ent("b", 1, 1)), vec(ent("a", 1, 1)), After},
		{"missing actor", vec(ent("b", 1, 1)), vec(ent("a", 1, 1), ent("b", 1, 1)), Before},
		{"disjoint actors", vec(ent("a", 1, 1)), vec(ent("b", 1, 1)), Concurrent},
		{"crossed counters", vec(ent("a", 1, 2), ent("b", 1, 1)), vec(ent("a", 1, 1), ent("b", 1, 2)), Concurrent},
		{"epochs are distinct actors", vec(ent("a", 1, 5)), vec(ent("a", 2, 1)), Concurrent},
		{"more and less at the tail", vec(ent("a", 1, 2)), vec(ent("a", 1, 1), ent("z", 1, 1)), Concurrent},
	}
	inverse := map[Order]Order{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.Compare(tc.o); got != tc.want {
				t.Fatalf("%v.Compare(%v) = %v, want %v", tc.v, tc.o, got, tc.want)
			}
			if got := tc.o.Compare(tc.v); got != inverse[tc.want] {
				t.Fatalf("reverse: %v.Compare(%v) = %v, want %v", tc.o, tc.v, got, inverse[tc.want])
			}
			wantDesc := tc.want == Equal || tc.want == After
			if got := tc.v.Descends(tc.o); got != wantDesc {
				t.Fatalf("Descends = %v, want %v", got, wantDesc)
			}
			if got := tc.v.Equal(tc.o); got != (tc.want == Equal) {
				t.Fatalf("Equal = %v, want %v", got, tc.want == Equal)
			}
		})
	}
}

func TestVectorMerge(t *testing.T) {
	tests := []struct {
		name    string
		v, o    Vector
		want    Vector
		wantNil bool
	}{
		{"both empty", nil, nil, nil, true},
		{"one empty", vec(ent("a", 1, 2)), nil, vec(ent("a", 1, 2)), false},
		{"pointwise max", vec(ent("a", 1, 2), ent("b", 1, 1)), vec(ent("a", 1, 1), ent("b", 1, 3)),
			vec(ent("a", 1, 2), ent("b", 1, 3)), false},
		{"interleaved actors", vec(ent("a", 1, 1), ent("c", 1, 1)), vec(ent("b", 1, 1), ent("d", 1, 1)),
			vec(ent("a", 1, 1), ent("b", 1, 1), ent("c", 1, 1), ent("d", 1, 1)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vBefore, oBefore := append(Vector(nil), tc.v...), append(Vector(nil), tc.o...)
			got := tc.v.Merge(tc.o)
			if !got.Equal(tc.want) || (got == nil) != tc.wantNil {
				t.Fatalf("Merge = %#v, want %#v", got, tc.want)
			}
			if !tc.o.Merge(tc.v).Equal(got) {
				t.Fatalf("Merge is not commutative")
			}
			if !tc.v.Equal(vBefore) || !tc.o.Equal(oBefore) {
				t.Fatalf("Merge modified an argument")
			}
			if len(got) > 0 && len(tc.v) > 0 && &got[0] == &tc.v[0] {
				t.Fatalf("Merge aliased its receiver")
			}
			if !got.Descends(tc.v) || !got.Descends(tc.o) {
				t.Fatalf("Merge does not descend from its inputs")
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{act("n1", 7).String(), "n1#7"},
		{Dot{act("n1", 7), 42}.String(), "n1#7:42"},
		{vec(ent("n1", 7, 42), ent("n2", 1, 3)).String(), "{n1#7:42 n2#1:3}"},
		{Vector(nil).String(), "{}"},
		{Concurrent.String(), "concurrent"},
		{Order(0).String(), "Order(0)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if a := act("n1", 7).NextEpoch(); a != act("n1", 8) {
		t.Errorf("NextEpoch = %v", a)
	}
}
