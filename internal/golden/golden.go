package golden

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update-golden", false, "rewrite golden files from the current encoders")

// Sample is one named encoding.
type Sample struct {
	Name  string
	Bytes []byte
}

// maxInline is the longest encoding written out in full.
const maxInline = 512

func line(s Sample) string {
	if len(s.Bytes) <= maxInline {
		return fmt.Sprintf("%s %d %s", s.Name, len(s.Bytes), hex.EncodeToString(s.Bytes))
	}
	sum := sha256.Sum256(s.Bytes)
	return fmt.Sprintf("%s %d sha256:%s prefix:%s", s.Name, len(s.Bytes), hex.EncodeToString(sum[:]), hex.EncodeToString(s.Bytes[:64]))
}

// Check compares samples with the golden file at path (relative to the
// test's package), or rewrites it with -update-golden. Every sample must be
// in the file and every line of the file must be a sample.
func Check(t testing.TB, path string, samples []Sample) {
	t.Helper()
	if *update {
		var b strings.Builder
		for _, s := range samples {
			b.WriteString(line(s))
			b.WriteByte('\n')
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update-golden to create it)", err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			continue
		}
		name, _, _ := strings.Cut(l, " ")
		want[name] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range samples {
		if seen[s.Name] {
			t.Fatalf("sample %q listed twice", s.Name)
		}
		seen[s.Name] = true
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("%s: not in %s", s.Name, path)
			continue
		}
		if got := line(s); got != w {
			t.Errorf("%s: encoding changed\n got %s\nwant %s", s.Name, got, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: in %s but no longer produced", name, path)
		}
	}
}

// Must returns a function that hands back b and fails t on err, for
// samples made by encoders that also return an error.
func Must(t testing.TB) func(b []byte, err error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}
