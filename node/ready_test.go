package node_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// readyz calls GET /readyz on nd's handler.
func readyz(t *testing.T, nd *node.Node) (int, node.ReadyJSON) {
	t.Helper()
	rec := httptest.NewRecorder()
	nd.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body node.ReadyJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

// Joined members on the ring are ready; a member that left the ring is
// not (it owns no data), while /healthz still says it is alive; a closing
// node is not ready either.
func TestReadyz(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	// n1 started alone: it counts as joined at its next attempt after the
	// others joined it; each of the others at its first attempt that finds
	// n1 alive in gossip.
	for i := range 3 {
		c.WaitFor(5*time.Second, c.ID(i)+" joined", c.Node(i).Joined)
	}
	for i := range 3 {
		code, body := readyz(t, c.Node(i))
		if code != http.StatusOK || body.Status != "ready" || body.Node != c.ID(i) || len(body.Reasons) != 0 {
			t.Fatalf("%s: /readyz %d %+v, want 200 ready", c.ID(i), code, body)
		}
	}
	if err := c.Node(2).Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, body := readyz(t, c.Node(2))
	if code != http.StatusServiceUnavailable || body.Code != node.CodeNotReady || body.Status != "not ready" ||
		len(body.Reasons) != 1 || !strings.Contains(body.Reasons[0], "left or was removed") || !strings.Contains(body.Error, body.Reasons[0]) {
		t.Fatalf("after leave: /readyz %d %+v, want 503 not on the ring", code, body)
	}
	rec := httptest.NewRecorder()
	c.Node(2).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("after leave: /healthz %d, want 200 (the process is alive)", rec.Code)
	}
	nd := c.Node(1)
	c.Kill(1)
	if r := nd.Ready(t.Context()); len(r) != 1 || r[0] != "shutting down" {
		t.Fatalf("closed node: Ready = %q, want shutting down", r)
	}
}

// A node whose seeds answer nothing is not ready; once a member joins it,
// it is.
func TestReadyzBeforeJoin(t *testing.T) {
	c := nodetest.NewCluster(t, 1, nodetest.Options{InMemory: true})
	r := c.Node(0).Ready(t.Context())
	if len(r) != 1 || !strings.Contains(r[0], "not joined") || !strings.Contains(r[0], "mem:0") {
		t.Fatalf("lone node with seeds: Ready = %q, want not joined naming the seeds", r)
	}
	c.AddNode()
	c.WaitFor(5*time.Second, "both nodes ready", func() bool {
		return len(c.Node(0).Ready(t.Context())) == 0 && len(c.Node(1).Ready(t.Context())) == 0
	})

	// No seeds: the first member of a cluster is ready alone.
	solo := nodetest.NewCluster(t, 1, nodetest.Options{InMemory: true, Config: func(_ int, cfg *node.Config) { cfg.Join = nil }})
	if r := solo.Node(0).Ready(t.Context()); len(r) != 0 {
		t.Fatalf("node without seeds: Ready = %q, want ready", r)
	}
}
