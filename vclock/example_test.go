package vclock_test

import (
	"fmt"

	"github.com/quorumkv/quorumkv/vclock"
)

func show(s vclock.Set) {
	for _, sib := range s.Siblings {
		if sib.Value.Deleted {
			fmt.Printf("%v=<deleted> ", sib.Dot)
			continue
		}
		fmt.Printf("%v=%s ", sib.Dot, sib.Value.Data)
	}
	fmt.Println(s.Context)
}

// Two blind writes through one coordinator stay as siblings; a write that
// carries the context of a read that saw both replaces both.
func ExampleUpdate() {
	n1 := vclock.Actor{Node: "n1", Epoch: 1}
	var s vclock.Set // the key was never written
	s, _ = vclock.Update(s, nil, n1, vclock.Value{Data: []byte("red")})
	s, _ = vclock.Update(s, nil, n1, vclock.Value{Data: []byte("blue")})
	show(s)

	ctx := s.Context // what a client reads, and sends back
	s, dot := vclock.Update(s, ctx, n1, vclock.Value{Data: []byte("purple")})
	show(s)
	fmt.Println("new write:", dot)
	// Output:
	// n1#1:1=red n1#1:2=blue {n1#1:2}
	// n1#1:3=purple {n1#1:3}
	// new write: n1#1:3
}

// Replicas merge their sets with Sync: a value goes away only if the other
// side has seen a write that superseded it.
func ExampleSync() {
	n1, n2 := vclock.Actor{Node: "n1", Epoch: 1}, vclock.Actor{Node: "n2", Epoch: 1}
	a, _ := vclock.Update(vclock.Set{}, nil, n1, vclock.Value{Data: []byte("x")})
	b := vclock.Sync(vclock.Set{}, a)                                   // replicated to n2
	b, _ = vclock.Update(b, b.Context, n2, vclock.Value{Deleted: true}) // n2 deletes x
	a, _ = vclock.Update(a, nil, n1, vclock.Value{Data: []byte("y")})   // concurrent blind write at n1

	m := vclock.Sync(a, b)
	show(m)
	fmt.Println("deleted:", m.IsDeleted(), "live:", len(m.Live()))
	// Output:
	// n1#1:2=y n2#1:1=<deleted> {n1#1:2 n2#1:1}
	// deleted: false live: 1
}

// A context travels to clients as an opaque, URL-safe token.
func ExampleEncodeContext() {
	v := vclock.NewVector(
		vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 3},
		vclock.Entry{Actor: vclock.Actor{Node: "n2", Epoch: 2}, Counter: 1},
	)
	tok := vclock.EncodeContext(v)
	fmt.Println(tok)
	back, err := vclock.DecodeContext(tok)
	fmt.Println(back, err)
	_, err = vclock.DecodeContext("not a token!")
	fmt.Println(err)
	// Output:
	// AZKTom4xAQOTom4yAgE
	// {n1#1:3 n2#2:1} <nil>
	// decode context: vclock: malformed encoding
}

// Last-write-wins is an explicit choice: pick a winner, then write it back
// with the set's context so it replaces every sibling.
func ExampleResolveLWW() {
	n1, n2 := vclock.Actor{Node: "n1", Epoch: 1}, vclock.Actor{Node: "n2", Epoch: 1}
	s, _ := vclock.Update(vclock.Set{}, nil, n1, vclock.Value{Data: []byte("old"), Timestamp: 100})
	s, _ = vclock.Update(s, nil, n2, vclock.Value{Data: []byte("new"), Timestamp: 200})
	win, _ := vclock.ResolveLWW(s)
	s, _ = vclock.Update(s, s.Context, n1, win.Value)
	show(s)
	// Output:
	// n1#1:2=new {n1#1:2 n2#1:1}
}
