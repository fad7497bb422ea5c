package transport_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/transport"
)

const methodUpper transport.Method = 1

// upper is a handler: it answers methodUpper with the body in capitals.
var upper = transport.HandlerFunc(func(_ context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	if m != methodUpper {
		return nil, &transport.RemoteError{Code: 404, Msg: "unknown method"}
	}
	return []byte(strings.ToUpper(string(body)) + " (for " + from + ")"), nil
})

// Two nodes on loopback: one serves, the other calls it.
func Example() {
	cfg := transport.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Secret = []byte("cluster secret")

	cfg.NodeID, cfg.Handler = "n1", upper
	n1, err := transport.Listen(cfg)
	if err != nil {
		panic(err)
	}
	defer n1.Close()

	cfg.NodeID, cfg.Handler = "n2", nil
	n2, err := transport.Listen(cfg)
	if err != nil {
		panic(err)
	}
	defer n2.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := n2.Call(ctx, n1.LocalAddr(), methodUpper, []byte("hello"))
	fmt.Println(string(reply), err)

	_, err = n2.Call(ctx, n1.LocalAddr(), 9, nil)
	fmt.Println(err)
	// Output:
	// HELLO (for n2) <nil>
	// remote error 404: unknown method
}

// A partition on a MemNetwork: calls across it time out, and succeed again
// after Heal.
func ExampleMemNetwork() {
	net := transport.NewMemNetwork(1)
	a, _ := net.Listen("a", "node-a", upper)
	defer a.Close()
	b, _ := net.Listen("b", "node-b", upper)
	defer b.Close()

	net.Partition([]string{"a"}, []string{"b"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	_, err := a.Call(ctx, "b", methodUpper, []byte("hi"))
	cancel()
	fmt.Println(err)

	net.Heal()
	reply, err := a.Call(context.Background(), "b", methodUpper, []byte("hi"))
	fmt.Println(string(reply), err)
	fmt.Printf("%+v\n", net.Stats()[transport.Link{From: "a", To: "b"}])
	// Output:
	// call b: context deadline exceeded
	// HI (for node-a) <nil>
	// {Sent:2 Delivered:1 Dropped:1 Duplicated:0 Refused:0 Bytes:4}
}
