package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// TestRingCommitStaleVersionOnNodes: through real nodes, a plan's
// version is the same on every node that sees the same staged state, and
// a commit naming the version of a plan that was cleared and replaced
// commits nothing.
func TestRingCommitStaleVersionOnNodes(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	call := func(i int, method, target string) (int, api.RingPlan, string) {
		t.Helper()
		w := httptest.NewRecorder()
		c.Node(i).Handler().ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), method, target, nil))
		var p api.RingPlan
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("%s %s: %v", method, target, err)
			}
		}
		return w.Code, p, w.Body.String()
	}
	code, seen, body := call(0, "POST", "/admin/ring/stage?op=leave&node=n3")
	if code != http.StatusOK || len(seen.Version) != 16 {
		t.Fatalf("stage leave n3: %d %s", code, body)
	}
	c.WaitFor(10*time.Second, "the staged leave gossiped to n2", func() bool {
		_, p, _ := call(1, "GET", "/admin/ring/plan")
		return p.Version == seen.Version
	})
	// Another admin replaces the staged change through another node.
	if code, _, body := call(1, "POST", "/admin/ring/clear"); code != http.StatusOK {
		t.Fatalf("clear: %d %s", code, body)
	}
	code, now, body := call(1, "POST", "/admin/ring/stage?op=leave&node=n2")
	if code != http.StatusOK || now.Version == seen.Version {
		t.Fatalf("stage leave n2: %d %s", code, body)
	}
	c.WaitFor(10*time.Second, "the new stage gossiped to n1", func() bool {
		_, p, _ := call(0, "GET", "/admin/ring/plan")
		return p.Version == now.Version
	})
	if code, _, body := call(0, "POST", "/admin/ring/commit?version="+seen.Version); code != http.StatusConflict || !strings.Contains(body, "nothing committed") {
		t.Fatalf("commit of the replaced plan: %d %s", code, body)
	}
	if _, p, _ := call(0, "GET", "/admin/ring/plan"); p.Version != now.Version || len(p.Leaves) != 1 || p.Leaves[0] != "n2" {
		t.Fatalf("after the refused commit the plan is %+v, want the staged leave of n2 (version %s)", p, now.Version)
	}
}
