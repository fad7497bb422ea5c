package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// updateGolden rewrites the golden files instead of comparing with them:
// go test ./store -run Golden -update-golden. Only when the storage format
// changes on purpose, with FormatVersion bumped.
var updateGolden = flag.Bool("update-golden", false, "rewrite store/testdata/golden")

const goldenDir = "testdata/golden"

// layoutLines describes today's encodings, one per line, in hex.
func layoutLines() string {
	var b strings.Builder
	line := func(what string, enc []byte) { fmt.Fprintf(&b, "%-60s %s\n", what, hex.EncodeToString(enc)) }
	k0 := Key{}
	k := Key{Partition: 7, Hash: 0x0123456789abcdef, Key: []byte("user:42")}
	kmax := Key{Partition: 0xffffffff, Hash: 0xffffffffffffffff, Key: []byte{0, 0xff}}
	line(`record p=0 h=0 key=""`, appendRecordKey(nil, k0))
	line(`record p=7 h=0x0123456789abcdef key="user:42"`, appendRecordKey(nil, k))
	line(`record p=max h=max key=00ff`, appendRecordKey(nil, kmax))
	line(`partition prefix p=7`, partitionPrefix(7))
	line(`hint prefix target="n2"`, appendHintPrefix(nil, "n2"))
	line(`hint target="n2" p=7 h=0x0123456789abcdef key="user:42"`, appendHintKey(nil, "n2", k))
	line(`hint value created=1700000000123456789 bytes="set"`, appendHintValue(nil, 1700000000123456789, []byte("set")))
	line(`hint value created=-1 bytes=""`, appendHintValue(nil, -1, nil))
	line(`meta name="node.id"`, metaKey("node.id"))
	line(`meta name=FormatMetaName`, metaKey(FormatMetaName))
	line(`index p=7 key="user:42"`, appendIndexKey(nil, 7, k.Key))
	line(`index prefix p=7`, indexPrefix(7))
	line(`format meta value FormatVersion`, encodeFormat(FormatVersion))
	return b.String()
}

// TestGoldenLayout: the key layout and the store's own value encodings
// are what testdata/golden/layout.txt says. A failure means the on-disk
// format changed: bump FormatVersion (and keep reading the old one)
// before updating the golden file.
func TestGoldenLayout(t *testing.T) {
	path := filepath.Join(goldenDir, fmt.Sprintf("layout-v%d.txt", FormatVersion))
	got := layoutLines()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (a new FormatVersion needs its golden file: -update-golden)", err)
	}
	if got != string(want) {
		t.Fatalf("on-disk encodings changed without a new FormatVersion:\ngot:\n%s\nwant (%s):\n%s", got, path, want)
	}
}

// The content of the golden data directory.
var (
	goldenKeys = []Key{
		{Partition: 3, Hash: 1, Key: []byte("alpha")},
		{Partition: 3, Hash: 2, Key: []byte("beta")},
		{Partition: 200, Hash: 0xfedcba9876543210, Key: []byte("gamma")},
	}
)

func goldenValue(k Key) string { return "value of " + string(k.Key) }

// goldenUnstamped is a data directory written by the store as it was
// before format versions were recorded (layout 1, no format meta, no key
// index): three records, a hint and a meta value. The code that wrote it
// (writeGoldenDataDir, removed with format 2, which cannot write layout 1)
// is in the history of this file.
var goldenUnstamped = filepath.Join(goldenDir, "datadir-v1-unstamped")

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestGoldenDataDir: a data directory written before format versions were
// recorded opens (badger's files and the store's layout read as they are),
// holds what was written, is migrated to FormatVersion and has its key
// index built (ScanKeys lists its records).
func TestGoldenDataDir(t *testing.T) {
	dir := copyDir(t, goldenUnstamped)
	s := openTest(t, testOptions(t, dir))
	for _, k := range goldenKeys {
		if v, err := s.Get(k); err != nil || string(v) != goldenValue(k) {
			t.Errorf("record %q: %q, %v", k.Key, v, err)
		}
	}
	if v, err := s.GetHint("n2", goldenKeys[0]); err != nil || string(v) != "hint for n2" {
		t.Errorf("hint: %q, %v", v, err)
	}
	if st := s.HintStats("n2"); st.Count != 1 || st.Oldest.IsZero() {
		t.Errorf("hint stats: %+v", st)
	}
	if v, err := s.GetMeta("node.id"); err != nil || string(v) != "n1" {
		t.Errorf("meta: %q, %v", v, err)
	}
	if parts, err := s.Partitions(); err != nil || len(parts) != 2 || parts[0] != 3 || parts[1] != 200 {
		t.Errorf("partitions: %v, %v", parts, err)
	}
	if v, err := s.GetMeta(FormatMetaName); err != nil || !bytes.Equal(v, encodeFormat(FormatVersion)) {
		t.Fatalf("format after opening an unstamped directory: %x, %v; want version %d", v, err, FormatVersion)
	}
	for _, p := range []uint32{3, 200} {
		var got []Key
		if err := s.ScanKeys(p, nil, func(k Key, val []byte) error {
			if string(val) != goldenValue(k) {
				t.Errorf("ScanKeys %q: value %q", k.Key, val)
			}
			got = append(got, Key{Partition: k.Partition, Hash: k.Hash, Key: bytes.Clone(k.Key)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var want []Key
		for _, k := range goldenKeys {
			if k.Partition == p {
				want = append(want, k)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ScanKeys(%d) after migration: %v, want %v", p, got, want)
		}
	}
}

// setFormat overwrites dir's format meta with raw, behind the store's back.
func setFormat(t *testing.T, dir string, raw []byte) {
	t.Helper()
	s := openTest(t, testOptions(t, dir))
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaKey(FormatMetaName), raw) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFormatNewerRefused: a directory of a newer, unknown format is
// refused with ErrFormat, naming both versions; nothing is changed.
func TestFormatNewerRefused(t *testing.T) {
	dir := t.TempDir()
	setFormat(t, dir, encodeFormat(FormatVersion+1))
	_, err := Open(testOptions(t, dir))
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("open of format %d: %v, want ErrFormat", FormatVersion+1, err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", FormatVersion+1), fmt.Sprintf("%d to %d", minFormatVersion, FormatVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// Refused again: the open did not rewrite the version.
	if _, err := Open(testOptions(t, dir)); !errors.Is(err, ErrFormat) {
		t.Fatalf("second open: %v", err)
	}
}

// TestFormatCorrupt: a format meta that does not decode is reported, not
// guessed at.
func TestFormatCorrupt(t *testing.T) {
	for _, raw := range [][]byte{{}, {1, 2, 3}, {0, 0, 0, 0, 1}, encodeFormat(0)} {
		dir := t.TempDir()
		setFormat(t, dir, raw)
		_, err := Open(testOptions(t, dir))
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormat) {
			t.Fatalf("format meta %x: %v, want ErrCorrupt or ErrFormat", raw, err)
		}
	}
}

// TestFormatMeta: new stores (on disk and in memory) are stamped with
// FormatVersion; callers cannot write the store's reserved meta names.
func TestFormatMeta(t *testing.T) {
	for _, dir := range []string{t.TempDir(), ""} {
		s := openTest(t, testOptions(t, dir))
		if v, err := s.GetMeta(FormatMetaName); err != nil || !bytes.Equal(v, encodeFormat(FormatVersion)) {
			t.Fatalf("dir %q: format meta %x, %v", dir, v, err)
		}
		if err := s.PutMeta(FormatMetaName, encodeFormat(FormatVersion+1)); !errors.Is(err, ErrReservedName) {
			t.Fatalf("PutMeta of the format: %v, want ErrReservedName", err)
		}
		if err := s.PutMeta(ReservedMetaPrefix+"other", nil); !errors.Is(err, ErrReservedName) {
			t.Fatalf("PutMeta of a reserved name: %v, want ErrReservedName", err)
		}
	}
}
