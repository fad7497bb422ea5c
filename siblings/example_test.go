package siblings_test

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

func ExamplePolicy_Merge() {
	p := siblings.Policy{MaxCount: 2, MergeCount: 3}
	write := func(s vclock.Set, node string, ts int64) vclock.Set {
		s, _ = vclock.Update(s, nil, vclock.Actor{Node: node, Epoch: 1}, vclock.Value{Data: []byte(node), Timestamp: ts})
		return s
	}
	// Two sides of a partition, each at the client cap.
	a := write(write(vclock.Set{}, "a", 1), "a", 3)
	b := write(write(vclock.Set{}, "b", 2), "b", 4)
	fmt.Println(errors.Is(p.CheckWrite(write(a, "a", 5)), siblings.ErrTooMany))

	m := p.Merge(a, b) // four siblings, merge cap three: the oldest goes
	fmt.Println(len(m.Set.Siblings), m.Trimmed[0].Dot, m.Trimmed[0].Value.Timestamp)
	// Output:
	// true
	// 3 a#1:1 1
}
