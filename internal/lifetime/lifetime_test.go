package lifetime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupClosesWhatItStarted(t *testing.T) {
	var g Group
	ctx := g.Start(context.Background())
	var ended atomic.Int32
	for range 3 {
		g.Go(func() {
			<-ctx.Done()
			time.Sleep(5 * time.Millisecond)
			ended.Add(1)
		})
	}
	g.Close()
	if ended.Load() != 3 {
		t.Fatalf("Close returned with %d of 3 goroutines ended", ended.Load())
	}
	g.Close() // idempotent
	var never Group
	never.Close() // without Start
}

func TestGroupEndsWithParent(t *testing.T) {
	var g Group
	parent, cancel := context.WithCancel(context.Background())
	ctx := g.Start(parent)
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the lifetime outlived its parent")
	}
	g.Close()
}
