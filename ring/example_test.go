package ring_test

import (
	"fmt"

	"github.com/quorumkv/quorumkv/ring"
)

func Example() {
	r, err := ring.New(ring.LegacyConfig(), []ring.Member{
		{ID: "node-a"}, {ID: "node-b"}, {ID: "node-c"}, {ID: "node-d"},
	})
	if err != nil {
		panic(err)
	}
	p := r.PartitionOf([]byte("user:42"))
	fmt.Println("partition", p)
	fmt.Println("primaries", r.Primaries(p, 3))
	fmt.Println("all", r.Preference(p))
	// Output:
	// partition 220
	// primaries [node-c node-a node-d]
	// all [node-c node-a node-d node-b]
}

// A request goes to the live primaries, and a live fallback stands in for
// each dead one, carrying a hint naming it.
func ExampleRing_Targets() {
	r, _ := ring.New(ring.LegacyConfig(), []ring.Member{
		{ID: "node-a"}, {ID: "node-b"}, {ID: "node-c"}, {ID: "node-d"},
	})
	p := r.PartitionOf([]byte("user:42")) // preference: c a d b
	alive := func(id ring.NodeID) bool { return id != "node-c" }
	for _, t := range r.Targets(p, 3, alive) {
		if t.HintFor != "" {
			fmt.Printf("%s (hint for %s)\n", t.Node, t.HintFor)
		} else {
			fmt.Println(t.Node)
		}
	}
	// Output:
	// node-a
	// node-d
	// node-b (hint for node-c)
}

// Diff tells which members must receive or may drop each partition when the
// membership changes.
func ExampleDiff() {
	ms := []ring.Member{{ID: "node-a"}, {ID: "node-b"}, {ID: "node-c"}, {ID: "node-d"}}
	before, _ := ring.New(ring.LegacyConfig(), ms)
	after, _ := ring.New(ring.LegacyConfig(), append(ms, ring.Member{ID: "node-e"}))
	moves := ring.Diff(before, after, 3)
	gained := 0
	for _, m := range moves {
		gained += len(m.Gained) // always exactly [node-e] here
	}
	fmt.Printf("node-e gains %d of %d partitions; each loses one old replica\n", gained, before.Partitions())
	fmt.Println("first:", moves[0].Partition, moves[0].Gained, moves[0].Lost)
	// Output:
	// node-e gains 133 of 256 partitions; each loses one old replica
	// first: 3 [node-e] [node-a]
}

// Plan places a new cluster, then a join, as a cluster in ModeClaim does:
// each assignment derives from the one agreed before it.
func ExamplePlan() {
	cfg := ring.DefaultConfig() // ModeClaim, Q=1024, N=3
	ms := []ring.Member{
		{ID: "a1", Zone: "az1"}, {ID: "a2", Zone: "az1"},
		{ID: "b1", Zone: "az2"}, {ID: "b2", Zone: "az2"},
		{ID: "c1", Zone: "az3"},
	}
	birth, err := ring.Plan(cfg, nil, ms)
	if err != nil {
		panic(err)
	}
	before, _ := ring.FromAssignment(cfg, birth)
	fmt.Println("version", birth.Version(), "zones held:", before.ZoneStatus(3).Held)
	fmt.Println("c1 owns", before.Load(3)["c1"], "of", before.Partitions(), "partitions: its zone needs a replica of each")

	next, _ := ring.Plan(cfg, birth, append(ms, ring.Member{ID: "c2", Zone: "az3"}))
	after, _ := ring.FromAssignment(cfg, next)
	e := ring.Explain(before, after, 3)
	fmt.Println("version", next.Version(), "moves", e.Moved, "ideal", e.IdealMoved)
	fmt.Println("c1 and c2 own", after.Load(3)["c1"], after.Load(3)["c2"])
	// Output:
	// version 1 zones held: true
	// c1 owns 1024 of 1024 partitions: its zone needs a replica of each
	// version 2 moves 512 ideal 512
	// c1 and c2 own 512 512
}
