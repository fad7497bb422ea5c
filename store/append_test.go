package store

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"
)

// UpdateAppend writes what fn appends to dst, and the record's key and
// value then share one allocation, key first, as the value cache finds
// them (cache.go); a value longer than the hint, or built elsewhere, is
// written as well, and the size limit holds either way.
func TestUpdateAppend(t *testing.T) {
	o := testOptions(t, t.TempDir())
	o.MaxValueSize = 64
	s := openTest(t, o)
	k := Key{Hash: 7, Key: []byte("key")}
	cached := func(what string) (key, val []byte) {
		t.Helper()
		bkey := appendRecordKey(nil, k)
		sh, h := s.shardFor(bkey)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		p := sh.c.lookup(h)
		if p < 0 || !bytes.Equal(sh.c.ents[p].key, bkey) {
			t.Fatalf("%s: the record is not cached", what)
		}
		return sh.c.ents[p].key, sh.c.ents[p].val
	}
	for _, tc := range []struct {
		name   string
		hint   int
		fn     AppendFunc
		want   string
		joined bool // key and value in one allocation
	}{
		{"in dst", 16, func(dst, _ []byte, _ bool) ([]byte, error) { return append(dst, "hello"...), nil }, "hello", true},
		{"past the hint", 2, func(dst, old []byte, _ bool) ([]byte, error) { return append(append(dst, old...), "!"...), nil }, "hello!", false},
		{"elsewhere", 16, func(_, _ []byte, _ bool) ([]byte, error) { return []byte("own"), nil }, "own", false},
		{"no hint", 0, func(dst, _ []byte, _ bool) ([]byte, error) { return append(dst, "zero"...), nil }, "zero", false},
	} {
		changed, err := s.UpdateAppend(t.Context(), k, false, tc.hint, tc.fn)
		if err != nil || !changed {
			t.Fatalf("%s: changed %v, %v", tc.name, changed, err)
		}
		if v, err := s.Get(k); err != nil || string(v) != tc.want {
			t.Fatalf("%s: Get = %q, %v; want %q", tc.name, v, err, tc.want)
		}
		key, val := cached(tc.name)
		if string(val) != tc.want {
			t.Fatalf("%s: cached %q, want %q", tc.name, val, tc.want)
		}
		if joined := follows(key, val); joined != tc.joined {
			t.Fatalf("%s: key and value in one allocation = %v, want %v", tc.name, joined, tc.joined)
		}
	}
	if _, err := s.UpdateAppend(t.Context(), k, false, 8, AppendFunc(func(dst, _ []byte, _ bool) ([]byte, error) {
		return append(dst, make([]byte, 65)...), nil
	})); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("65 bytes: %v, want ErrValueTooLarge", err)
	}
	changed, commit, err := s.UpdateAppendQueued(t.Context(), k, false, 8, AppendFunc(func(dst, old []byte, _ bool) ([]byte, error) {
		if string(old) != "zero" {
			t.Errorf("queued: old %q, want the last written", old)
		}
		return append(dst, "queued"...), nil
	}))
	if err != nil || !changed {
		t.Fatalf("queued: changed %v, %v", changed, err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(k); err != nil || string(v) != "queued" {
		t.Fatalf("after the queued write: %q, %v", v, err)
	}
	if key, val := cached("queued"); !follows(key, val) {
		t.Fatal("the queued write's key and value are not in one allocation")
	}
	if cap(appendRecordKey(nil, k)) != len(appendRecordKey(nil, k)) {
		t.Fatal("appendRecordKey(nil) leaves room") // what "no hint" relies on
	}
}

// A value read from badger after a miss is cached with its key in one
// allocation too.
func TestReadThroughJoinsKeyAndValue(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, testOptions(t, dir))
	k := Key{Hash: 9, Key: []byte("read")}
	if _, err := s.UpdateOwned(t.Context(), k, false, func([]byte, bool) ([]byte, error) { return []byte("value"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, testOptions(t, dir))
	if v, err := s.Get(k); err != nil || string(v) != "value" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	bkey := appendRecordKey(nil, k)
	sh, h := s.shardFor(bkey)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.c.lookup(h)
	if p < 0 || string(sh.c.ents[p].val) != "value" || !follows(sh.c.ents[p].key, sh.c.ents[p].val) {
		t.Fatal("the value read is not cached right after its key")
	}
}

// follows reports whether val starts right where key ends, in one array.
func follows(key, val []byte) bool {
	return len(key) > 0 && len(val) > 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(val))) == uintptr(unsafe.Pointer(unsafe.SliceData(key)))+uintptr(len(key))
}
