// Package nettest runs the small servers tests start on 127.0.0.1: a
// listener that the test's cleanup closes, and an accept loop that hands
// each connection to a handler in its own goroutine and, when the test
// ends, closes the connections still open and waits for every handler, so
// that no server goroutine outlives its test. Trickle plays the slow
// client those servers must cut.
package nettest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Listen listens on a fresh port of 127.0.0.1 and closes the listener when
// the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// Serve accepts from ln until Accept fails and runs handle on each
// connection in its own goroutine, closing the connection when handle
// returns. When the test ends it closes ln and every connection still
// open, then waits for the accept loop and the handlers.
func Serve(t testing.TB, ln net.Listener, handle func(c net.Conn)) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]struct{}{}
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					_ = c.Close()
				}()
				handle(c)
			})
		}
	})
}

// Trickle writes b to w every period, in a goroutine, until stop is called
// or a write fails: a client that sends a body as slowly as it likes.
func Trickle(w io.Writer, b []byte, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
			}
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
