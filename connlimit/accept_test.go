package connlimit

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first fails Accepts with EMFILE and then
// hands out one end of a pipe; once closed it fails with net.ErrClosed.
type failingListener struct {
	net.Listener // nil: only Accept is called
	fails        int
	closed       bool
}

func (l *failingListener) Accept() (net.Conn, error) {
	switch {
	case l.closed:
		return nil, net.ErrClosed
	case l.fails > 0:
		l.fails--
		return nil, syscall.EMFILE
	}
	c, other := net.Pipe()
	_ = other.Close()
	return c, nil
}

func TestAcceptBacksOffOnFailures(t *testing.T) {
	ln := &failingListener{fails: 4}
	var pauses []time.Duration
	nc, err := Accept(t.Context(), ln, func(err error, retryIn time.Duration) {
		if !errors.Is(err, syscall.EMFILE) {
			t.Errorf("failed got %v, want EMFILE", err)
		}
		pauses = append(pauses, retryIn)
	})
	if err != nil || nc == nil {
		t.Fatalf("Accept = %v, %v; want the connection after the failures", nc, err)
	}
	_ = nc.Close()
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if !slices.Equal(pauses, want) {
		t.Fatalf("pauses %v, want %v", pauses, want)
	}
}

func TestNextPause(t *testing.T) {
	for _, tc := range []struct{ last, want time.Duration }{
		{0, 5 * time.Millisecond},
		{5 * time.Millisecond, 10 * time.Millisecond},
		{600 * time.Millisecond, time.Second},
		{time.Second, time.Second},
	} {
		if got := nextPause(tc.last); got != tc.want {
			t.Errorf("nextPause(%v) = %v, want %v", tc.last, got, tc.want)
		}
	}
}

func TestAcceptEnds(t *testing.T) {
	noFailure := func(err error, _ time.Duration) { t.Errorf("failed called with %v", err) }
	t.Run("closed listener", func(t *testing.T) {
		_, err := Accept(t.Context(), &failingListener{closed: true}, noFailure)
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err %v, want net.ErrClosed", err)
		}
	})
	t.Run("failure after ctx ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Accept(ctx, &failingListener{fails: 1}, noFailure)
		if !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("err %v, want the listener's EMFILE, returned without a pause", err)
		}
	})
	t.Run("ctx ends during a pause", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		ln := &failingListener{fails: 1}
		_, err := Accept(ctx, ln, func(error, time.Duration) { cancel() })
		if !errors.Is(err, context.Canceled) || ln.fails != 0 {
			t.Fatalf("err %v (fails left %d), want context.Canceled after one failure", err, ln.fails)
		}
	})
}
