package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/node"
)

// startNode runs a one-node cluster in memory on 127.0.0.1 for the example.
func startNode() *node.Node {
	cfg := node.DefaultLocalConfig()
	cfg.NodeID = "n1"
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Secret = "example"
	nd, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	return nd
}

// Two writes without a context become siblings; a write with the context
// of a read that saw both resolves them.
func Example() {
	nd := startNode()
	defer nd.Close()
	ctx := context.Background()

	c, err := client.New([]string{nd.HTTPAddr()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// One node: ask for one replica instead of the default three.
	one := client.N(1)

	_, err = c.Get(ctx, "greeting", one)
	fmt.Println("before any write, not found:", errors.Is(err, client.ErrNotFound))

	for _, v := range []string{"hello", "bonjour"} {
		if _, err := c.Put(ctx, "greeting", []byte(v), one); err != nil {
			log.Fatal(err)
		}
	}
	obj, err := c.Get(ctx, "greeting", one)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("siblings:", len(obj.Siblings))

	if _, err := c.Put(ctx, "greeting", []byte("hi"), one, client.Context(obj.Context)); err != nil {
		log.Fatal(err)
	}
	obj, err = c.Get(ctx, "greeting", one)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("resolved: %d sibling, %q\n", len(obj.Siblings), obj.Siblings[0].Value)

	_, err = c.Get(ctx, "greeting", client.N(3))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("n=3 on one node:", e.Status, e.Code, e.Param)
	}
	// Output:
	// before any write, not found: true
	// siblings: 2
	// resolved: 1 sibling, "hi"
	// n=3 on one node: 400 bad_parameter n
}
