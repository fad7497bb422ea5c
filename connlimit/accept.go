package connlimit

import (
	"context"
	"errors"
	"net"
	"time"
)

// Accept returns the next connection of ln, for a server's own accept
// loop (net/http has one of its own). A failure that leaves ln open (out
// of file descriptors and the like) is passed to failed with the pause
// before the next try, which doubles from 5ms up to 1s as net/http's does:
// retrying at once would spin while the descriptors stay used up. It
// returns the error of Accept once ln is closed or ctx has ended, and
// ctx's error when ctx ends during a pause.
func Accept(ctx context.Context, ln net.Listener, failed func(err error, retryIn time.Duration)) (net.Conn, error) {
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		pause = nextPause(pause)
		failed(err, pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// nextPause is the pause after one that lasted last (0 before the first).
func nextPause(last time.Duration) time.Duration {
	return min(max(2*last, 5*time.Millisecond), time.Second)
}
