package connlimit_test

import (
	"fmt"
	"net"
	"time"

	"github.com/quorumkv/quorumkv/connlimit"
)

func ExampleNewListener() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ln, err := connlimit.NewListener(inner, connlimit.Config{
		Name:     "resp",
		MaxConns: 10000, // per source: max(16, 10000/8) = 1250
		Refuse:   connlimit.RefuseWith([]byte("-ERR max number of clients reached\r\n")),
	})
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	fmt.Println(ln.Stats().MaxPerSource)
	// Output: 1250
}

func ExamplePace_TimeFor() {
	// The write deadline for a 1 MiB reply at the reply pace.
	fmt.Println(connlimit.ReplyPace.TimeFor(1 << 20))
	// Output: 26s
}

func ExampleCommandTimer() {
	tm := connlimit.NewCommandTimer(connlimit.DefaultRESPTimeouts())
	start := time.Unix(0, 0)
	// Deadlines are set up to 1/16 of the timeout late, so that they
	// need setting rarely, and never early.
	d, _ := tm.Deadline(start, 0) // between commands: the idle timeout (5m)
	fmt.Println(d.Sub(start))
	d, _ = tm.Deadline(start, 512) // half a command buffered: its grace (10s)
	fmt.Println(d.Sub(start))
	// Output:
	// 5m18.75s
	// 10.625s
}
