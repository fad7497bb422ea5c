package main

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

// The agent paces the collector under its memory limit unless
// --memory-limit is off or the operator set GOGC or GOMEMLIMIT; stopping
// the pacer gives back GOGC and the plan's limit.
func TestAgentPacer(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(prevLimit); debug.SetGCPercent(prevGC) })
	log := slog.New(slog.DiscardHandler)
	none := func(string) string { return "" }
	for name, getenv := range map[string]func(string) string{
		"GOGC set":       func(k string) string { return map[string]string{"GOGC": "200"}[k] },
		"GOMEMLIMIT set": func(k string) string { return map[string]string{"GOMEMLIMIT": "1GiB"}[k] },
	} {
		if stop := agentPacer("", getenv, log); stop != nil {
			stop()
			t.Errorf("%s: the pacer started", name)
		}
	}
	if stop := agentPacer("off", none, log); stop != nil {
		stop()
		t.Error("--memory-limit off: the pacer started")
	}
	debug.SetMemoryLimit(1 << 30) // what agentMemory would have set
	stop := agentPacer("1GiB", none, log)
	if stop == nil {
		t.Fatal("the pacer did not start")
	}
	stop()
	if gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1); gc != 100 || limit != 1<<30 {
		t.Fatalf("after stop: GOGC %d, limit %d; want 100 and the plan's 1 GiB", gc, limit)
	}
}
