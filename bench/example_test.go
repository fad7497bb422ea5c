package bench_test

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/bench"
)

// A synthetic history: a write through node 0, a read through node 1 that
// missed it 5ms later, and a final R=N read that found it.
func ExampleChecker() {
	c, err := bench.NewChecker(bench.CheckerConfig{Deltas: []time.Duration{0, 10 * time.Millisecond}})
	if err != nil {
		panic(err)
	}
	w := bench.WriteID{Node: "n0", Epoch: 1, Counter: 1}
	c.Write(bench.WriteEvent{Key: "k", ID: w, Coord: 0, Invoke: 0, Ack: 2 * time.Millisecond})
	sawNothing := bench.ObservedFunc(func(bench.WriteID) bool { return false })
	k := c.Read(bench.ReadEvent{Key: "k", Coord: 1, Invoke: 7 * time.Millisecond, Found: false, Observed: sawNothing})
	c.Final("k", bench.ObservedFunc(func(id bench.WriteID) bool { return id == w }))

	r := c.Result(true)
	fmt.Println("read was", k, "version behind")
	fmt.Printf("stale reads %d of %d, lost writes %d\n", r.StaleReads, r.Reads, r.LostWrites)
	fmt.Printf("P(visible) 0-10ms: %.1f over %d reads\n", r.TVisibility[0].P, r.TVisibility[0].Pairs)
	// Output:
	// read was 1 version behind
	// stale reads 1 of 1, lost writes 0
	// P(visible) 0-10ms: 0.0 over 1 reads
}

func ExampleParseQuorums() {
	qs, err := bench.ParseQuorums("3/1/1,3/2/2")
	if err != nil {
		panic(err)
	}
	for _, q := range qs {
		fmt.Println(q, "strict:", q.Strict())
	}
	// Output:
	// 3/1/1 strict: false
	// 3/2/2 strict: true
}

func ExampleParseSchedule() {
	s, err := bench.ParseSchedule("20s:restart:1,10s:kill:1")
	if err != nil {
		panic(err)
	}
	for _, st := range s {
		fmt.Println(st.At, st.Action, st.Node)
	}
	// Output:
	// 10s kill 1
	// 20s restart 1
}

func ExampleParseDelay() {
	d, err := bench.ParseDelay("fixed:1ms+jitter:500us")
	if err != nil {
		panic(err)
	}
	fmt.Println(d, d.Mean())
	// Output: fixed:1ms+jitter:500µs 1ms
}
