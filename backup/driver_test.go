package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

// memSource is a cluster in memory: each node's records per partition and
// its hints. A key's partition is given by part.
type memSource struct {
	lay   Layout
	recs  map[string]map[uint32]map[string][]byte
	hints map[string]map[string][]byte
	down  map[string]bool
	// flaky[node] calls of node fail before it answers.
	flaky map[string]int
	mu    sync.Mutex
}

func (s *memSource) flake(node string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flaky[node] > 0 {
		s.flaky[node]--
		return errors.New("timeout")
	}
	return nil
}

func newMemSource(q int, nodes ...string) *memSource {
	s := &memSource{lay: Layout{Partitions: q, N: 3, Nodes: nodes}, recs: map[string]map[uint32]map[string][]byte{},
		hints: map[string]map[string][]byte{}, down: map[string]bool{}, flaky: map[string]int{}}
	for p := range q {
		s.lay.Primaries = append(s.lay.Primaries, []string{nodes[p%len(nodes)], nodes[(p+1)%len(nodes)], nodes[(p+2)%len(nodes)]})
	}
	return s
}

func part(key string, q int) uint32 { return uint32(len(key) % q) }

func (s *memSource) put(node, key string, set []byte) {
	if s.recs[node] == nil {
		s.recs[node] = map[uint32]map[string][]byte{}
	}
	p := part(key, s.lay.Partitions)
	if s.recs[node][p] == nil {
		s.recs[node][p] = map[string][]byte{}
	}
	s.recs[node][p][key] = set
}

func (s *memSource) Layout(context.Context) (Layout, error) { return s.lay, nil }

func (s *memSource) Records(_ context.Context, node string, p uint32, fn func(Record) error) error {
	if s.down[node] {
		return fmt.Errorf("connection refused")
	}
	if err := s.flake(node); err != nil {
		return err
	}
	for k, v := range s.recs[node][p] {
		if err := fn(Record{Key: []byte(k), Set: v}); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) Hints(_ context.Context, node string, fn func(Record) error) error {
	if s.down[node] {
		return fmt.Errorf("connection refused")
	}
	for k, v := range s.hints[node] {
		if err := fn(Record{Key: []byte(k), Set: v}); err != nil {
			return err
		}
	}
	return nil
}

// memSink is a target cluster reduced to one merged copy per key.
type memSink struct {
	mu    sync.Mutex
	sets  map[string]vclock.Set
	fails int // the next fails calls fail
	calls int
}

func (s *memSink) Merge(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fails > 0 {
		s.fails--
		return errors.New("replica down")
	}
	for _, r := range recs {
		set, err := vclock.DecodeSet(r.Set)
		if err != nil {
			return err
		}
		s.sets[string(r.Key)] = vclock.Sync(s.sets[string(r.Key)], set)
	}
	return nil
}

func values(s vclock.Set) []string {
	var out []string
	for _, sb := range s.Siblings {
		v := string(sb.Value.Data)
		if sb.Value.Deleted {
			v += "(deleted)"
		}
		out = append(out, v)
	}
	return out
}

func dec(t *testing.T, b []byte) vclock.Set {
	t.Helper()
	s, err := vclock.DecodeSet(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runBackup(t *testing.T, src Source, opt Options) ([]byte, Result, error) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Backup(t.Context(), src, &buf, opt)
	return buf.Bytes(), res, err
}

// Concurrent writes held by different replicas, a tombstone and hints all
// end up in the file, merged per key.
func TestBackupMergesReplicasAndHints(t *testing.T) {
	src := newMemSource(4, "a", "b", "c")
	sa := encSet(t, "a", false, "from-a")
	sb := encSet(t, "b", false, "from-b")
	src.put("a", "k1", sa)
	src.put("b", "k1", sb) // concurrent with a's: two siblings
	src.put("c", "k1", sa)
	tomb := encSet(t, "a", true, "x", "gone")
	src.put("a", "k22", tomb)
	src.put("b", "k22", tomb)
	src.hints["c"] = map[string][]byte{
		"k1":    encSet(t, "c", false, "hinted"),    // merged into k1
		"k4444": encSet(t, "c", false, "only-hint"), // no record anywhere
	}
	var progress []Progress
	file, res, err := runBackup(t, src, Options{Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(file)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range recs {
		if _, dup := got[string(r.Key)]; dup {
			t.Errorf("key %s written twice", r.Key)
		}
		got[string(r.Key)] = values(dec(t, r.Set))
	}
	want := map[string][]string{
		"k1":    {"from-a", "from-b", "hinted"},
		"k22":   {"x", "gone(deleted)"},
		"k4444": {"only-hint"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("backup holds %v, want %v", got, want)
	}
	if res.Keys != 3 || res.Hints != 2 || len(progress) != 4 || progress[3].PartitionsDone != 4 {
		t.Errorf("result %+v, progress %+v", res, progress)
	}
}

// A primary that does not answer fails the backup unless fewer primaries
// are asked for; the result then names it.
func TestBackupWithAPrimaryDown(t *testing.T) {
	src := newMemSource(2, "a", "b", "c")
	src.put("a", "k1", encSet(t, "a", false, "v"))
	src.down["c"] = true
	_, _, err := runBackup(t, src, Options{})
	if !errors.Is(err, ErrTooFewPrimaries) || !strings.Contains(err.Error(), "2 of [") {
		t.Fatalf("err = %v, want a refusal naming the primaries that answered", err)
	}
	file, res, err := runBackup(t, src, Options{MinPrimaries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unreachable["c"] == "" || res.Keys != 1 {
		t.Errorf("result %+v", res)
	}
	if recs, err := readAll(file); err != nil || len(recs) != 1 {
		t.Errorf("file: %d records, %v", len(recs), err)
	}
}

// A member that fails a read or two is asked again, not taken for down.
func TestBackupRetriesAFlakyMember(t *testing.T) {
	src := newMemSource(3, "a", "b", "c")
	src.put("c", "k", encSet(t, "c", false, "v"))
	src.flaky["c"] = 2
	file, res, err := runBackup(t, src, Options{})
	if err != nil || len(res.Unreachable) != 0 {
		t.Fatalf("backup: %+v, %v", res, err)
	}
	if recs, err := readAll(file); err != nil || len(recs) != 1 {
		t.Fatalf("file: %d records, %v", len(recs), err)
	}
}

func TestBackupStopsOnACorruptSet(t *testing.T) {
	src := newMemSource(1, "a", "b", "c")
	src.put("a", "k", []byte{0xff, 0x00})
	_, _, err := runBackup(t, src, Options{})
	var ce *CorruptSetError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CorruptSetError", err)
	}
}

// Restoring merges: newer data in the target stays, siblings are kept,
// and a second restore changes nothing.
func TestRestoreMerges(t *testing.T) {
	old := encSet(t, "a", false, "old")
	recs := []Record{{Key: []byte("k"), Set: old}, {Key: []byte("s"), Set: encSet(t, "a", false, "s1", "s2")}}
	file := writeFile(t, recs)

	// The target already superseded k's old value.
	oldSet := dec(t, old)
	newer, _ := vclock.Update(oldSet, oldSet.Context, vclock.Actor{Node: "z", Epoch: 1}, vclock.Value{Data: []byte("new")})
	sink := &memSink{sets: map[string]vclock.Set{"k": newer}}
	var progress []Progress // called under Restore's lock
	res, err := Restore(t.Context(), bytes.NewReader(file), sink, RestoreOptions{BatchRecords: 1,
		Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil || res.Records != 2 {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	if len(progress) != 2 || progress[1].Records != 2 || progress[1].Bytes == 0 {
		t.Errorf("progress %+v", progress)
	}
	if got := values(sink.sets["k"]); fmt.Sprint(got) != "[new]" {
		t.Errorf("k = %v, want the newer [new]", got)
	}
	if got := values(sink.sets["s"]); fmt.Sprint(got) != "[s1 s2]" {
		t.Errorf("s = %v, want both siblings", got)
	}
	before := fmt.Sprint(sink.sets)
	if _, err := Restore(t.Context(), bytes.NewReader(file), sink, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(sink.sets); after != before {
		t.Errorf("second restore changed the target:\n%s\n%s", before, after)
	}
}

// A bad chunk stops the restore with an error; the records of the chunks
// before it are merged.
func TestRestoreKeepsWhatCameBeforeABadChunk(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Meta{})
	recs := testRecords(t, 3)
	for _, r := range recs {
		_ = w.Add(r)
		_ = w.Flush()
	}
	_ = w.Close()
	file := buf.Bytes()
	file[len(file)-30] ^= 1
	sink := &memSink{sets: map[string]vclock.Set{}}
	res, err := Restore(t.Context(), bytes.NewReader(file), sink, RestoreOptions{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if res.Records != 2 || len(sink.sets) != 2 {
		t.Fatalf("merged %d records (%d keys), want the 2 before the bad chunk", res.Records, len(sink.sets))
	}
	// Truncated: same.
	sink = &memSink{sets: map[string]vclock.Set{}}
	good := buf.Bytes()
	good[len(good)-30] ^= 1
	_, err = Restore(t.Context(), bytes.NewReader(good[:len(good)-5]), sink, RestoreOptions{})
	if !errors.Is(err, ErrTruncated) || len(sink.sets) != 3 {
		t.Fatalf("truncated: err = %v, %d keys merged (want 3)", err, len(sink.sets))
	}
}

func TestRestoreRetriesThenFails(t *testing.T) {
	file := writeFile(t, testRecords(t, 5))
	sink := &memSink{sets: map[string]vclock.Set{}, fails: 1}
	if _, err := Restore(t.Context(), bytes.NewReader(file), sink, RestoreOptions{Retry: 1}); err != nil {
		t.Fatalf("one failure then success: %v", err)
	}
	sink = &memSink{sets: map[string]vclock.Set{}, fails: 100}
	res, err := Restore(t.Context(), bytes.NewReader(file), sink, RestoreOptions{Retry: 1, Attempts: 2})
	if err == nil || res.Records != 0 || sink.calls != 2 {
		t.Fatalf("always failing: %+v, %v, %d calls", res, err, sink.calls)
	}
}

func TestRestoreDryRunChecksTheFile(t *testing.T) {
	file := writeFile(t, testRecords(t, 7))
	res, err := Restore(t.Context(), bytes.NewReader(file), nil, RestoreOptions{})
	if err != nil || res.Records != 7 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
}
