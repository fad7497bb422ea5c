package oracle_test

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

// Two concurrent writes are acknowledged; the store keeps only the newer
// one (its version vector may still cover the other's dot, which the
// oracle never looks at). The final read at R=N shows the loss.
func Example_droppedSibling() {
	o, _ := oracle.New(oracle.Config{Run: 1})
	a := o.Invoke(oracle.Write{Key: "k", Invoke: 0})
	b := o.Invoke(oracle.Write{Key: "k", Invoke: time.Millisecond})
	va, vb := o.AppendTag(nil, a), o.AppendTag(nil, b)
	o.Complete(a, oracle.Acked, 2*time.Millisecond)
	o.Complete(b, oracle.Acked, 3*time.Millisecond)

	_, v := o.Read(oracle.Read{Key: "k", Values: [][]byte{vb}, Invoke: 5 * time.Millisecond})
	fmt.Println("read of b alone stale:", v.Stale, "k =", v.K)

	o.Final("k", [][]byte{vb})
	r := o.Result()
	fmt.Println("lost:", r.Lost, "write", r.LostWrites[0].ID == a.ID())
	_ = va
	// Output:
	// read of b alone stale: true k = 1
	// lost: 1 write true
}
