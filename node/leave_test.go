package node

import (
	"testing"
	"time"
)

func stateOf(nd *Node, id string) string {
	for _, m := range nd.Members() {
		if m.ID == id {
			return m.State
		}
	}
	return ""
}

// Issue 19, item 8: a member that shut down cleanly (Close: it leaves
// gossip) is listed as left, not dead as a crashed one is.
func TestMembersShowLeftAfterClose(t *testing.T) {
	p1, err := freeTCPUDPPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n1 := startGossipNode(t, "n1", p1, nil, nil)
	p2, err := freeTCPUDPPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n2 := startGossipNode(t, "n2", p2, []string{n1.GossipAddr()}, nil)
	waitUntil(t, 10*time.Second, "n1 and n2 to see each other alive", func() bool {
		return stateOf(n1, "n2") == "alive" && stateOf(n2, "n1") == "alive"
	})
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "n1 to list n2 as left", func() bool { return stateOf(n1, "n2") == "left" })
}
