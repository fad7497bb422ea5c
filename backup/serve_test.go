package backup

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
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

func TestReplicate(t *testing.T) {
	recs := testRecords(t, 50)
	var (
		mu  sync.Mutex
		got = map[string]int{}
	)
	targets := func(key []byte) []string {
		if string(key) == "key-000007" {
			return []string{"a", "b"} // a replica short
		}
		return []string{"a", "b", "c"}
	}
	merge := func(_ context.Context, t string, set []byte) error {
		if t == "c" && bytes.Equal(set, recs[3].Set) {
			return errors.New("c is down")
		}
		mu.Lock()
		got[t]++
		mu.Unlock()
		return nil
	}
	landed, err := Replicate(t.Context(), recs, 3, 4, targets, merge)
	if err == nil {
		t.Fatal("no error for a failed merge and a short key")
	}
	if landed != 50*3-2 || got["a"] != 50 || got["b"] != 50 || got["c"] != 48 {
		t.Errorf("landed %d, per target %v", landed, got)
	}
	landed, err = Replicate(t.Context(), recs[:2], 3, 4, func([]byte) []string { return []string{"a", "b", "c"} }, merge)
	if err != nil || landed != 6 {
		t.Errorf("all landing: %d, %v", landed, err)
	}
}
