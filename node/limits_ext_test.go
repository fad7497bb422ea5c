//go:build linux

package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// Issue 14, full disk: a replica whose disk is (nearly) full refuses the
// write, and the coordinator counts it as a failed ack, never an ack: a
// write that needs all three replicas fails naming the full disk, one that
// needs two succeeds, and the full replica holds nothing.
func TestLimitsFullDiskReplicaIsFailedAck(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{Config: func(i int, cfg *node.Config) {
		if i != 2 {
			return
		}
		var fs syscall.Statfs_t
		if err := syscall.Statfs(cfg.DataDir, &fs); err != nil {
			t.Skipf("statfs %s: %v", cfg.DataDir, err)
		}
		// One and a half times the free space: record writes refused, the
		// start's small meta writes (upper half of the reserve) allowed.
		avail := int64(fs.Bavail) * int64(fs.Bsize)
		cfg.Limits.MinFreeDisk = avail + avail/2
	}})
	put := func(key, w string) (int, api.Error) {
		req, _ := http.NewRequest("PUT", c.URL(0)+"/kv/"+key+"?w="+w, strings.NewReader("v"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e api.Error
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e
	}
	code, e := put("all", "3")
	// The answer may come as soon as the full replica refuses, before
	// the second healthy ack: at most 2 acks, never 3.
	if code != http.StatusServiceUnavailable || e.Code != api.CodeQuorumNotMet || e.Acks == nil || *e.Acks > 2 ||
		!strings.Contains(e.Error, "disk full") {
		t.Fatalf("w=3 write with one full replica: %d %+v, want 503 quorum_not_met with at most 2 acks naming the full disk", code, e)
	}
	if code, e := put("two", "2"); code/100 != 2 {
		t.Fatalf("w=2 write with one full replica: %d %+v", code, e)
	}
	for _, key := range []string{"all", "two"} {
		if _, found, err := c.Node(2).ReadLocal([]byte(key)); err != nil || found {
			t.Fatalf("full replica holds %q: found %v, err %v", key, found, err)
		}
		if _, found, err := c.Node(1).ReadLocal([]byte(key)); err != nil || !found {
			t.Fatalf("healthy replica lacks %q: found %v, err %v", key, found, err)
		}
	}
}
