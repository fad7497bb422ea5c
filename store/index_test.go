package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// scanKeys returns ScanKeys(p, from) as "key=value" strings.
func scanKeys(t *testing.T, s *Store, p uint32, from string) []string {
	t.Helper()
	var out []string
	if err := s.ScanKeys(p, []byte(from), func(k Key, val []byte) error {
		if k.Partition != p {
			t.Fatalf("ScanKeys(%d) returned a key of partition %d", p, k.Partition)
		}
		out = append(out, fmt.Sprintf("%s=%s", k.Key, val))
		return nil
	}); err != nil {
		t.Fatalf("ScanKeys(%d, %q): %v", p, from, err)
	}
	return out
}

// modelScan is what ScanKeys must return over model (partition -> key ->
// value): the keys at or after from in byte order.
func modelScan(model map[uint32]map[string]string, p uint32, from string) []string {
	var keys []string
	for k := range model[p] {
		if k >= from {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []string{}
	for _, k := range keys {
		out = append(out, k+"="+model[p][k])
	}
	return out
}

// TestScanKeysModel: random creates, overwrites and deletes (from
// concurrent writers, so that one group commit holds several writes of a
// key) in two partitions, with hashes unrelated to key order; ScanKeys
// lists exactly the records present, in byte order, from any starting key,
// and survives a reopen.
func TestScanKeysModel(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, testOptions(t, dir))
	rnd := rand.New(rand.NewPCG(1, 2))
	model := map[uint32]map[string]string{1: {}, 2: {}}
	keyOf := func(p uint32, name string) Key {
		return Key{Partition: p, Hash: uint64(len(name)*7919) ^ uint64(name[len(name)-1])<<40, Key: []byte(name)}
	}
	for round := range 20 {
		type w struct {
			p    uint32
			name string
			val  string // "" deletes
		}
		var ws []w
		for range 50 {
			p := uint32(1 + rnd.IntN(2))
			name := fmt.Sprintf("k%03d", rnd.IntN(120))
			if rnd.IntN(3) == 0 {
				name += "/x"
			}
			val := ""
			if rnd.IntN(4) != 0 {
				val = fmt.Sprintf("v%d", round)
			}
			ws = append(ws, w{p, name, val})
		}
		// Each key's writes in order, different keys concurrently.
		byKey := map[string][]w{}
		for _, x := range ws {
			id := fmt.Sprint(x.p, x.name)
			byKey[id] = append(byKey[id], x)
		}
		var wg sync.WaitGroup
		for _, seq := range byKey {
			wg.Go(func() {
				for _, x := range seq {
					fn := setTo(x.val)
					if x.val == "" {
						fn = func([]byte, bool) ([]byte, error) { return nil, nil }
					}
					if _, _, err := s.Update(t.Context(), keyOf(x.p, x.name), false, fn); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for _, x := range ws {
			if x.val == "" {
				delete(model[x.p], x.name)
			} else {
				model[x.p][x.name] = x.val
			}
		}
		// No entry outlives its record (ScanKeys would hide it).
		if got, want := countPrefix(t, s, prefixIndex), len(model[1])+len(model[2]); got != want {
			t.Fatalf("round %d: %d index entries for %d records", round, got, want)
		}
		for _, p := range []uint32{1, 2, 3} {
			for _, from := range []string{"", "k050", "k050/x", "k1", "z"} {
				if got, want := scanKeys(t, s, p, from), modelScan(model, p, from); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Fatalf("round %d: ScanKeys(%d, %q) = %v\nwant %v", round, p, from, got, want)
				}
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, testOptions(t, dir))
	for _, p := range []uint32{1, 2} {
		if got, want := scanKeys(t, s, p, ""), modelScan(model, p, ""); !slices.Equal(got, want) {
			t.Fatalf("after reopen: ScanKeys(%d) = %v, want %v", p, got, want)
		}
	}
}

// countPrefix counts the badger keys starting with prefix.
func countPrefix(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScanKeysStop: an error from fn stops the walk and is returned.
func TestScanKeysStop(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	for _, k := range []string{"c", "a", "b"} {
		mustSet(t, s, Key{Partition: 4, Hash: uint64(k[0]) << 50, Key: []byte(k)}, k)
	}
	stop := fmt.Errorf("stop")
	var seen []string
	err := s.ScanKeys(4, nil, func(k Key, _ []byte) error {
		seen = append(seen, string(k.Key))
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("ScanKeys stopped with %v after %v; want stop after [a b]", err, seen)
	}
}

// TestScanKeysDropPartition: dropping a partition drops its index
// entries, not another partition's; the partition can be written again.
func TestScanKeysDropPartition(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	for p := uint32(5); p <= 6; p++ {
		for i := range 10 {
			name := fmt.Sprintf("key%d", i)
			mustSet(t, s, Key{Partition: p, Hash: uint64(i), Key: []byte(name)}, "v")
		}
	}
	if err := s.DropPartition(5); err != nil {
		t.Fatal(err)
	}
	if got := scanKeys(t, s, 5, ""); len(got) != 0 {
		t.Fatalf("dropped partition lists %v", got)
	}
	if n := countPrefix(t, s, prefixIndex); n != 10 {
		t.Fatalf("%d index entries after the drop, want the other partition's 10", n)
	}
	if got := scanKeys(t, s, 6, ""); len(got) != 10 {
		t.Fatalf("other partition lists %v, want 10 keys", got)
	}
	mustSet(t, s, Key{Partition: 5, Hash: 3, Key: []byte("again")}, "v2")
	if got := scanKeys(t, s, 5, ""); !slices.Equal(got, []string{"again=v2"}) {
		t.Fatalf("after rewriting the dropped partition: %v", got)
	}
}

// TestIndexUpgrade: a directory of format 1 (records without index
// entries, format meta 1), written here by removing what format 2 adds,
// is migrated at Open: its keys list in byte order, an index entry whose
// record is gone is removed, and the format is 2.
func TestIndexUpgrade(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, testOptions(t, dir))
	names := []string{"delta", "alpha", "echo", "charlie", "bravo"}
	for i, n := range names {
		// Hashes in reverse byte order of the names.
		k := Key{Partition: 9, Hash: uint64(100 - i), Key: []byte(n)}
		mustSet(t, s, k, "v-"+n)
	}
	// Make it a format-1 directory, plus one stale index entry.
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(metaKey(FormatMetaName), encodeFormat(1)); err != nil {
			return err
		}
		for _, n := range names {
			if err := txn.Delete(appendIndexKey(nil, 9, []byte(n))); err != nil {
				return err
			}
		}
		return txn.Set(appendIndexKey(nil, 9, []byte("ghost")), make([]byte, 8))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Format 1 as written: no index entry of a record.
	raw, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = raw.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("format-1 directory holds %d index entries, want only the stale one", n)
	}

	s = openTest(t, testOptions(t, dir))
	want := []string{"alpha=v-alpha", "bravo=v-bravo", "charlie=v-charlie", "delta=v-delta", "echo=v-echo"}
	if got := scanKeys(t, s, 9, ""); !slices.Equal(got, want) {
		t.Fatalf("after upgrade: %v, want %v", got, want)
	}
	if v, err := s.GetMeta(FormatMetaName); err != nil || !bytes.Equal(v, encodeFormat(FormatVersion)) {
		t.Fatalf("format after upgrade: %x, %v", v, err)
	}
	_ = s.db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(appendIndexKey(nil, 9, []byte("ghost"))); err != badger.ErrKeyNotFound {
			t.Errorf("stale index entry after upgrade: %v, want removed", err)
		}
		return nil
	})
}

// TestScanKeysSkipsStaleEntry: an index entry without its record (what a
// crash between the transactions of a split batch can leave) is not
// listed, and a later create of the key lists it.
func TestScanKeysSkipsStaleEntry(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(appendIndexKey(nil, 2, []byte("ghost")), make([]byte, 8))
	}); err != nil {
		t.Fatal(err)
	}
	if got := scanKeys(t, s, 2, ""); len(got) != 0 {
		t.Fatalf("stale entry listed: %v", got)
	}
	mustSet(t, s, Key{Partition: 2, Hash: 5, Key: []byte("ghost")}, "real")
	if got := scanKeys(t, s, 2, ""); !slices.Equal(got, []string{"ghost=real"}) {
		t.Fatalf("after create: %v", got)
	}
}
