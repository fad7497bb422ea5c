package transport

import (
	"testing"
	"time"
)

// peerConns returns tr's live connections to addr, in the peer's order.
func peerConns(tr *TCP, addr string) []*conn {
	tr.peersMu.RLock()
	p := tr.peers[addr]
	tr.peersMu.RUnlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	return append([]*conn(nil), p.conns...)
}

// callsSent returns how many calls each conn has sent (its last id).
func callsSent(cs []*conn) []uint64 {
	out := make([]uint64, len(cs))
	for i, c := range cs {
		c.mu.Lock()
		out[i] = c.nextID
		c.mu.Unlock()
	}
	return out
}

// Small calls share the peer's first connection, so that their frames
// share write and read syscalls; a call that would wait behind a large
// frame (queued to send, or a reply being read) or behind half of
// MaxInflight pending calls goes to the next connection.
func TestTCPSmallCallsShareAConn(t *testing.T) {
	srv, cli, _ := pair(t, echo, nil) // ConnsPerPeer 2
	addr := srv.LocalAddr()
	call := func() {
		t.Helper()
		if _, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, []byte("small")); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	eventually(t, "2 connections", func() bool {
		call()
		return len(peerConns(cli, addr)) == 2
	})
	cs := peerConns(cli, addr)
	// sent returns the calls each conn sent since the last sent.
	last := callsSent(cs)
	sent := func() [2]uint64 {
		now := callsSent(cs)
		d := [2]uint64{now[0] - last[0], now[1] - last[1]}
		last = now
		return d
	}

	for range 50 {
		call()
	}
	if d := sent(); d != [2]uint64{50, 0} {
		t.Fatalf("50 sequential small calls went %v over the 2 connections, want all on the first", d)
	}

	for _, tc := range []struct {
		name        string
		busy, clear func(c *conn)
	}{
		{"more queued than one write takes",
			func(c *conn) { c.queued.Add(bufSize + 1) }, func(c *conn) { c.queued.Add(-(bufSize + 1)) }},
		{"a large reply being read",
			func(c *conn) { c.bigRead.Store(true) }, func(c *conn) { c.bigRead.Store(false) }},
		{"half its calls pending", func(c *conn) {
			for range cap(c.slots)/2 + 1 {
				c.slots <- struct{}{}
			}
		}, func(c *conn) {
			for range cap(c.slots)/2 + 1 {
				<-c.slots
			}
		}},
	} {
		tc.busy(cs[0])
		for range 10 {
			call()
		}
		tc.clear(cs[0])
		if d := sent(); d != [2]uint64{0, 10} {
			t.Fatalf("%s: 10 calls went %v, want all on the second connection", tc.name, d)
		}
		call()
		if d := sent(); d != [2]uint64{1, 0} {
			t.Fatalf("%s cleared: a call went %v, want the first connection", tc.name, d)
		}
	}

	// Both busy: the calls still go out, in turn.
	cs[0].bigRead.Store(true)
	cs[1].bigRead.Store(true)
	for range 10 {
		call()
	}
	cs[0].bigRead.Store(false)
	cs[1].bigRead.Store(false)
	if d := sent(); d != [2]uint64{5, 5} {
		t.Fatalf("every connection busy: 10 calls went %v, want 5 and 5", d)
	}
}
