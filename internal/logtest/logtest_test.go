package logtest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestBufferKeepsLines(t *testing.T) {
	log, b := New(t, slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { log.Info("line", "i", i) })
	}
	wg.Wait()
	log.Debug("hidden")
	if got := strings.Count(b.String(), "msg=line"); got != 8 {
		t.Fatalf("%d lines kept, want 8:\n%s", got, b)
	}
	if strings.Contains(b.String(), "hidden") {
		t.Fatal("a line below the level was kept")
	}
}
