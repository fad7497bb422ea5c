package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// securePair starts a server whose handler replies with reply and counts
// its calls, and a client that reaches it through a recording proxy.
func securePair(t *testing.T, secret string, reply []byte) (cli *TCP, p *proxy, served *atomic.Int32, slog *logBuf) {
	t.Helper()
	served = new(atomic.Int32)
	scfg, slog := testConfig(t, "server", HandlerFunc(func(_ context.Context, _ string, _ Method, _ []byte) ([]byte, error) {
		served.Add(1)
		return reply, nil
	}))
	scfg.Secret = []byte(secret)
	srv := listen(t, scfg)
	ccfg, _ := testConfig(t, "client", nil)
	ccfg.Secret = []byte(secret)
	ccfg.ConnsPerPeer = 1
	cli = listen(t, ccfg)
	return cli, newProxy(t, srv.LocalAddr()), served, slog
}

func distinctive(what string) []byte {
	b := make([]byte, 8)
	rand.Read(b)
	return []byte("DISTINCTIVE-" + what + "-" + hex.EncodeToString(b))
}

// Issue 13: with a secret, a sniffer between two nodes sees neither the
// request nor the value it returns. Without one it sees both, which
// proves the capture would have caught them.
func TestSealedWireHidesBodies(t *testing.T) {
	for _, tc := range []struct {
		secret string
		hidden bool
	}{{"cluster secret", true}, {"", false}} {
		t.Run("secret="+tc.secret, func(t *testing.T) {
			req, value := distinctive("REQUEST"), distinctive("VALUE")
			cli, p, _, _ := securePair(t, tc.secret, value)
			got, err := cli.Call(ctxTimeout(t, 5*time.Second), p.addr(), 1, req)
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("Call = %q, %v", got, err)
			}
			wire := append(p.bytes(toServer), p.bytes(toClient)...)
			if len(wire) < len(req)+len(value) {
				t.Fatalf("captured only %d bytes", len(wire))
			}
			for _, secretBytes := range [][]byte{req, value, req[:16], value[:16], []byte("DISTINCTIVE")} {
				if found := bytes.Contains(wire, secretBytes); found == tc.hidden {
					t.Fatalf("%q on the wire: %v, want %v", secretBytes, found, !tc.hidden)
				}
			}
			if tc.hidden && bytes.Contains(wire, []byte(tc.secret)) {
				t.Fatal("the secret itself is on the wire")
			}
		})
	}
}

// A bit flipped in a record on the way kills that connection only: the
// call fails cleanly with ErrConnLost, the handler never sees the request,
// and the next call (on a new connection) works.
func TestSealedBitFlipKillsConnection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dir       int
		wantServe int32 // calls the handler ran before the call failed
	}{{"request", toServer, 0}, {"reply", toClient, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			cli, p, served, slog := securePair(t, "s3cret", []byte("value"))
			// Units: the client sends 1 handshake message, the server 2.
			first := map[int]int{toServer: 1, toClient: 2}[tc.dir]
			p.setMutate(func(conn, dir, i int, unit []byte) []byte {
				if conn == 0 && dir == tc.dir && i == first {
					unit[len(unit)-20] ^= 0x04 // in the ciphertext
				}
				return unit
			})
			_, err := cli.Call(ctxTimeout(t, 10*time.Second), p.addr(), 1, []byte("request"))
			mustIs(t, err, ErrConnLost, ErrUnreachable)
			if n := served.Load(); n != tc.wantServe {
				t.Fatalf("handler ran %d times, want %d", n, tc.wantServe)
			}
			if tc.dir == toServer {
				slog.waitLog(t, "failed authentication")
			}
			got, err := cli.Call(ctxTimeout(t, 10*time.Second), p.addr(), 1, []byte("request"))
			if err != nil || string(got) != "value" {
				t.Fatalf("call on a new connection = %q, %v", got, err)
			}
		})
	}
}

// A record replayed on the way is refused: the handler runs once, and the
// replay closes the connection.
func TestSealedReplayRefused(t *testing.T) {
	cli, p, served, slog := securePair(t, "s3cret", []byte("value"))
	p.setMutate(func(conn, dir, i int, unit []byte) []byte {
		if conn == 0 && dir == toServer && i == 1 {
			return append(bytes.Clone(unit), unit...) // the first record, twice
		}
		return unit
	})
	// The reply may or may not beat the connection's end; either way the
	// replayed request must not run.
	_, err := cli.Call(ctxTimeout(t, 10*time.Second), p.addr(), 1, []byte("pay once"))
	if err != nil {
		mustIs(t, err, ErrConnLost)
	}
	slog.waitLog(t, "failed authentication")
	// The first copy was dispatched before the replay was read; its
	// handler may still be on its way.
	eventually(t, "the request served once", func() bool { return served.Load() >= 1 })
	// Also a record replayed from an earlier connection: keys are per
	// connection, so it fails on a new one too.
	old := p.bytes(toServer)
	rec := old[len(old)-recordWireLen(t, old):]
	p.setMutate(func(conn, dir, i int, unit []byte) []byte {
		if conn == 1 && dir == toServer && i == 1 {
			return bytes.Clone(rec)
		}
		return unit
	})
	_, err = cli.Call(ctxTimeout(t, 10*time.Second), p.addr(), 1, []byte("again"))
	mustIs(t, err, ErrConnLost)
	// A clean call runs the handler once more: two in all, so neither
	// replay ran it.
	p.setMutate(nil)
	if _, err := cli.Call(ctxTimeout(t, 10*time.Second), p.addr(), 1, []byte("clean")); err != nil {
		t.Fatal(err)
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("handler ran %d times for one replayed, one cross-connection replayed and one clean call; want 2", n)
	}
}

// recordWireLen returns the size of the last unit of a captured stream
// whose units are all u32-length-prefixed.
func recordWireLen(t *testing.T, b []byte) int {
	t.Helper()
	last := 0
	for off := 0; off < len(b); {
		n := 4 + int(uint32(b[off])<<24|uint32(b[off+1])<<16|uint32(b[off+2])<<8|uint32(b[off+3]))
		last, off = n, off+n
	}
	return last
}

// A peer without the secret neither completes a handshake nor gets a
// request served, whatever it sends after being refused.
func TestPeerWithoutSecretGetsNothingServed(t *testing.T) {
	var served atomic.Int32
	scfg, slog := testConfig(t, "server", HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
		served.Add(1)
		return echo(ctx, f, m, b)
	}))
	srv := listen(t, scfg)
	for _, secret := range []string{"", "guess"} {
		ccfg, _ := testConfig(t, "intruder", nil)
		ccfg.Secret = []byte(secret)
		cli := listen(t, ccfg)
		_, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, []byte("let me in"))
		mustIs(t, err, ErrAuth, ErrUnreachable)
	}
	// By hand: a v1 and a v2 hello with a made-up proof, followed by
	// request frames (plain, and as if sealed) without waiting for the
	// answer.
	for _, v := range []uint8{versionPlain, versionSealed} {
		nc := rawConn(t, srv.LocalAddr(), nil)
		if _, err := readHandshakeMsg(nc); err != nil {
			t.Fatal(err)
		}
		ch := appendClientHello(nil, clientHello{version: v, maxFrame: 1 << 20, id: "intruder", addr: "i:1"})
		writeHandshakeMsg(nc, ch)
		nc.Write(frameBytes(header{kind: kindRequest, method: 1, id: 1}, []byte("plain request")))
		waitClosedByPeer(t, nc)
	}
	slog.waitLog(t, "did not prove the secret")
	if n := served.Load(); n != 0 {
		t.Fatalf("handler ran %d times for peers without the secret", n)
	}
	if !strings.Contains(slog.String(), "handshake failed") {
		t.Fatal("no handshake failure logged")
	}
}

// The dialer sees a version refusal as a typed error over real sockets.
func TestTCPVersionRefusalIsTyped(t *testing.T) {
	ln := fakeListener(t, func(nc net.Conn) { _ = futureServer(nc) })
	ccfg, _ := testConfig(t, "client", nil)
	cli := listen(t, ccfg)
	_, err := cli.Call(ctxTimeout(t, 5*time.Second), ln, 1, nil)
	mustIs(t, err, ErrUnreachable, ErrVersion)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Local != versionSealed || ve.Peer != 3 || ve.Addr != ln {
		t.Fatalf("error %v, want a *VersionError from %s, local 2, peer 3", err, ln)
	}
	if !strings.Contains(err.Error(), "version 3") || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("error %q does not name both versions", err)
	}
}
