package node_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/backup"
	qkvclient "github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// TestBackupEndpoints drives the three backup endpoints in one process:
// keys with siblings and tombstones backed up from 3 nodes, restored into
// 4 with a key the target already overwrote, backed up again and
// compared.
func TestBackupEndpoints(t *testing.T) {
	src := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	const keys = 300
	for i := range keys {
		u := fmt.Sprintf("%s/kv/b%03d", src.URL(i%3), i)
		httpDo(t, "PUT", u, "v1", nil)
		if i%5 == 0 {
			httpDo(t, "PUT", u, "v2", nil) // blind: a sibling
		}
		if i%7 == 0 {
			if a := httpDo(t, "DELETE", u, "", nil); a.status != 204 {
				t.Fatalf("DELETE %s: %d %s", u, a.status, a.body)
			}
		}
	}
	a := backupOf(t, src.URL(0))
	if len(a) != keys {
		t.Fatalf("backup holds %d keys, want %d", len(a), keys)
	}
	for k, s := range a {
		var i int
		fmt.Sscanf(k, "b%03d", &i)
		want := 1
		if i%5 == 0 && i%7 != 0 {
			want = 2
		}
		if got := len(s.Siblings); got != want || (i%7 == 0) != s.IsDeleted() {
			t.Errorf("%s: %d siblings (deleted %v), want %d (deleted %v)", k, got, s.IsDeleted(), want, i%7 == 0)
		}
	}

	dst := nodetest.NewCluster(t, 4, nodetest.Options{InMemory: true})
	httpDo(t, "PUT", dst.URL(1)+"/kv/b001", "unrelated", nil) // concurrent with the backup's b001
	file := fileOf(t, a)
	restore(t, dst.URL(2), file)
	b := backupOf(t, dst.URL(3))
	for k, sa := range a {
		if k == "b001" {
			continue
		}
		if !sa.Equal(b[k]) {
			t.Errorf("%s restored as %+v, want %+v", k, b[k], sa)
		}
	}
	if got := len(b["b001"].Live()); got != 2 {
		t.Errorf("b001 after restoring over a concurrent write: %d live siblings, want 2", got)
	}
	restore(t, dst.URL(0), file)
	if again := backupOf(t, dst.URL(1)); fmt.Sprint(again) != fmt.Sprint(b) {
		t.Errorf("a second restore changed the cluster")
	}

	// Bad requests are refused with 400, and a merge body of a wrong
	// version names it.
	bad := bytes.Clone(file)
	bad[9] = 7
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/backup/merge", "nonsense"},
		{"POST", "/admin/backup/merge", string(bad)},
		{"POST", "/admin/backup/merge", string(file[:len(file)-3])},
		{"GET", "/admin/backup/records?partition=x", ""},
		{"GET", "/admin/backup/nothing", ""},
	} {
		if r := httpDo(t, c.method, dst.URL(0)+c.path, c.body, nil); r.status != 400 && r.status != 404 {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
}

// TestRestoreWithANodeDown restores into 4 nodes with one dead: the keys it
// is a primary of are merged into their fallbacks as hints (key by key,
// the batch merge being for primaries) and every key reads back (R=2).
func TestRestoreWithANodeDown(t *testing.T) {
	dst := nodetest.NewCluster(t, 4, nodetest.Options{InMemory: true})
	sets := map[string]vclock.Set{}
	for i := range 200 {
		s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "old", Epoch: 1}, vclock.Value{Data: fmt.Appendf(nil, "v%03d", i)})
		sets[fmt.Sprintf("d%03d", i)] = s
	}
	dead := ring.NodeID(dst.ID(3))
	dst.Kill(3)
	dst.WaitFor(30*time.Second, "n1 to n3 to see the killed node dead", func() bool {
		for i := range 3 {
			if dst.Node(i).Alive(dead) {
				return false
			}
		}
		return true
	})
	restore(t, dst.URL(0), fileOf(t, sets))
	var stored uint64
	for i := range 3 {
		stored += dst.Node(i).Status().Hints.Stored
	}
	if stored == 0 {
		t.Errorf("no hint stored for %s: the restore reached no fallback", dead)
	}
	for k, s := range sets {
		a := httpDo(t, "GET", dst.URL(1)+"/kv/"+k+"?r=2", "", nil)
		if want := string(s.Siblings[0].Value.Data); a.status != 200 || a.body != want {
			t.Errorf("GET %s after the restore: %d %q, want 200 %q", k, a.status, a.body, want)
		}
	}
}

// A merge body over the node's cap is refused whole (400), and the node
// keeps serving.
func TestBackupMergeBodyCap(t *testing.T) {
	c := nodetest.NewCluster(t, 1, nodetest.Options{InMemory: true})
	var s vclock.Set
	s, _ = vclock.Update(s, nil, vclock.Actor{Node: "x", Epoch: 1}, vclock.Value{Data: bytes.Repeat([]byte("v"), 11<<20)})
	enc, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]vclock.Set{}
	for i := range 3 {
		sets[fmt.Sprintf("big%d", i)] = s
	}
	body := fileOf(t, sets)
	if len(body) < 32<<20 || len(enc) < 11<<20 {
		t.Fatalf("body of %d bytes: not over the cap", len(body))
	}
	r := httpDo(t, "POST", c.URL(0)+"/admin/backup/merge", string(body), nil)
	if r.status != 400 || !strings.Contains(r.body, "too large") {
		t.Fatalf("merge of %d bytes: %d %s, want 400 naming the size", len(body), r.status, r.body)
	}
	if r := httpDo(t, "GET", c.URL(0)+"/kv/big0?local=true", "", nil); r.status != 404 {
		t.Errorf("GET big0 after the refused merge: %d, want 404 (nothing merged)", r.status)
	}
}

func backupOf(t *testing.T, addr string) map[string]vclock.Set {
	t.Helper()
	c, err := qkvclient.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := backup.Backup(t.Context(), qkvclient.NewBackupSource(c), &buf, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	out := map[string]vclock.Set{}
	err = backup.ForEach(&buf, func(r backup.Record) error {
		s, err := vclock.DecodeSet(r.Set)
		out[string(r.Key)] = s
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileOf(t *testing.T, sets map[string]vclock.Set) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range sets {
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(backup.Record{Key: []byte(k), Set: enc}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func restore(t *testing.T, addr string, file []byte) {
	t.Helper()
	c, err := qkvclient.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(t.Context(), bytes.NewReader(file), qkvclient.NewBackupSink(c), backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
}
