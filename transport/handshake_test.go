package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// seqRand is a deterministic stand-in for crypto/rand: bytes next,
// next+1, ... It makes handshakes reproducible for the golden files.
type seqRand struct{ next byte }

func (r *seqRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func testHS(secret, id string) handshaker {
	return handshaker{secret: []byte(secret), id: id, addr: "10.0.0.2:7000", maxFrame: 16 << 20, rand: rand.Reader}
}

// recorder keeps what one side wrote, one Write per entry.
type recorder struct {
	net.Conn
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return r.Conn.Write(p)
}

// runHandshake runs both sides over an in-memory pipe and returns what
// each learned and wrote.
func runHandshake(t *testing.T, server, client handshaker) (ss, cs session, serr, cerr error, sw, cw [][]byte) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sr, cr := &recorder{Conn: a}, &recorder{Conn: b}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ss, serr = server.server(sr, nil)
		if serr != nil {
			a.Close()
		}
	}()
	cs, cerr = client.client(cr, "srv:1")
	if cerr != nil {
		b.Close()
	}
	<-done
	return ss, cs, serr, cerr, sr.writes, cr.writes
}

// checkKeys proves that the two sessions share keys in both directions
// (and that the directions differ).
func checkKeys(t *testing.T, ss, cs session) {
	t.Helper()
	for _, dir := range []struct {
		name     string
		from, to *aeadState
	}{{"client to server", cs.send, ss.recv}, {"server to client", ss.send, cs.recv}} {
		rec, err := dir.from.appendRecord(nil, []byte("hello "+dir.name))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := dir.to.openRecord(bytes.Clone(rec))
		if err != nil || string(plain) != "hello "+dir.name {
			t.Fatalf("%s: opened %q, %v", dir.name, plain, err)
		}
	}
	rec, _ := cs.send.appendRecord(nil, []byte("x"))
	if _, err := cs.recv.openRecord(rec); err == nil {
		t.Fatal("a client record opened with the server-to-client key")
	}
}

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client string
		version        uint8 // 0: must fail with ErrAuth on both sides
	}{
		{"same secret", "k", "k", versionSealed},
		{"no secrets", "", "", versionPlain},
		{"wrong secret", "k", "wrong", 0},
		{"client without secret", "k", "", 0},
		{"server without secret", "", "k", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testHS(tc.server, "srv")
			srv.maxFrame = 1 << 20
			cli := testHS(tc.client, "cli")
			cli.maxFrame = 2 << 20
			ss, cs, serr, cerr, _, _ := runHandshake(t, srv, cli)
			if tc.version == 0 {
				if !errors.Is(serr, ErrAuth) || !errors.Is(cerr, ErrAuth) {
					t.Fatalf("server %v, client %v; want ErrAuth on both", serr, cerr)
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("server %v, client %v", serr, cerr)
			}
			if ss.peer != (peerInfo{id: "cli", addr: "10.0.0.2:7000", maxFrame: 2 << 20}) {
				t.Fatalf("server learned %+v", ss.peer)
			}
			if cs.peer != (peerInfo{id: "srv", addr: "srv:1", maxFrame: 1 << 20}) {
				t.Fatalf("client learned %+v", cs.peer)
			}
			if ss.version != tc.version || cs.version != tc.version {
				t.Fatalf("versions %d/%d, want %d", ss.version, cs.version, tc.version)
			}
			if tc.version == versionPlain {
				if ss.send != nil || cs.send != nil {
					t.Fatal("keys on a version 1 connection")
				}
				return
			}
			checkKeys(t, ss, cs)
		})
	}
}

// Two handshakes with the same secret get different keys: they come from
// fresh nonces and ephemeral key shares.
func TestHandshakeFreshKeys(t *testing.T) {
	ss1, _, _, _, _, _ := runHandshake(t, testHS("k", "s"), testHS("k", "c"))
	ss2, _, _, _, _, _ := runHandshake(t, testHS("k", "s"), testHS("k", "c"))
	rec, _ := ss1.send.appendRecord(nil, []byte("x"))
	if _, err := ss2.send.openRecord(rec); err == nil {
		t.Fatal("two connections share a key")
	}
}

// futureServer announces version 3 and refuses our version.
func futureServer(rw io.ReadWriter) error {
	shb := appendServerHello(nil, serverHello{version: 3, maxFrame: 16 << 20})
	if err := writeHandshakeMsg(rw, shb); err != nil {
		return err
	}
	if _, err := readHandshakeMsg(rw); err != nil {
		return err
	}
	return writeHandshakeMsg(rw, []byte{statusBadVersion})
}

// expectBadVersion is a client that reads the server hello, sends
// hello(server hello) and expects a "bad version" answer.
func expectBadVersion(hello func(shb []byte) []byte) func(io.ReadWriter) error {
	return func(rw io.ReadWriter) error {
		shb, err := readHandshakeMsg(rw)
		if err != nil {
			return err
		}
		if err := writeHandshakeMsg(rw, hello(shb)); err != nil {
			return err
		}
		ab, err := readHandshakeMsg(rw)
		if err != nil {
			return err
		}
		if len(ab) != 1 || ab[0] != statusBadVersion {
			return errors.New("answer is not statusBadVersion")
		}
		return nil
	}
}

// pipeWith runs peer on one end of a pipe while f runs on the other.
func pipeWith(peer func(io.ReadWriter) error, f func(io.ReadWriter) error) (peerErr, err error) {
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		peerErr = peer(a)
		a.Close()
	}()
	err = f(b)
	b.Close()
	<-done
	return peerErr, err
}

// Issue 17: versions are checked at the handshake; a mismatch is a typed
// error naming both versions, never garbage. Without a secret this release
// speaks version 1 and works with the previous one both ways; with a
// secret it requires version 2, which the previous release refuses.
func TestHandshakeVersions(t *testing.T) {
	wantVersion := func(t *testing.T, err error, local, peer uint8) {
		t.Helper()
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Local != local || ve.Peer != peer || !errors.Is(err, ErrVersion) {
			t.Fatalf("error %v, want a *VersionError local %d peer %d", err, local, peer)
		}
		for _, v := range []uint8{local, peer} {
			if !strings.Contains(err.Error(), "version "+string('0'+rune(v))) {
				t.Fatalf("error %q does not name version %d", err, v)
			}
		}
	}
	client := func(secret string) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) error { _, err := testHS(secret, "new").client(rw, "peer:1"); return err }
	}
	server := func(secret string) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) error { _, err := testHS(secret, "new").server(rw, nil); return err }
	}

	t.Run("no secret: new client, old server", func(t *testing.T) {
		perr, err := pipeWith(func(rw io.ReadWriter) error { return oldServer(rw, nil) }, client(""))
		if perr != nil || err != nil {
			t.Fatalf("old server %v, new client %v", perr, err)
		}
	})
	t.Run("no secret: old client, new server", func(t *testing.T) {
		perr, err := pipeWith(func(rw io.ReadWriter) error { return oldClient(rw, nil) }, server(""))
		if perr != nil || err != nil {
			t.Fatalf("old client %v, new server %v", perr, err)
		}
	})
	t.Run("secret: new client, old server", func(t *testing.T) {
		_, err := pipeWith(func(rw io.ReadWriter) error { return oldServer(rw, []byte("k")) }, client("k"))
		wantVersion(t, err, 2, 1)
		if !strings.Contains(err.Error(), "unencrypted") {
			t.Fatalf("error %q does not say why version 1 is refused", err)
		}
	})
	t.Run("secret: old client, new server", func(t *testing.T) {
		// The old release reads our version in the server hello and stops
		// (its own error names both versions); we see it hang up.
		perr, err := pipeWith(func(rw io.ReadWriter) error { return oldClient(rw, []byte("k")) }, server("k"))
		if perr == nil || err == nil {
			t.Fatalf("old client %v, new server %v; want both to fail", perr, err)
		}
		if !strings.Contains(err.Error(), "older release") || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("new server's error %q does not point at an older peer", err)
		}
	})
	t.Run("secret: version 1 client with the secret", func(t *testing.T) {
		// Not the old release (it never sends a hello to a version 2
		// server), but whoever does gets a clear refusal.
		perr, err := pipeWith(expectBadVersion(func(shb []byte) []byte {
			ch := clientHello{version: versionPlain, maxFrame: 16 << 20, id: "v1", addr: "v1:1"}
			ch.mac = mac([]byte("k"), clientTagV1, shb, appendClientHelloBody(nil, ch))
			return appendClientHello(nil, ch)
		}), server("k"))
		if perr != nil {
			t.Fatal(perr)
		}
		wantVersion(t, err, 2, 1)
	})
	t.Run("newer server", func(t *testing.T) {
		_, err := pipeWith(futureServer, client("k"))
		wantVersion(t, err, 2, 3)
		if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("error %q does not say the peer is newer", err)
		}
	})
	t.Run("newer client", func(t *testing.T) {
		perr, err := pipeWith(expectBadVersion(func([]byte) []byte {
			return append(append(magic[:], 3), make([]byte, 200)...) // a layout we cannot know
		}), server("k"))
		if perr != nil {
			t.Fatal(perr)
		}
		wantVersion(t, err, 2, 3)
	})
}

func TestHandshakeMessages(t *testing.T) {
	sh := serverHello{version: 1, maxFrame: 1234}
	sh.nonce[0], sh.nonce[31] = 1, 2
	if got, err := parseServerHello(appendServerHello(nil, sh)); err != nil || got != sh {
		t.Fatalf("server hello: %+v, %v", got, err)
	}
	for _, v := range []uint8{versionPlain, versionSealed} {
		ch := clientHello{version: v, maxFrame: 99, id: "node-1", addr: ""}
		ch.mac[5] = 9
		if v == versionSealed {
			ch.share[3] = 7
		}
		if got, err := parseClientHello(appendClientHello(nil, ch)); err != nil || got != ch {
			t.Fatalf("client hello v%d: %+v, %v", v, got, err)
		}
		accepted := serverAnswer{version: v, status: statusAccepted, id: "s"}
		if v == versionSealed {
			accepted.share[31] = 1
		}
		for _, a := range []serverAnswer{accepted, {version: v, status: statusRejected}, {version: v, status: statusBadVersion}} {
			if got, err := parseServerAnswer(appendServerAnswer(nil, a), v); err != nil || got != a {
				t.Fatalf("answer %+v: %+v, %v", a, got, err)
			}
		}
	}
	ch := clientHello{version: 1, maxFrame: 99, id: "node-1", addr: ""}
	ch2 := clientHello{version: 2, maxFrame: 99, id: "node-1", addr: "a:1"}
	answer := func(v uint8) func([]byte) error {
		return func(b []byte) error { _, err := parseServerAnswer(b, v); return err }
	}
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		in    []byte
	}{
		{"short server hello", func(b []byte) error { _, err := parseServerHello(b); return err }, appendServerHello(nil, sh)[:10]},
		{"bad magic", func(b []byte) error { _, err := parseServerHello(b); return err }, append([]byte("XYZ"), appendServerHello(nil, sh)[3:]...)},
		{"server hello version 0", func(b []byte) error { _, err := parseServerHello(b); return err }, appendServerHello(nil, serverHello{})},
		{"client hello without id", func(b []byte) error { _, err := parseClientHello(b); return err }, appendClientHello(nil, clientHello{version: 1})},
		{"client hello with trailing byte", func(b []byte) error { _, err := parseClientHello(b); return err }, append(appendClientHello(nil, ch), 0)},
		{"client id overruns", func(b []byte) error { _, err := parseClientHello(b); return err }, appendClientHello(nil, ch)[:45]},
		{"client hello v2 without share", func(b []byte) error { _, err := parseClientHello(b); return err }, withVersion(appendClientHello(nil, clientHello{version: 1, id: "x", addr: "a:1"}), 2)},
		{"client hello v2 cut in share", func(b []byte) error { _, err := parseClientHello(b); return err }, appendClientHello(nil, ch2)[:len(appendClientHello(nil, ch2))-macSize-1]},
		{"client hello version 3", func(b []byte) error { _, err := parseClientHello(b); return err }, append([]byte("QKV\x03"), make([]byte, 100)...)},
		{"empty answer", answer(1), nil},
		{"rejection with payload", answer(1), []byte{statusRejected, 0}},
		{"accepted without proof", answer(1), []byte{statusAccepted, 1, 'x'}},
		{"v2 accepted without share", answer(2), appendServerAnswer(nil, serverAnswer{version: 1, status: statusAccepted, id: "s"})},
	} {
		if err := tc.parse(tc.in); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", tc.name, err)
		}
	}
	if _, err := readHandshakeMsg(bytes.NewReader([]byte{0, 0, 4, 1})); !errors.Is(err, ErrProtocol) {
		t.Errorf("oversize handshake message: %v", err)
	}
}

// withVersion returns b with its version byte set to v.
func withVersion(b []byte, v uint8) []byte {
	b = bytes.Clone(b)
	b[3] = v
	return b
}

// A client that offers a low-order X25519 point (the all-zero share makes
// the shared secret zero) is refused, even with the secret.
func TestHandshakeRejectsBadKeyShare(t *testing.T) {
	perr, err := pipeWith(func(rw io.ReadWriter) error {
		shb, err := readHandshakeMsg(rw)
		if err != nil {
			return err
		}
		ch := clientHello{version: versionSealed, maxFrame: 16 << 20, id: "evil", addr: "e:1"} // share all zero
		ch.mac = mac([]byte("k"), clientTagV2, shb, appendClientHelloBody(nil, ch))
		return writeHandshakeMsg(rw, appendClientHello(nil, ch))
	}, func(rw io.ReadWriter) error { _, err := testHS("k", "srv").server(rw, nil); return err })
	if perr != nil {
		t.Fatal(perr)
	}
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "key share") {
		t.Fatalf("server: %v, want a bad key share error", err)
	}
}

// FuzzHandshake feeds arbitrary bytes to the handshake parsers: no panics,
// errors are ErrProtocol, and whatever parses re-encodes to the same bytes
// (the encoding is canonical). It also plays a server (with and without a
// secret) against arbitrary client hellos and a client against arbitrary
// server messages: none of them may complete, since nobody can forge the
// MAC over a fresh nonce.
func FuzzHandshake(f *testing.F) {
	ch := clientHello{version: 1, maxFrame: 1 << 20, id: "n1", addr: "127.0.0.1:1"}
	f.Add(appendServerHello(nil, serverHello{version: 1, maxFrame: 1 << 20}))
	f.Add(appendClientHello(nil, ch))
	ch.version = 2
	f.Add(appendClientHello(nil, ch))
	f.Add(appendServerAnswer(nil, serverAnswer{version: 1, status: statusAccepted, id: "n2"}))
	f.Add(appendServerAnswer(nil, serverAnswer{version: 2, status: statusAccepted, id: "n2"}))
	f.Add([]byte{statusRejected})
	f.Add([]byte{})
	f.Add([]byte(strings.Repeat("\xff", 80)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parseServerHello(b); err == nil {
			if !bytes.Equal(appendServerHello(nil, h), b) {
				t.Fatalf("server hello not canonical")
			}
		} else if !errors.Is(err, ErrProtocol) {
			t.Fatalf("server hello: %v", err)
		}
		if h, err := parseClientHello(b); err == nil {
			if !bytes.Equal(appendClientHello(nil, h), b) {
				t.Fatalf("client hello not canonical")
			}
		} else if !errors.Is(err, ErrProtocol) {
			t.Fatalf("client hello: %v", err)
		}
		for _, v := range []uint8{versionPlain, versionSealed} {
			if a, err := parseServerAnswer(b, v); err == nil {
				if !bytes.Equal(appendServerAnswer(nil, a), b) {
					t.Fatalf("answer v%d not canonical", v)
				}
			} else if !errors.Is(err, ErrProtocol) {
				t.Fatalf("answer v%d: %v", v, err)
			}
		}
		msg := append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
		for _, secret := range []string{"secret", ""} {
			rw := readWriter{bytes.NewReader(msg), new(bytes.Buffer)}
			if _, err := testHS(secret, "s").server(rw, nil); err == nil {
				t.Fatalf("server (secret %q) accepted %q", secret, b)
			}
			if secret != "" { // a server in the upgrade window, which also accepts version 1
				hs := testHS(secret, "s")
				hs.acceptV1 = true
				rw = readWriter{bytes.NewReader(msg), new(bytes.Buffer)}
				if _, err := hs.server(rw, nil); err == nil {
					t.Fatalf("accepting server accepted %q", b)
				}
			}
			// The client against b as the server hello, then b as the answer.
			hello := appendServerHello(nil, serverHello{version: 2, maxFrame: 1 << 20})
			in := append(binary.BigEndian.AppendUint32(nil, uint32(len(hello))), hello...)
			rw = readWriter{bytes.NewReader(append(in, msg...)), new(bytes.Buffer)}
			if _, err := testHS(secret, "c").client(rw, "x:1"); err == nil {
				t.Fatalf("client (secret %q) accepted %q", secret, b)
			}
		}
	})
}

type readWriter struct {
	r *bytes.Reader
	w *bytes.Buffer
}

func (rw readWriter) Read(p []byte) (int, error)  { return rw.r.Read(p) }
func (rw readWriter) Write(p []byte) (int, error) { return rw.w.Write(p) }
