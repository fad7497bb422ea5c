package syncio

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWritesStayWhole: lines written from many goroutines arrive
// whole, through either type.
func TestConcurrentWritesStayWhole(t *testing.T) {
	var b Buffer
	w := NewWriter(&b)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				_, _ = w.Write([]byte("abcdefgh\n"))
				_, _ = b.Write([]byte("ijklmnop\n"))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3200 {
		t.Fatalf("%d lines, want 3200", len(lines))
	}
	for _, l := range lines {
		if l != "abcdefgh" && l != "ijklmnop" {
			t.Fatalf("torn line %q", l)
		}
	}
}
