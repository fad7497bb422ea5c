package node

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/syncio"
	"github.com/quorumkv/quorumkv/internal/waitfor"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct{ syncio.Buffer }

// count is how many times s occurs in what was written.
func (l *lockedBuffer) count(s string) int { return strings.Count(l.String(), s) }

// lines returns the lines written that contain s.
func (l *lockedBuffer) lines(s string) string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, timeout, what, cond)
}

// startGossipNode starts a node with real memberlist and TCP RPC on
// 127.0.0.1, advertising host "localhost" (resolved from /etc/hosts, so no
// DNS traffic leaves the machine).
func startGossipNode(t *testing.T, id string, gossipPort int, join []string, logs *lockedBuffer) *Node {
	t.Helper()
	cfg := DefaultLocalConfig()
	cfg.NodeID = id
	cfg.HTTPAddr, cfg.RPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.GossipAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(gossipPort))
	cfg.Advertise = "localhost"
	cfg.Join = join
	cfg.JoinRetry = 50 * time.Millisecond
	cfg.Secret = "join-test"
	var h slog.Handler = slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})
	if logs != nil {
		h = slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	cfg.Logger = slog.New(h)
	nd, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd
}

// Seeds given by name are resolved by the gossip layer on every attempt;
// an answer from this node itself (the name resolves to it) is not a join;
// published addresses carry the advertised host and the bound ports.
func TestJoinByNameWithAdvertisedAddresses(t *testing.T) {
	p1, err := freeTCPUDPPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	seed := net.JoinHostPort("localhost", strconv.Itoa(p1))
	logs := &lockedBuffer{}
	n1 := startGossipNode(t, "n1", p1, []string{seed}, logs)
	// Its only seed is itself: after several attempts it is still alone and
	// not ready.
	waitUntil(t, 10*time.Second, "n1 to retry its seeds three times", func() bool {
		return logs.count(errOnlySelf.Error()) >= 3
	})
	if n1.Joined() {
		t.Fatal("n1 counts an answer from itself as a join")
	}
	if r := n1.Ready(t.Context()); len(r) != 1 || !strings.Contains(r[0], "not joined") {
		t.Fatalf("n1 alone: Ready = %q, want not joined", r)
	}

	n2 := startGossipNode(t, "n2", 0, []string{seed}, nil)
	waitUntil(t, 10*time.Second, "n1 and n2 joined and ready", func() bool {
		return n1.Joined() && n2.Joined() && len(n1.Ready(t.Context())) == 0 && len(n2.Ready(t.Context())) == 0 &&
			n1.Ring().Len() == 2 && n2.Ring().Len() == 2
	})
	for _, nd := range []*Node{n1, n2} {
		for _, m := range nd.Members() {
			for what, addr := range map[string]string{"http": m.HTTP, "rpc": m.RPC, "gossip": m.Gossip} {
				if !strings.HasPrefix(addr, "localhost:") {
					t.Errorf("%s lists %s's %s address %q, want the advertised host localhost", nd.ID(), m.ID, what, addr)
				}
			}
		}
	}
	var n1Seen MemberInfo
	for _, m := range n2.Members() {
		if m.ID == "n1" {
			n1Seen = m
		}
	}
	if want := "localhost:" + strconv.Itoa(p1); n1Seen.Gossip != want {
		t.Errorf("n2 lists n1's gossip address %q, want %q", n1Seen.Gossip, want)
	}
	_, httpPort, _ := net.SplitHostPort(n1.HTTPAddr())
	if n1Seen.HTTP != "localhost:"+httpPort {
		t.Errorf("n2 lists n1's http address %q, want localhost with the bound port %s", n1Seen.HTTP, httpPort)
	}
	// RPC through the advertised name works: writes at W=N=2 need both.
	for i := range 20 {
		k := []byte("adv" + strconv.Itoa(i))
		if _, err := n2.Coordinator().Put(t.Context(), quorum.PutRequest{Key: k, Value: vclock.Value{Data: k}, Params: quorum.Params{N: 2, W: 2}}); err != nil {
			t.Fatalf("put at W=2 through advertised addresses: %v", err)
		}
	}
}
