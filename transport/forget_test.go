package transport

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// A dial in flight when Forget(addr) runs does not survive it: the peer
// was declared dead while the handshake was held, so the connection it
// would have made is not used, the call waiting on it fails (not sent:
// ErrUnreachable, not ErrConnLost), and the next call dials afresh.
func TestTCPForgetDuringDial(t *testing.T) {
	srv, cli, _ := pair(t, echo, func(_, c *Config) { c.ConnsPerPeer = 1 })
	px := newProxy(t, srv.LocalAddr())
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	// The first connection's hello waits at the proxy until release: the
	// client's dial has connected and is in its handshake.
	px.setMutate(func(conn, dir, index int, unit []byte) []byte {
		if conn == 0 && dir == toServer && index == 0 {
			close(held)
			<-release
		}
		return unit
	})
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctxTimeout(t, time.Minute), px.addr(), 1, []byte("x"))
		errc <- err
	}()
	<-held
	cli.Forget(px.addr())
	open() // the handshake may now complete: its connection must not be used
	err := <-errc
	if err == nil {
		t.Fatal("a call waiting on a dial that Forget overtook succeeded on the connection the dial made after Forget")
	}
	mustIs(t, err, ErrUnreachable)
	if errors.Is(err, ErrConnLost) {
		t.Fatalf("error %v says the request was sent", err)
	}
	eventually(t, "no client connection left to the forgotten peer", func() bool { return liveConns(cli, true) == 0 })
	if got, err := cli.Call(ctxTimeout(t, 5*time.Second), px.addr(), 2, []byte("y")); err != nil || string(got) != "\x02y" { // echo: the method, then the body
		t.Fatalf("call after Forget: %q %v", got, err)
	}
	if d := cli.dials.Load(); d != 2 {
		t.Fatalf("%d dials, want 2", d)
	}
}

// Forget after a dial's handshake succeeded but before its connection was
// handed to the calls waiting for it: the connection is closed, not used,
// and the waiting call fails as in TestTCPForgetDuringDial.
func TestTCPForgetAfterDialCompleted(t *testing.T) {
	srv, cli, _ := pair(t, echo, func(_, c *Config) { c.ConnsPerPeer = 1 })
	var once sync.Once
	cli.afterDial = func() { once.Do(func() { cli.Forget(srv.LocalAddr()) }) }
	_, err := cli.Call(ctxTimeout(t, time.Minute), srv.LocalAddr(), 1, []byte("x"))
	mustIs(t, err, ErrUnreachable)
	if errors.Is(err, ErrConnLost) {
		t.Fatalf("error %v says the request was sent", err)
	}
	if n := liveConns(cli, true); n != 0 {
		t.Fatalf("%d client connections survive Forget", n)
	}
	eventually(t, "the server sees the connection closed", func() bool { return liveConns(srv, false) == 0 })
	if got, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, []byte("y")); err != nil || string(got) != "\x02y" {
		t.Fatalf("call after Forget: %q %v", got, err)
	}
}
