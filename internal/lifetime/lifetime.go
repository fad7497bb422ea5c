package lifetime

import (
	"context"
	"sync"
)

// Group is the lifetime of one component's goroutines. Its zero value is
// ready to use. Go and Close are safe for concurrent use; Start is called
// once, before Close.
type Group struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start returns the lifetime context: a child of parent that Close
// cancels.
func (g *Group) Start(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	g.cancel = cancel
	return ctx
}

// Go runs f in a goroutine that Close waits for.
func (g *Group) Go(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Close cancels the lifetime context and waits for the goroutines. It is
// idempotent, and safe without Start.
func (g *Group) Close() {
	g.once.Do(func() {
		if g.cancel != nil {
			g.cancel()
		}
		g.wg.Wait()
	})
}
