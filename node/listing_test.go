package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/listing"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// scanAll pages through a scan via nd from cursor from, calling between
// (when set) after the first page.
func scanAll(t *testing.T, nd func() *node.Node, q node.ScanQuery, between func()) []string {
	t.Helper()
	var keys []string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("scan does not end")
		}
		res, err := nd().Scan(t.Context(), q)
		if err != nil {
			t.Fatalf("scan page %d from %s: %v", pages, q.From, err)
		}
		for _, k := range res.Keys {
			keys = append(keys, string(k))
		}
		if res.Done {
			return keys
		}
		q.From = res.Next
		if pages == 0 && between != nil {
			between()
		}
	}
}

// TestScanListsQuorumWritesNotQuorumDeletes: node 2 misses deletes and
// writes acknowledged at W=2 by the others; a scan through it lists exactly
// the live keys (Dynamo §4.5: N-W+1 replicas overlap every write quorum),
// with one node restarted mid-scan.
func TestScanListsQuorumWritesNotQuorumDeletes(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{})
	p := quorum.Params{N: 3, W: 2, R: 2}
	for i := range 300 {
		if _, err := put(t, c.Node(i%3), fmt.Sprintf("k%03d", i), "v", nil, quorum.Params{N: 3, W: 3}); err != nil {
			t.Fatal(err)
		}
	}
	c.Isolate(2)
	want := map[string]bool{}
	for i := range 300 {
		k := fmt.Sprintf("k%03d", i)
		if i >= 100 {
			want[k] = true
			continue
		}
		r, err := get(t, c.Node(0), k, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Node(1).Coordinator().Put(t.Context(), quorum.PutRequest{Key: []byte(k), Value: vclock.Value{Deleted: true}, Context: r.Set.Context, Params: p}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		k := fmt.Sprintf("n%03d", i)
		if _, err := put(t, c.Node(0), k, "v", nil, p); err != nil {
			t.Fatal(err)
		}
		want[k] = true
	}
	if s := localCopy(t, c, 2, "k000"); s.IsDeleted() {
		t.Fatal("node 2 holds the delete: the test does not test the merge")
	}
	c.Heal()
	c.WaitConverged(10 * time.Second)

	check := func(name string, got []string) {
		t.Helper()
		seen := map[string]bool{}
		for _, k := range got {
			if seen[k] {
				t.Errorf("%s: %q listed twice", name, k)
			}
			seen[k] = true
			if !want[k] {
				t.Errorf("%s: %q listed but deleted before the scan", name, k)
			}
		}
		for k := range want {
			if !seen[k] {
				t.Errorf("%s: live %q not listed", name, k)
			}
		}
	}
	check("via stale node", scanAll(t, func() *node.Node { return c.Node(2) }, node.ScanQuery{Limit: 17}, nil))
	check("restart mid-scan", scanAll(t, func() *node.Node { return c.Node(0) }, node.ScanQuery{Limit: 50}, func() {
		c.Kill(1)
		c.Restart(1)
	}))
	got := scanAll(t, func() *node.Node { return c.Node(1) }, node.ScanQuery{Limit: 1000, Prefix: []byte("n"), Match: func(k []byte) bool { return listing.Match([]byte("n0?5"), k) }}, nil)
	slices.Sort(got)
	if want := []string{"n005", "n015", "n025", "n035", "n045", "n055", "n065", "n075", "n085", "n095"}; !slices.Equal(got, want) {
		t.Errorf("prefix and match: %q, want %q", got, want)
	}
	if _, err := c.Node(0).Scan(t.Context(), node.ScanQuery{Limit: 0}); err == nil {
		t.Error("limit 0 accepted")
	}
}

// TestListRPC: a replica's page carries sibling sets without values'
// data, in byte order of keys; malformed or inconsistent requests, and the
// retired ring-order method, are refused as invalid.
func TestListRPC(t *testing.T) {
	c := nodetest.NewCluster(t, 1, nodetest.Options{})
	nd := c.Node(0)
	secret := "a value that must not travel"
	for i := range 50 {
		if _, err := put(t, nd, fmt.Sprintf("k%d", i), secret, nil, quorum.Params{N: 1, W: 1}); err != nil {
			t.Fatal(err)
		}
	}
	rg := nd.Ring()
	total := 0
	for p := range uint32(rg.Partitions()) {
		req := wire.ListRequest{Partition: p, From: rg.PartitionStart(p), Limit: 1000, Scan: 1000}
		body, err := req.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := nd.ServeRPC(t.Context(), "peer", wire.MethodListOrdered, body)
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		if strings.Contains(string(out), secret) {
			t.Fatalf("partition %d: the page carries values", p)
		}
		var resp wire.ListResponse
		if err := resp.Decode(out); err != nil || !resp.Done {
			t.Fatalf("partition %d: %+v, %v", p, resp, err)
		}
		for i, e := range resp.Entries {
			if k := rg.KeyOf(e.Key); k.Partition != p || k.Hash != e.Hash {
				t.Fatalf("partition %d lists %q of partition %d", p, e.Key, k.Partition)
			}
			if i > 0 && string(e.Key) <= string(resp.Entries[i-1].Key) {
				t.Fatalf("partition %d lists %q after %q", p, e.Key, resp.Entries[i-1].Key)
			}
		}
		total += len(resp.Entries)
	}
	if total != 50 {
		t.Fatalf("pages list %d keys, want 50", total)
	}
	badFrom, _ := (&wire.ListRequest{Partition: 0, From: rg.PartitionStart(1), Limit: 1, Scan: 1}).Append(nil)
	badPart, _ := (&wire.ListRequest{Partition: uint32(rg.Partitions()), From: 0, Limit: 1, Scan: 1}).Append(nil)
	for name, body := range map[string][]byte{"garbage": []byte("\x95junk"), "from outside the partition": badFrom, "no such partition": badPart} {
		_, err := nd.ServeRPC(t.Context(), "peer", wire.MethodListOrdered, body)
		var re *transport.RemoteError
		if !errors.As(err, &re) || re.Code != wire.CodeInvalid {
			t.Errorf("%s: %v, want CodeInvalid", name, err)
		}
	}
	ok, _ := (&wire.ListRequest{Partition: 0, From: 0, Limit: 1, Scan: 1}).Append(nil)
	_, err := nd.ServeRPC(t.Context(), "peer", wire.MethodList, ok)
	if re := (*transport.RemoteError)(nil); !errors.As(err, &re) || re.Code != wire.CodeInvalid || !strings.Contains(re.Msg, "unknown method") {
		t.Errorf("retired MethodList: %v, want an unknown method", err)
	}
}
