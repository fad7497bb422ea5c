package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawPeer is a test's own end of a connection: after the handshake, what
// it writes through w goes out as frames would (sealed into records on a
// version 2 connection), giving the test full control of the frames.
type rawPeer struct {
	net.Conn
	w io.Writer
	r io.Reader
}

func (p *rawPeer) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.w.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// streams wraps nc in the session's record layer, if it has one.
func streams(nc net.Conn, s session) (io.Reader, io.Writer) {
	if s.recv == nil {
		return nc, nc
	}
	return newSealedReader(nc, s.recv, nil), newSealedWriter(nc, s.send)
}

// rawConn dials addr and, if secret is non-nil, completes the handshake
// (version 1 for an empty secret, 2 otherwise).
func rawConn(t *testing.T, addr string, secret []byte) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	p := &rawPeer{Conn: nc, w: nc, r: nc}
	if secret != nil {
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		hs := handshaker{secret: secret, id: "raw", addr: "raw:0", maxFrame: 16 << 20, rand: rand.Reader}
		s, err := hs.client(nc, addr)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		nc.SetDeadline(time.Time{})
		p.r, p.w = streams(nc, s)
	}
	return p
}

// waitClosedByPeer reads from nc until the other side closes it.
func waitClosedByPeer(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection still open after 10s")
		}
		return
	}
}

func frameBytes(h header, body []byte) []byte { return appendFrame(nil, h, body) }

// A peer that misbehaves loses its own connection, with a log line; calls
// on other connections carry on.
func TestTCPBadPeerClosesOnlyItsConnection(t *testing.T) {
	truncated := frameBytes(header{kind: kindRequest, method: 1, id: 1}, make([]byte, 100))[:frameOverhead+10]
	for _, tc := range []struct {
		name      string
		handshake bool
		send      []byte
		log       string
	}{
		{"unknown kind", true, frameBytes(header{kind: 99, method: 1, id: 1}, nil), "unknown frame kind"},
		{"oversize frame", true, binary.BigEndian.AppendUint32(nil, 64<<10+1), "frame too large"},
		{"length below header", true, binary.BigEndian.AppendUint32(nil, 3), "below header size"},
		{"method zero", true, frameBytes(header{kind: kindRequest, id: 1}, nil), "method 0"},
		{"reply on a serving connection", true, frameBytes(header{kind: kindResponse, id: 1}, nil), "serving connection"},
		{"truncated frame then silence", true, truncated, "i/o timeout"},
		{"truncated length then silence", true, []byte{0, 0}, "i/o timeout"},
		{"silent before handshake", false, nil, "handshake failed"},
		{"oversize handshake message", false, binary.BigEndian.AppendUint32(nil, maxHandshakeMsg+1), "handshake failed"},
		{"garbage client hello", false, append(binary.BigEndian.AppendUint32(nil, 50), make([]byte, 50)...), "malformed client hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			h := HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
				if m == 1 {
					<-gate
				}
				return echo(ctx, f, m, b)
			})
			scfg, slog := testConfig(t, "server", h)
			scfg.MaxFrame = 64 << 10
			scfg.IOTimeout = 300 * time.Millisecond
			scfg.HandshakeTimeout = 300 * time.Millisecond
			srv := listen(t, scfg)
			ccfg, _ := testConfig(t, "client", nil)
			ccfg.ConnsPerPeer = 1
			cli := listen(t, ccfg)

			// A good call in flight while the bad peer acts.
			done := make(chan error, 1)
			go func() {
				got, err := cli.Call(ctxTimeout(t, 20*time.Second), srv.LocalAddr(), 1, []byte("good"))
				if err == nil && string(got) != "\x01good" {
					err = errors.New("wrong reply " + string(got))
				}
				done <- err
			}()
			eventually(t, "good connection", func() bool { return liveConns(srv, false) == 1 })

			var secret []byte
			if tc.handshake {
				secret = scfg.Secret
			}
			nc := rawConn(t, srv.LocalAddr(), secret)
			if tc.handshake {
				eventually(t, "raw connection", func() bool { return liveConns(srv, false) == 2 })
			}
			nc.send(t, tc.send)
			waitClosedByPeer(t, nc)
			slog.waitLog(t, tc.log)
			eventually(t, "bad connection dropped", func() bool { return liveConns(srv, false) == 1 })

			close(gate)
			if err := <-done; err != nil {
				t.Fatalf("good call failed: %v", err)
			}
			if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 2, nil); err != nil {
				t.Fatalf("good call after: %v", err)
			}
			if d := cli.dials.Load(); d != 1 {
				t.Fatalf("good client dialed %d times, want 1", d)
			}
		})
	}
}

// fakeServer accepts connections, handshakes with secret, reads one
// request and answers it with reply (raw bytes), then keeps the socket
// open until the client drops it. A connection that sends no request (the
// client's second one, dialed in the background) is just closed.
func fakeServer(t *testing.T, secret []byte, reply func(id uint64) []byte) string {
	t.Helper()
	return fakeListener(t, func(nc net.Conn) {
		hs := handshaker{secret: secret, id: "fake", maxFrame: 16 << 20, rand: rand.Reader}
		s, err := hs.server(nc, nil)
		if err != nil {
			return
		}
		r, w := streams(nc, s)
		h, _, err := readFrame(bufio.NewReader(r), 16<<20)
		if err != nil {
			return
		}
		w.Write(reply(h.id))
		nc.Read(make([]byte, 1))
	})
}

// A server that sends bad frames breaks only the client's connection to
// it: the call pending there fails promptly with ErrConnLost, calls to
// other servers are untouched.
func TestTCPBadServerClosesOnlyItsConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(id uint64) []byte
		log   string
	}{
		{"unknown kind", func(id uint64) []byte { return frameBytes(header{kind: 77, id: id}, nil) }, "unknown frame kind"},
		{"oversize frame", func(uint64) []byte { return binary.BigEndian.AppendUint32(nil, 64<<10+1) }, "frame too large"},
		{"request to a caller", func(id uint64) []byte { return frameBytes(header{kind: kindRequest, method: 1, id: id}, nil) }, "calling connection"},
		{"short error body", func(id uint64) []byte { return frameBytes(header{kind: kindError, id: id}, []byte{1}) }, "error frame body"},
		{"truncated reply then silence", func(id uint64) []byte {
			return frameBytes(header{kind: kindResponse, id: id}, make([]byte, 100))[:frameOverhead+5]
		}, "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := []byte("test secret")
			bad := fakeServer(t, secret, tc.reply)
			gate := make(chan struct{})
			scfg, _ := testConfig(t, "good", HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
				<-gate
				return echo(ctx, f, m, b)
			}))
			good := listen(t, scfg)
			ccfg, slog := testConfig(t, "client", nil)
			ccfg.MaxFrame = 64 << 10
			ccfg.IOTimeout = 300 * time.Millisecond
			cli := listen(t, ccfg)

			done := make(chan error, 1)
			go func() {
				_, err := cli.Call(ctxTimeout(t, 20*time.Second), good.LocalAddr(), 1, nil)
				done <- err
			}()
			begin := time.Now()
			_, err := cli.Call(ctxTimeout(t, 20*time.Second), bad, 1, []byte("hi"))
			mustIs(t, err, ErrConnLost, ErrUnreachable)
			if el := time.Since(begin); el > 10*time.Second {
				t.Fatalf("call to bad server failed after %v", el)
			}
			slog.waitLog(t, tc.log)
			close(gate)
			if err := <-done; err != nil {
				t.Fatalf("call to good server: %v", err)
			}
		})
	}
}

func TestTCPClientRejectsServerWithoutSecret(t *testing.T) {
	addr := fakeListener(t, func(nc net.Conn) {
		// An impostor: accepts anything and answers with a made-up proof.
		writeHandshakeMsg(nc, appendServerHello(nil, serverHello{version: versionSealed, maxFrame: 1 << 20}))
		if _, err := readHandshakeMsg(nc); err != nil {
			return
		}
		writeHandshakeMsg(nc, appendServerAnswer(nil, serverAnswer{version: versionSealed, status: statusAccepted, id: "impostor"}))
		nc.Read(make([]byte, 1))
	})
	ccfg, _ := testConfig(t, "client", nil)
	cli := listen(t, ccfg)
	_, err := cli.Call(ctxTimeout(t, 5*time.Second), addr, 1, nil)
	mustIs(t, err, ErrAuth, ErrUnreachable)
}

// A peer that sends requests but never reads the replies cannot block the
// server's writer forever: IOTimeout closes its connection.
func TestTCPSlowReaderIsDropped(t *testing.T) {
	big := make([]byte, 1<<20)
	h := HandlerFunc(func(ctx context.Context, f string, m Method, b []byte) ([]byte, error) {
		if m == 2 {
			return big, nil
		}
		return echo(ctx, f, m, b)
	})
	scfg, slog := testConfig(t, "server", h)
	scfg.IOTimeout = 300 * time.Millisecond
	srv := listen(t, scfg)
	ccfg, _ := testConfig(t, "client", nil)
	cli := listen(t, ccfg)

	nc := rawConn(t, srv.LocalAddr(), scfg.Secret)
	// A small receive buffer keeps kernel autotuning from soaking up the
	// replies that should back up into the server's writer.
	if err := nc.Conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	var reqs []byte
	for id := range uint64(32) {
		reqs = appendFrame(reqs, header{kind: kindRequest, method: 2, id: id + 1}, nil)
	}
	nc.send(t, reqs)
	slog.waitLog(t, "closing connection")
	slog.waitLog(t, "i/o timeout") // the write deadline, not a read error
	eventually(t, "slow reader dropped", func() bool { return liveConns(srv, false) <= 1 })
	if _, err := cli.Call(ctxTimeout(t, 5*time.Second), srv.LocalAddr(), 1, nil); err != nil {
		t.Fatalf("good call: %v", err)
	}
}
