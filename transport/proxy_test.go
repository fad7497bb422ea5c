package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
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
	// mutate gets the connection's number (from 0, in accept order), the
	// direction, the unit's index in that direction and the unit (prefix
	// included) and returns what to forward instead.
	mutate func(conn, dir, index int, unit []byte) []byte

	wg sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	var conns []net.Conn
	var connsMu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		p.wg.Wait()
	})
	p.wg.Go(func() {
		for n := 0; ; n++ {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, in, out)
			connsMu.Unlock()
			p.wg.Go(func() { p.pump(n, toServer, in, out) })
			p.wg.Go(func() { p.pump(n, toClient, out, in) })
		}
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
