package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
)

// runHandshake runs both sides over an in-memory pipe.
func runHandshake(t *testing.T, serverSecret, clientSecret string) (server, client peerInfo, serr, cerr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		server, serr = serverHandshake(a, []byte(serverSecret), "srv", 1<<20)
		if serr != nil {
			a.Close()
		}
	}()
	client, cerr = clientHandshake(b, []byte(clientSecret), "cli", "10.0.0.1:7000", 2<<20)
	if cerr != nil {
		b.Close()
	}
	<-done
	return server, client, serr, cerr
}

func TestHandshake(t *testing.T) {
	s, c, serr, cerr := runHandshake(t, "k", "k")
	if serr != nil || cerr != nil {
		t.Fatalf("server %v, client %v", serr, cerr)
	}
	if s != (peerInfo{id: "cli", addr: "10.0.0.1:7000", maxFrame: 2 << 20}) {
		t.Fatalf("server learned %+v", s)
	}
	if c != (peerInfo{id: "srv", addr: "10.0.0.1:7000", maxFrame: 1 << 20}) {
		t.Fatalf("client learned %+v", c)
	}
	_, _, serr, cerr = runHandshake(t, "k", "wrong")
	if !errors.Is(serr, ErrAuth) || !errors.Is(cerr, ErrAuth) {
		t.Fatalf("wrong secret: server %v, client %v", serr, cerr)
	}
}

func TestHandshakeMessages(t *testing.T) {
	sh := serverHello{version: 1, maxFrame: 1234}
	sh.nonce[0], sh.nonce[31] = 1, 2
	if got, err := parseServerHello(appendServerHello(nil, sh)); err != nil || got != sh {
		t.Fatalf("server hello: %+v, %v", got, err)
	}
	ch := clientHello{version: 1, maxFrame: 99, id: "node-1", addr: ""}
	ch.mac[5] = 9
	if got, err := parseClientHello(appendClientHello(nil, ch)); err != nil || got != ch {
		t.Fatalf("client hello: %+v, %v", got, err)
	}
	for _, a := range []serverAnswer{{status: statusAccepted, id: "s"}, {status: statusRejected}, {status: statusBadVersion}} {
		if got, err := parseServerAnswer(appendServerAnswer(nil, a)); err != nil || got != a {
			t.Fatalf("answer %+v: %+v, %v", a, got, err)
		}
	}
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		in    []byte
	}{
		{"short server hello", func(b []byte) error { _, err := parseServerHello(b); return err }, appendServerHello(nil, sh)[:10]},
		{"bad magic", func(b []byte) error { _, err := parseServerHello(b); return err }, append([]byte("XYZ"), appendServerHello(nil, sh)[3:]...)},
		{"client hello without id", func(b []byte) error { _, err := parseClientHello(b); return err }, appendClientHello(nil, clientHello{})},
		{"client hello with trailing byte", func(b []byte) error { _, err := parseClientHello(b); return err }, append(appendClientHello(nil, ch), 0)},
		{"client id overruns", func(b []byte) error { _, err := parseClientHello(b); return err }, appendClientHello(nil, ch)[:45]},
		{"empty answer", func(b []byte) error { _, err := parseServerAnswer(b); return err }, nil},
		{"rejection with payload", func(b []byte) error { _, err := parseServerAnswer(b); return err }, []byte{statusRejected, 0}},
		{"accepted without proof", func(b []byte) error { _, err := parseServerAnswer(b); return err }, []byte{statusAccepted, 1, 'x'}},
	} {
		if err := tc.parse(tc.in); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want ErrProtocol", tc.name, err)
		}
	}
	if _, err := readHandshakeMsg(bytes.NewReader([]byte{0, 0, 4, 1})); !errors.Is(err, ErrProtocol) {
		t.Errorf("oversize handshake message: %v", err)
	}
}

// FuzzHandshake feeds arbitrary bytes to the three handshake parsers: no
// panics, errors are ErrProtocol, and whatever parses re-encodes to the
// same bytes (the encoding is canonical). It also plays the server
// against arbitrary client bytes.
func FuzzHandshake(f *testing.F) {
	ch := clientHello{version: 1, maxFrame: 1 << 20, id: "n1", addr: "127.0.0.1:1"}
	f.Add(appendServerHello(nil, serverHello{version: 1, maxFrame: 1 << 20}))
	f.Add(appendClientHello(nil, ch))
	f.Add(appendServerAnswer(nil, serverAnswer{status: statusAccepted, id: "n2"}))
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
		if a, err := parseServerAnswer(b); err == nil {
			if !bytes.Equal(appendServerAnswer(nil, a), b) {
				t.Fatalf("answer not canonical")
			}
		} else if !errors.Is(err, ErrProtocol) {
			t.Fatalf("answer: %v", err)
		}
		// The server side against these bytes as the client's hello: it
		// must refuse them (nobody can forge the MAC) without panicking.
		in := append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
		rw := readWriter{bytes.NewReader(in), new(bytes.Buffer)}
		if _, err := serverHandshake(rw, []byte("secret"), "s", 1<<20); err == nil {
			t.Fatalf("server accepted %q", b)
		}
	})
}

type readWriter struct {
	r *bytes.Reader
	w *bytes.Buffer
}

func (rw readWriter) Read(p []byte) (int, error)  { return rw.r.Read(p) }
func (rw readWriter) Write(p []byte) (int, error) { return rw.w.Write(p) }
