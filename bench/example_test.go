package bench_test

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/bench/oracle"
)

// A synthetic history: a write through node 0, a read through node 1 that
// missed it 5ms later, and a final R=N read that found it. The value sent
// starts with the write's tag, which is how the checker knows what a read
// returned.
func ExampleChecker() {
	c, err := bench.NewChecker(bench.CheckerConfig{Deltas: []time.Duration{0, 10 * time.Millisecond}})
	if err != nil {
		panic(err)
	}
	op := c.Invoke("k", oracle.Context{}, 0, 0)
	value := append(c.AppendTag(nil, op), " and the rest of the value"...)
	c.Acked(op, 2*time.Millisecond, [][]byte{value})
	_, k := c.Read(bench.ReadEvent{Key: "k", Coord: 1, Invoke: 7 * time.Millisecond})
	c.Final("k", [][]byte{value})

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
