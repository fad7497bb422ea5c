package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quorumkv/quorumkv/internal/wire"
)

func TestWriteStreamPages(t *testing.T) {
	recs := testRecords(t, 30)
	var buf bytes.Buffer
	pages := [][]Record{recs[10:20], recs[20:]}
	err := WriteStream(&buf, Meta{Source: "n1"}, recs[:10], true, func() ([]Record, bool, error) {
		p := pages[0]
		pages = pages[1:]
		return p, len(pages) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(buf.Bytes())
	if err != nil || len(got) != 30 {
		t.Fatalf("read %d records, %v", len(got), err)
	}
	// A page that fails leaves the stream without its end chunk.
	buf.Reset()
	boom := errors.New("store closed")
	if err := WriteStream(&buf, Meta{}, recs[:3], true, func() ([]Record, bool, error) { return nil, false, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the page's", err)
	}
	if _, err := readAll(buf.Bytes()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("a cut stream reads as %v, want ErrTruncated", err)
	}
}

func TestReadBatchChecks(t *testing.T) {
	good := writeFile(t, testRecords(t, 5))
	recs, err := ReadBatch(bytes.NewReader(good), 100)
	if err != nil || len(recs) != 5 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if _, err := ReadBatch(bytes.NewReader(good), 5); err == nil || !strings.Contains(err.Error(), "--max-key-size") {
		t.Errorf("long key: %v", err)
	}
	bad := writeFile(t, []Record{{Key: []byte("k"), Set: []byte{0xc1}}})
	if _, err := ReadBatch(bytes.NewReader(bad), 100); err == nil || !strings.Contains(err.Error(), "does not decode") {
		t.Errorf("bad set: %v", err)
	}
}

// TestReplicate: each target gets its records of the batch in one call
// (five "c" targets: c0 to c4 by key), a failed call fails only its
// records' merges on that target, and a key with a replica short fails.
func TestReplicate(t *testing.T) {
	recs := testRecords(t, 50)
	var (
		mu    sync.Mutex
		got   = map[string]int{}
		calls = map[string]int{}
	)
	targets := func(key []byte) []string {
		i, _ := strconv.Atoi(strings.TrimPrefix(string(key), "key-"))
		if i == 7 {
			return []string{"a", "b"} // a replica short
		}
		return []string{"a", "b", fmt.Sprint("c", i%5)}
	}
	tf := targets // the targets of the Replicate under way
	merge := func(_ context.Context, t string, batch []Record) error {
		mu.Lock()
		defer mu.Unlock()
		calls[t]++
		for _, r := range batch {
			if !slices.Contains(tf(r.Key), t) {
				return fmt.Errorf("%s got key %s, not one of its records", t, r.Key)
			}
		}
		if t == "c3" {
			return errors.New("c3 is down")
		}
		got[t] += len(batch)
		return nil
	}
	landed, err := Replicate(t.Context(), recs, 3, 4, targets, merge)
	if err == nil || !strings.Contains(err.Error(), "c3 is down") {
		t.Fatalf("error %v, want c3's failure", err)
	}
	// c0..c4 hold 10 keys each but c2 (key-000007 has no third replica);
	// c3's 10 failed.
	if landed != 50+50+39 || got["a"] != 50 || got["b"] != 50 || got["c0"] != 10 || got["c2"] != 9 || got["c3"] != 0 {
		t.Errorf("landed %d, per target %v", landed, got)
	}
	for tg, n := range calls {
		if n != 1 {
			t.Errorf("%d calls to %s, want its records in one", n, tg)
		}
	}
	tf = func([]byte) []string { return []string{"a", "b", "c"} }
	landed, err = Replicate(t.Context(), recs[:2], 3, 4, tf, merge)
	if err != nil || landed != 6 {
		t.Errorf("all landing: %d, %v", landed, err)
	}
	tf = targets
	landed, err = Replicate(t.Context(), recs[7:8], 3, 4, tf, merge)
	if err == nil || !strings.Contains(err.Error(), "only 2 live members for its 3 replicas") || landed != 2 {
		t.Errorf("a key with a replica short: %d, %v", landed, err)
	}
	// A target's call holds at most wire.MaxBatch records.
	clear(calls)
	many := testRecords(t, wire.MaxBatch+10)
	tf = func([]byte) []string { return []string{"d"} }
	landed, err = Replicate(t.Context(), many, 1, 4, tf, merge)
	if err != nil || landed != len(many) || calls["d"] != 2 {
		t.Errorf("%d records to one target: landed %d in %d calls, %v", len(many), landed, calls["d"], err)
	}
}
