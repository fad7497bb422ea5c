package waitfor

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCondReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	Cond(t, 10*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("cond called %d times, want 3", got)
	}
}

// recorder is a testing.TB whose Fatalf records the message and stops the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = format
	if len(args) > 0 {
		r.msg = strings.Replace(format, "%s", args[0].(string), 1)
	}
	panic(r)
}

func TestCondFailsAtTheDeadline(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("recovered %v, want the recorder's Fatalf", p)
			}
		}()
		Cond(r, 20*time.Millisecond, "never", func() bool { return false })
	}()
	if r.msg != "timed out waiting for never" {
		t.Fatalf("message %q", r.msg)
	}
}
