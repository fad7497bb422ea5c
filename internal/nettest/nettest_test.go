package nettest

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeEndsItsHandlers: a handler blocked on a client that never
// closes is ended by the test's cleanup, which Serve waits for.
func TestServeEndsItsHandlers(t *testing.T) {
	var ended atomic.Int32
	outer := t
	t.Run("server", func(t *testing.T) {
		ln := Listen(t)
		Serve(t, ln, func(c net.Conn) {
			_, _ = c.Write([]byte("hi"))
			_, _ = io.Copy(io.Discard, c) // until the cleanup closes c
			ended.Add(1)
		})
		for range 3 {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			outer.Cleanup(func() { _ = c.Close() }) // after the server's cleanup
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := make([]byte, 2)
			if _, err := io.ReadFull(c, b); err != nil || string(b) != "hi" {
				t.Fatalf("greeting %q, %v", b, err)
			}
		}
	})
	if n := ended.Load(); n != 3 {
		t.Fatalf("%d handlers ended by the cleanup, want 3", n)
	}
}
