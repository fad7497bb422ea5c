package node_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
)

// startGossipNode starts a node with real gossip on 127.0.0.1, joining
// seeds, in memory.
func startGossipNode(t *testing.T, id string, seeds ...string) *node.Node {
	t.Helper()
	cfg := node.DefaultLocalConfig()
	cfg.NodeID, cfg.Secret = id, "test-secret"
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join = seeds
	cfg.Defaults.N, cfg.Defaults.R, cfg.Defaults.W = 1, 1, 1
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}

func stateOf(nd *node.Node, id string) string {
	for _, m := range nd.Members() {
		if m.ID == id {
			return m.State
		}
	}
	return ""
}

func waitState(t *testing.T, nd *node.Node, id, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for stateOf(nd, id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s sees %s %q after %s, want %q", nd.ID(), id, stateOf(nd, id), timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Issue 19, item 8: a member that shut down cleanly (Close: it leaves
// gossip) is listed as left, not dead as a crashed one is.
func TestMembersShowLeftAfterClose(t *testing.T) {
	n1 := startGossipNode(t, "n1")
	n2 := startGossipNode(t, "n2", n1.GossipAddr())
	waitState(t, n1, "n2", "alive", 10*time.Second)
	waitState(t, n2, "n1", "alive", 10*time.Second)
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	waitState(t, n1, "n2", "left", 10*time.Second)
}
