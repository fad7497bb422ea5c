package listing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{Start, 1, 1 << 63, ^Cursor(0)} {
		got, err := ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCursor(%q) = %d, %v", c.String(), got, err)
		}
	}
	if c, err := ParseCursor(""); err != nil || c != Start {
		t.Errorf(`ParseCursor("") = %d, %v`, c, err)
	}
	for _, bad := range []string{"-1", "x", "18446744073709551616", "1e3", " 1", "999999999999999999999999"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

var actorA, actorB = vclock.Actor{Node: "a", Epoch: 1}, vclock.Actor{Node: "b", Epoch: 1}

func put(s vclock.Set, a vclock.Actor, data string) vclock.Set {
	out, _ := vclock.Update(s, s.Context, a, vclock.Value{Data: []byte(data)})
	return out
}

func del(s vclock.Set, a vclock.Actor) vclock.Set {
	out, _ := vclock.Update(s, s.Context, a, vclock.Value{Deleted: true})
	return out
}

func TestMerge(t *testing.T) {
	v1 := put(vclock.Set{}, actorA, "v1")
	gone := del(v1, actorB)          // deleted after v1: supersedes it
	again := put(gone, actorA, "v2") // written after the delete
	tests := []struct {
		name  string
		pages []Page
		keys  []string
		next  string
		done  bool
	}{
		{"stale value loses to tombstone",
			[]Page{{Entries: []Entry{{1, []byte("k"), v1}}, Done: true}, {Entries: []Entry{{1, []byte("k"), gone}}, Done: true}},
			nil, "", true},
		{"write after delete is live",
			[]Page{{Entries: []Entry{{1, []byte("k"), again}}, Done: true}, {Entries: []Entry{{1, []byte("k"), gone}}, Done: true}},
			[]string{"k"}, "", true},
		{"key on one replica only is listed",
			[]Page{{Entries: []Entry{{9, []byte("a"), v1}, {2, []byte("b"), v1}}, Done: true}, {Entries: []Entry{{2, []byte("b"), v1}}, Done: true}},
			[]string{"a", "b"}, "", true},
		{"smallest unfinished next key bounds the merge",
			[]Page{{Entries: []Entry{{1, []byte("a"), v1}, {5, []byte("e"), v1}}, NextKey: []byte("f"), NextHash: 6}, {Entries: []Entry{{1, []byte("a"), v1}, {3, []byte("c"), v1}}, NextKey: []byte("d"), NextHash: 40}},
			[]string{"a", "c"}, "d", false},
		{"a finished page does not bound",
			[]Page{{Entries: []Entry{{1, []byte("a"), v1}}, Done: true}, {Entries: []Entry{{1, []byte("a"), v1}, {3, []byte("c"), v1}}, NextKey: []byte("d"), NextHash: 9}},
			[]string{"a", "c"}, "d", false},
		{"byte order, whatever the hashes",
			[]Page{{Entries: []Entry{{1, []byte("b"), v1}, {7, []byte("a"), v1}, {3, []byte("ab"), v1}}, Done: true}},
			[]string{"a", "ab", "b"}, "", true},
		{"tombstone alone is not listed",
			[]Page{{Entries: []Entry{{1, []byte("a"), gone}}, Done: true}},
			nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Merge(tc.pages, 0)
			var keys []string
			for _, k := range m.Keys {
				keys = append(keys, string(k))
			}
			if !slices.Equal(keys, tc.keys) || string(m.NextKey) != tc.next || m.Done != tc.done {
				t.Fatalf("Merge = %q next %q done %v, want %q next %q done %v", keys, m.NextKey, m.Done, tc.keys, tc.next, tc.done)
			}
		})
	}
	// NextHash goes with NextKey.
	m := Merge(tests[3].pages, 0)
	if m.NextHash != 40 {
		t.Fatalf("NextHash %d, want 40 (the hash of next key d)", m.NextHash)
	}
}

// build runs a Builder over records sorted by key, from key from, as a
// replica does.
func build(recs []Entry, from []byte, b Builder) Page {
	var pg Page
	for _, r := range recs {
		if bytes.Compare(r.Key, from) < 0 {
			continue
		}
		if b.Offer(r.Hash, r.Key) {
			break
		}
		pg.Entries = append(pg.Entries, r)
		b.Add(len(r.Key))
	}
	pg.NextKey, pg.NextHash, pg.Done = b.End()
	pg.Scanned = b.Scanned()
	return pg
}

func TestBuilder(t *testing.T) {
	v := put(vclock.Set{}, actorA, "x")
	recs := []Entry{{5, []byte("a1"), v}, {2, []byte("a4"), v}, {9, []byte("b2"), v}, {0, []byte("b3"), v}, {4, []byte("c5"), v}}
	tests := []struct {
		name string
		from string
		b    Builder
		keys []string
		next string
		done bool
	}{
		{"limit", "", Builder{Limit: 1, Scan: 10, Keep: 100}, []string{"a1"}, "a4", false},
		{"to the end", "", Builder{Limit: 10, Scan: 10, Keep: 100}, []string{"a1", "a4", "b2", "b3", "c5"}, "", true},
		{"from", "b", Builder{Limit: 10, Scan: 10, Keep: 100}, []string{"b2", "b3", "c5"}, "", true},
		{"prefix ends the walk", "b", Builder{Prefix: []byte("b"), Limit: 10, Scan: 10, Keep: 100}, []string{"b2", "b3"}, "", true},
		{"scan budget", "", Builder{Limit: 10, Scan: 2, Keep: 100}, []string{"a1", "a4"}, "b2", false},
		{"bytes", "", Builder{Limit: 10, Scan: 10, Bytes: 2, Keep: 100}, []string{"a1"}, "a4", false},
		// b3's hash is the partition's start: a cursor of that value
		// would mean the start, so the page does not end before it.
		{"never ends before the start hash", "b", Builder{Limit: 1, Scan: 10, Keep: 0}, []string{"b2", "b3"}, "c5", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pg := build(recs, seekKey([]byte(tc.from), tc.b.Prefix), tc.b)
			var keys []string
			for _, e := range pg.Entries {
				keys = append(keys, string(e.Key))
			}
			if !slices.Equal(keys, tc.keys) || string(pg.NextKey) != tc.next || pg.Done != tc.done {
				t.Fatalf("page %q next %q done %v, want %q next %q done %v", keys, pg.NextKey, pg.Done, tc.keys, tc.next, tc.done)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	s := put(vclock.Set{}, actorA, "secret")
	got := Strip(s)
	if got.Siblings[0].Value.Data != nil || string(s.Siblings[0].Value.Data) != "secret" || !Live(got, 0) {
		t.Fatalf("Strip = %+v (original %+v)", got, s)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
		{"h[ae]llo", "hello", true}, {"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false}, {"h[a-b]llo", "hbllo", true}, {"h[a-b]llo", "hcllo", false},
		{`a\*`, "a*", true}, {`a\*`, "ab", false}, {`a\`, `a\`, true},
		{"[", "[", false}, {"[abc", "a", true}, {"user:*", "user:1", true}, {"user:*", "usr:1", false},
		{"**a", "bba", true}, {"", "", true}, {"", "a", false},
	}
	for _, tc := range tests {
		if got := Match([]byte(tc.pat), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
	// No blow-up on a pathological pattern.
	if Match(bytes.Repeat([]byte("*a"), 1000), bytes.Repeat([]byte("a"), 999)) {
		t.Error("pathological pattern matched")
	}
}

// TestSplitPatternProperty: matching the wildcard part after the literal
// prefix is matching the whole pattern.
func TestSplitPatternProperty(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	alpha := []byte("ab*?[]^-\\")
	gen := func(n int, from []byte) []byte {
		b := make([]byte, rnd.IntN(n))
		for i := range b {
			b[i] = from[rnd.IntN(len(from))]
		}
		return b
	}
	for range 200000 {
		p, k := gen(8, alpha), gen(8, []byte("ab*?[]\\"))
		prefix, wild := SplitPattern(p)
		split := bytes.HasPrefix(k, prefix) && Match(wild, k[len(prefix):])
		if whole := Match(p, k); whole != split {
			t.Fatalf("pattern %q key %q: whole %v, split (%q, %q) %v", p, k, whole, prefix, wild, split)
		}
	}
}

func TestLiteralPrefix(t *testing.T) {
	for pat, want := range map[string]string{"user:*": "user:", "abc": "abc", "*": "", `a\*b*`: "a*b", "a?": "a", "a[bc]": "a"} {
		if got := string(LiteralPrefix([]byte(pat))); got != want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", pat, got, want)
		}
	}
}

// memReplicas is a Source over in-memory replicas: node -> key -> set.
type memReplicas struct {
	rg   *ring.Ring
	mu   sync.Mutex
	data map[ring.NodeID]map[string]vclock.Set
	down map[ring.NodeID]bool
	// calls counts List calls per node.
	calls map[ring.NodeID]int
}

func newMem(rg *ring.Ring) *memReplicas {
	m := &memReplicas{rg: rg, data: map[ring.NodeID]map[string]vclock.Set{}, down: map[ring.NodeID]bool{}, calls: map[ring.NodeID]int{}}
	for _, id := range rg.Members() {
		m.data[id] = map[string]vclock.Set{}
	}
	return m
}

// List answers as ReplicaPage does: it places a page asked from a cursor
// on the smallest key of that hash it holds (or the partition's start),
// then walks its keys in byte order from there (or from the prefix).
func (m *memReplicas) List(_ context.Context, id ring.NodeID, req Request) (Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[id]++
	if m.down[id] {
		return Page{}, errors.New("down")
	}
	var recs []Entry
	for k, s := range m.data[id] {
		key := m.rg.KeyOf([]byte(k))
		if key.Partition == req.Partition {
			recs = append(recs, Entry{key.Hash, []byte(k), s})
		}
	}
	slices.SortFunc(recs, compareEntries)
	start, ok := req.FromKey, true
	if !req.HasKey && req.From != m.rg.PartitionStart(req.Partition) {
		ok = false
		for _, r := range recs {
			if r.Hash == req.From {
				start, ok = r.Key, true
				break
			}
		}
	}
	if !ok {
		return Page{}, nil
	}
	pg := build(recs, seekKey(start, req.Prefix), Builder{Prefix: req.Prefix, Limit: req.Limit, Scan: req.Scan, Keep: m.rg.PartitionStart(req.Partition)})
	pg.Start, pg.Resolved = start, true
	return pg, nil
}

func newTestRing(t *testing.T, nodes int) *ring.Ring {
	t.Helper()
	var ms []ring.Member
	for i := range nodes {
		ms = append(ms, ring.Member{ID: ring.NodeID(fmt.Sprintf("n%d", i))})
	}
	cfg := ring.DefaultConfig()
	cfg.Partitions = 16
	rg, err := ring.New(cfg, ms)
	if err != nil {
		t.Fatal(err)
	}
	return rg
}

// TestScanQuorumUnion: a key written to W of N primaries (any W of them) is
// listed, and a key deleted at W of N is not, although the other replicas
// still hold its live value (Dynamo §4.5: R+W>N overlap, here N-W+1).
func TestScanQuorumUnion(t *testing.T) {
	const n, w = 3, 2
	rg := newTestRing(t, 5)
	src := newMem(rg)
	rnd := rand.New(rand.NewPCG(1, 2))
	live := map[string]bool{}
	for i := range 2000 {
		k := fmt.Sprintf("key%05d", i)
		owners := rg.Primaries(rg.PartitionOf([]byte(k)), n)
		v := put(vclock.Set{}, actorA, "v")
		for _, id := range owners {
			src.data[id][k] = v // written everywhere
		}
		if i%3 == 0 {
			// deleted at W random primaries; the others keep the value
			d := del(v, actorB)
			for _, j := range rnd.Perm(n)[:w] {
				src.data[owners[j]][k] = d
			}
			continue
		}
		if i%3 == 1 {
			// written again at W only... and at the rest never: still live
			for _, j := range rnd.Perm(n)[w:] {
				delete(src.data[owners[j]], k)
			}
		}
		live[k] = true
	}
	for _, limit := range []int{1, 7, 100, 5000} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			got := scanAll(t, src, rg, Query{Limit: limit, N: n, W: w, MaxPartitions: 4, ScanFactor: 4})
			checkKeys(t, got, live)
		})
	}
}

func scanAll(t *testing.T, src Source, rg *ring.Ring, q Query) []string {
	t.Helper()
	var got []string
	eachPage(t, src, rg, q, 100000, func(_ int, from Cursor, res Result) {
		if len(res.Keys) > q.Limit+q.Limit/2+1 {
			t.Fatalf("page of %d keys for limit %d", len(res.Keys), q.Limit)
		}
		for _, k := range res.Keys {
			got = append(got, string(k))
		}
		if !res.Done && rg.PartitionOfHash(uint64(res.Next)) < rg.PartitionOfHash(uint64(from)) {
			t.Fatalf("cursor went back from %d to %d", from, res.Next)
		}
	})
	return got
}

// eachPage runs the scan q page by page, calling page with each page's
// number, cursor and result, until a page is Done; past maxPages pages it
// fails the test.
func eachPage(t *testing.T, src Source, rg *ring.Ring, q Query, maxPages int, page func(i int, from Cursor, res Result)) {
	t.Helper()
	for i := 0; ; i++ {
		if i > maxPages {
			t.Fatal("scan does not end")
		}
		res, err := Scan(t.Context(), src, rg, q)
		if err != nil {
			t.Fatal(err)
		}
		page(i, q.From, res)
		if res.Done {
			return
		}
		q.From = res.Next
	}
}

func checkKeys(t *testing.T, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Errorf("key %q listed twice", k)
		}
		seen[k] = true
		if !want[k] {
			t.Errorf("key %q listed, but deleted or never written", k)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("live key %q not listed", k)
		}
	}
}

func TestScanPrefixMatchAndDownReplica(t *testing.T) {
	const n, w = 3, 2
	rg := newTestRing(t, 4)
	src := newMem(rg)
	want := map[string]bool{}
	for i := range 500 {
		k := fmt.Sprintf("%s:%d", []string{"user", "order"}[i%2], i)
		for _, id := range rg.Primaries(rg.PartitionOf([]byte(k)), n) {
			src.data[id][k] = put(vclock.Set{}, actorA, "v")
		}
		if i%2 == 0 && i%5 == 0 {
			want[k] = true
		}
	}
	// One node down: its partitions are read from the next primary.
	src.down[rg.Members()[0]] = true
	got := scanAll(t, src, rg, Query{Prefix: []byte("user:"), Match: func(k []byte) bool { return Match([]byte("user:*0"), k) }, Limit: 10, N: n, W: w, MaxPartitions: 16, ScanFactor: 2})
	checkKeys(t, got, want)
	// Two down: partitions they both own cannot be read from N-W+1=2.
	src.down[rg.Members()[1]] = true
	var qe *quorum.QuorumError
	_, err := scanAllErr(src, rg, Query{Limit: 1000, N: n, W: w, MaxPartitions: 16})
	if !errors.As(err, &qe) || qe.Op != "scan" {
		t.Fatalf("scan with two of three replicas down: %v, want a scan QuorumError", err)
	}
}

func scanAllErr(src Source, rg *ring.Ring, q Query) (int, error) {
	keys := 0
	for {
		res, err := Scan(context.Background(), src, rg, q)
		if err != nil {
			return keys, err
		}
		keys += len(res.Keys)
		if res.Done {
			return keys, nil
		}
		q.From = res.Next
	}
}

// TestScanCost: an empty ring costs one page read per partition, a full
// one about keys/limit per replica asked.
func TestScanCost(t *testing.T) {
	rg := newTestRing(t, 3)
	src := newMem(rg)
	res, err := Scan(t.Context(), src, rg, Query{Limit: 10, N: 3, W: 3, MaxPartitions: 1000})
	if err != nil || !res.Done || res.Partitions != rg.Partitions() {
		t.Fatalf("empty scan: %+v, %v; want done after %d partitions", res, err, rg.Partitions())
	}
	total := 0
	for _, c := range src.calls {
		total += c
	}
	if total != rg.Partitions() {
		t.Fatalf("empty scan made %d calls, want %d (one replica per partition at W=N)", total, rg.Partitions())
	}
	// A prefix nothing matches: each replica seeks to it and reads
	// nothing, so the page visits its MaxPartitions partitions and ends
	// with a cursor.
	for i := range 2000 {
		k := fmt.Sprintf("k%d", i)
		for _, id := range rg.Primaries(rg.PartitionOf([]byte(k)), 3) {
			src.data[id][k] = put(vclock.Set{}, actorA, "v")
		}
	}
	res, err = Scan(t.Context(), src, rg, Query{Prefix: []byte("zzz"), Limit: 10, N: 3, W: 3, MaxPartitions: 4, ScanFactor: 5})
	if err != nil || res.Done || len(res.Keys) != 0 || res.Next != Cursor(rg.PartitionStart(4)) || res.Partitions != 4 {
		t.Fatalf("selective prefix: %+v, %v; want an empty page of 4 partitions, with the cursor of the fifth", res, err)
	}
	if _, err := Scan(t.Context(), src, rg, Query{Limit: 0, N: 3, W: 2, MaxPartitions: 1}); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("limit 0: %v", err)
	}
}

// fill writes keys to all n primaries of their partitions.
func fill(src *memReplicas, n int, keys []string) {
	for _, k := range keys {
		for _, id := range src.rg.Primaries(src.rg.PartitionOf([]byte(k)), n) {
			src.data[id][k] = put(vclock.Set{}, actorA, "v")
		}
	}
}

// checkByteOrder: partitions come in ring order and, within each, keys in
// strictly increasing byte order.
func checkByteOrder(t *testing.T, rg *ring.Ring, got []string) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		pa, pb := rg.PartitionOf([]byte(got[i-1])), rg.PartitionOf([]byte(got[i]))
		if pb < pa || (pb == pa && got[i] <= got[i-1]) {
			t.Fatalf("%q (partition %d) listed after %q (partition %d)", got[i], pb, got[i-1], pa)
		}
	}
}

// TestScanByteOrder: whatever the page size, a scan lists every key once,
// in byte order within each partition and partitions in ring order; with
// a prefix, it lists exactly the keys with it, in the same order, and the
// replicas read only those (they seek to the prefix).
func TestScanByteOrder(t *testing.T) {
	rg := newTestRing(t, 3)
	src := newMem(rg)
	var keys []string
	want, users := map[string]bool{}, map[string]bool{}
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range 1500 {
		k := fmt.Sprintf("%s%d", []string{"user:", "order:", "u", "user:x/", ""}[i%5], rnd.IntN(1_000_000))
		if k == "" || want[k] {
			continue
		}
		keys = append(keys, k)
		want[k] = true
		if bytes.HasPrefix([]byte(k), []byte("user:")) {
			users[k] = true
		}
	}
	fill(src, 3, keys)
	for _, limit := range []int{1, 3, 50, 5000} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			got := scanAll(t, src, rg, Query{Limit: limit, N: 3, W: 2, MaxPartitions: 5, ScanFactor: 4})
			checkKeys(t, got, want)
			checkByteOrder(t, rg, got)
			clear(src.calls)
			got = scanAll(t, src, rg, Query{Prefix: []byte("user:"), Limit: limit, N: 3, W: 2, MaxPartitions: 5, ScanFactor: 4})
			checkKeys(t, got, users)
			checkByteOrder(t, rg, got)
		})
	}
	// Records read for a prefix: only the matching ones (plus nothing
	// for the empty partitions).
	var read int
	q := Query{Prefix: []byte("user:"), Limit: 5000, N: 3, W: 3, MaxPartitions: 1000, ScanFactor: 1}
	res, err := Scan(t.Context(), readCounter{src, &read}, rg, q)
	if err != nil || !res.Done || len(res.Keys) != len(users) {
		t.Fatalf("prefix scan in one page: %d keys, done %v, %v; want %d", len(res.Keys), res.Done, err, len(users))
	}
	if read != len(users) {
		t.Fatalf("the replica read %d records for %d keys with the prefix", read, len(users))
	}
}

// readCounter counts the records its Source's pages read.
type readCounter struct {
	src  Source
	read *int
}

func (r readCounter) List(ctx context.Context, id ring.NodeID, req Request) (Page, error) {
	pg, err := r.src.List(ctx, id, req)
	*r.read += pg.Scanned
	return pg, err
}

// TestScanCursorKeyGone: the key a cursor names (the hash of the first
// key not yet listed) is, between pages, deleted and reaped everywhere,
// or lost by one of the replicas asked: the scan goes on and lists every
// key that lived throughout, in order within each page (a key may be
// listed again, as SCAN allows; none is skipped).
func TestScanCursorKeyGone(t *testing.T) {
	for _, mode := range []string{"reaped everywhere", "missing on the first replica"} {
		t.Run(mode, func(t *testing.T) {
			rg := newTestRing(t, 3)
			src := newMem(rg)
			var keys []string
			for i := range 600 {
				keys = append(keys, fmt.Sprintf("k%04d", i))
			}
			fill(src, 3, keys)
			keyOf := map[uint64]string{}
			for _, k := range keys {
				keyOf[rg.KeyOf([]byte(k)).Hash] = k
			}
			removed := map[string]bool{}
			seen := map[string]bool{}
			q := Query{Limit: 7, N: 3, W: 2, MaxPartitions: 3, ScanFactor: 4}
			eachPage(t, src, rg, q, 10000, func(pages int, _ Cursor, res Result) {
				var page []string
				for _, k := range res.Keys {
					page = append(page, string(k))
					seen[string(k)] = true
				}
				checkByteOrder(t, rg, page)
				if res.Done {
					return
				}
				k, ok := keyOf[uint64(res.Next)]
				if !ok || pages%2 == 1 {
					return // a partition's start, or leave this one alone
				}
				owners := rg.Primaries(rg.PartitionOf([]byte(k)), 3)
				if mode == "reaped everywhere" {
					for _, id := range owners {
						delete(src.data[id], k)
					}
					removed[k] = true
				} else {
					delete(src.data[owners[0]], k)
				}
			})
			for _, k := range keys {
				if !removed[k] && !seen[k] {
					t.Errorf("%s lived throughout the scan and was not listed", k)
				}
			}
			if len(removed) == 0 && mode == "reaped everywhere" {
				t.Fatal("no cursor named a key: the test did not test")
			}
		})
	}
}

// slowSource takes at least d per replica read and records the largest
// Limit asked.
type slowSource struct {
	*memReplicas
	d        time.Duration
	maxLimit atomic.Int64
	reads    atomic.Int64
}

func (s *slowSource) List(ctx context.Context, id ring.NodeID, req Request) (Page, error) {
	s.reads.Add(1)
	if int64(req.Limit) > s.maxLimit.Load() {
		s.maxLimit.Store(int64(req.Limit))
	}
	time.Sleep(s.d)
	return s.memReplicas.List(ctx, id, req)
}

// TestScanPace: reads ask at most ReadEntries keys, and a paced scan rests
// between reads for about as long as they took (d is minRest: it rests
// after every read but the page's last), so a page of k reads of d takes at
// least (2k-1)d; a page whose context has no time left for a rest and a
// read ends early, with a cursor, not an error.
func TestScanPace(t *testing.T) {
	rg := newTestRing(t, 3)
	const d = minRest
	src := &slowSource{memReplicas: newMem(rg), d: d}
	var keys []string
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	fill(src.memReplicas, 3, keys)
	start := time.Now()
	res, err := Scan(t.Context(), src, rg, Query{Limit: 40, N: 3, W: 3, MaxPartitions: 1000, ReadEntries: 2, Pace: 1})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.maxLimit.Load(); got != 2 {
		t.Fatalf("largest read asked %d keys, want 2 (ReadEntries)", got)
	}
	k := time.Duration(res.Partitions)
	if took < (2*k-1)*d {
		t.Fatalf("%d reads of %s took %s in all: no rests between them", k, d, took)
	}
	// The same scan with a deadline of 20d, where the whole page needs at
	// least (2k-1)d (k >= 20 reads): ended early, with a cursor.
	ctx, cancel := context.WithTimeout(t.Context(), 20*d)
	defer cancel()
	res, err = Scan(ctx, src, rg, Query{Limit: 40, N: 3, W: 3, MaxPartitions: 1000, ReadEntries: 2, Pace: 1})
	if err != nil || res.Done || len(res.Keys) >= 40 || res.Partitions < 1 {
		t.Fatalf("paced page with a short deadline: %d keys, %d reads, done %v, %v; want a partial page with a cursor", len(res.Keys), res.Partitions, res.Done, err)
	}
	next, err := Scan(t.Context(), src, rg, Query{From: res.Next, Limit: 40, N: 3, W: 3, MaxPartitions: 1000})
	if err != nil || len(res.Keys)+len(next.Keys) < 40 {
		t.Fatalf("the page after the short one: %d + %d keys, %v; want the rest", len(res.Keys), len(next.Keys), err)
	}
}
