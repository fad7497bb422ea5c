package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/internal/nettest"
)

// Directions through a proxy.
const (
	toServer = iota
	toClient
)

// proxy is a TCP relay between transports for tests: it forwards every
// connection to target and keeps a copy of all bytes in both directions.
// Both directions are streams of u32-length-prefixed units (handshake
// messages, then records on a version 2 connection or frames on version
// 1), which it forwards one at a time through mutate, if set, so a test
// can alter, repeat or drop one.
type proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	captured [2]bytes.Buffer
	// mutate gets the connection's number (from 0, in the order their
	// relays start), the direction, the unit's index in that direction and
	// the unit (prefix included) and returns what to forward instead.
	mutate func(conn, dir, index int, unit []byte) []byte
}

// newProxy starts a proxy to target on 127.0.0.1; the test's end closes
// it and its connections and waits for its relays.
func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln := nettest.Listen(t)
	p := &proxy{ln: ln, target: target}
	var started atomic.Int64
	nettest.Serve(t, ln, func(in net.Conn) {
		n := int(started.Add(1) - 1)
		out, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		// Each pump closes both sides when it ends, which ends the other
		// (the test's end closes in).
		var wg sync.WaitGroup
		wg.Go(func() { p.pump(n, toServer, in, out) })
		p.pump(n, toClient, out, in)
		wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setMutate(f func(conn, dir, index int, unit []byte) []byte) {
	p.mu.Lock()
	p.mutate = f
	p.mu.Unlock()
}

// bytes returns a copy of everything relayed in dir.
func (p *proxy) bytes(dir int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.captured[dir].Bytes())
}

// pump relays units from src to dst until either side closes; then it
// closes both, as a dead relay would.
func (p *proxy) pump(conn, dir int, src, dst net.Conn) {
	defer src.Close()
	defer dst.Close()
	for i := 0; ; i++ {
		var lb [4]byte
		if _, err := io.ReadFull(src, lb[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(lb[:])
		if n > 64<<20 {
			return
		}
		unit := make([]byte, 4+n)
		copy(unit, lb[:])
		if _, err := io.ReadFull(src, unit[4:]); err != nil {
			return
		}
		p.mu.Lock()
		p.captured[dir].Write(unit)
		mutate := p.mutate
		p.mu.Unlock()
		if mutate != nil {
			unit = mutate(conn, dir, i, unit)
		}
		if _, err := dst.Write(unit); err != nil {
			return
		}
	}
}
