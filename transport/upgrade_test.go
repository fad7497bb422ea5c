package transport

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Issue 17, rolling upgrade: which version each pair of sides ends up
// speaking, against the handshake of the release before encryption as it
// was (oldrelease_test.go).
func TestUpgradeHandshakeMatrix(t *testing.T) {
	newHS := func(secret string, acceptV1 bool) handshaker {
		hs := testHS(secret, "new")
		hs.acceptV1 = acceptV1
		return hs
	}
	newClient := func(secret string, acceptV1 bool, got *session) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) (err error) {
			*got, err = newHS(secret, acceptV1).client(rw, "peer:1")
			return err
		}
	}
	newServer := func(secret string, acceptV1 bool, got *session) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) (err error) {
			*got, err = newHS(secret, acceptV1).server(rw, nil)
			return err
		}
	}
	oldS := func(secret string) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) error { return oldServer(rw, []byte(secret)) }
	}
	oldC := func(secret string) func(io.ReadWriter) error {
		return func(rw io.ReadWriter) error { return oldClient(rw, []byte(secret)) }
	}
	// bothPlain runs peer against the new side ours, whose session is *s:
	// both must succeed, in a plain version 1 session.
	bothPlain := func(t *testing.T, peer, ours func(io.ReadWriter) error, s *session) {
		t.Helper()
		perr, err := pipeWith(peer, ours)
		if perr != nil || err != nil {
			t.Fatalf("peer %v, new side %v", perr, err)
		}
		if s.version != versionPlain || s.send != nil || s.recv != nil {
			t.Fatalf("session version %d (keys %v), want a plain version 1 session", s.version, s.send != nil)
		}
	}

	t.Run("accepting client, old server: version 1", func(t *testing.T) {
		var s session
		bothPlain(t, oldS("k"), newClient("k", true, &s), &s)
	})
	t.Run("old client, accepting server: version 1", func(t *testing.T) {
		var s session
		bothPlain(t, oldC("k"), newServer("k", true, &s), &s)
		if s.peer.id != "old" || s.peer.addr != "old:1" {
			t.Fatalf("server learned %+v", s.peer)
		}
	})
	for _, tc := range []struct {
		name     string
		cli, srv bool // acceptV1
	}{{"both accepting", true, true}, {"client accepting", true, false}, {"server accepting", false, true}, {"neither", false, false}} {
		t.Run("two new nodes, "+tc.name+": version 2", func(t *testing.T) {
			var ss, cs session
			perr, err := pipeWith(newServer("k", tc.srv, &ss), newClient("k", tc.cli, &cs))
			if perr != nil || err != nil {
				t.Fatalf("server %v, client %v", perr, err)
			}
			if ss.version != versionSealed || cs.version != versionSealed {
				t.Fatalf("versions %d/%d, want 2", ss.version, cs.version)
			}
			checkKeys(t, ss, cs)
		})
	}
	t.Run("new client without the setting, old server: refused by name", func(t *testing.T) {
		var s session
		perr, err := pipeWith(oldS("k"), newClient("k", false, &s))
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Local != versionSealed || ve.Peer != versionPlain {
			t.Fatalf("new client: %v, want a *VersionError local 2 peer 1", err)
		}
		if !strings.Contains(err.Error(), "accept-v1-peers") {
			t.Fatalf("error %q does not name the upgrade setting", err)
		}
		if !errors.Is(perr, ErrProtocol) {
			t.Fatalf("old server: %v, want its malformed-hello error", perr)
		}
	})
	t.Run("old client, new server without the setting: both refuse", func(t *testing.T) {
		var s session
		perr, err := pipeWith(oldC("k"), newServer("k", false, &s))
		if perr == nil || !strings.Contains(perr.Error(), "version 2") {
			t.Fatalf("old client: %v, want its version error naming version 2", perr)
		}
		if err == nil || !strings.Contains(err.Error(), "older release") {
			t.Fatalf("new server: %v", err)
		}
	})
	// Both sides refuse the other's proof.
	for _, tc := range []struct {
		name       string
		peer, ours func(io.ReadWriter) error
	}{
		{"old client with another secret", oldC("other"), newServer("k", true, new(session))},
		{"old server with another secret", oldS("other"), newClient("k", true, new(session))},
		// Its unmarked version 1 hello looks like the old release's; the
		// client's proof under the secret then fails there.
		{"accepting client, new server without a secret", newServer("", false, new(session)), newClient("k", true, new(session))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perr, err := pipeWith(tc.peer, tc.ours)
			if !errors.Is(perr, ErrAuth) || !errors.Is(err, ErrAuth) {
				t.Fatalf("peer %v, new side %v; want ErrAuth on both", perr, err)
			}
		})
	}
	t.Run("without secrets nothing changes", func(t *testing.T) {
		var s session
		bothPlain(t, oldS(""), newClient("", false, &s), &s)
	})
}

// The marks are where the doc says, and only where it says: the hellos
// of a node without the setting are unchanged (the golden files check
// their bytes), an accepting server's hello is a version 1 hello with the
// mark, and an accepting client's version 1 hello carries it too.
func TestUpgradeMarks(t *testing.T) {
	var n [nonceSize]byte
	if markedV2(n) {
		t.Fatal("a zero nonce is marked")
	}
	markV2(&n)
	if !markedV2(n) || !bytes.Equal(n[:nonceSize-len(v2Mark)], make([]byte, nonceSize-len(v2Mark))) {
		t.Fatalf("markV2 wrote %x", n)
	}
	for range 1000 {
		var r [nonceSize]byte
		rand.Read(r[:])
		if markedV2(r) {
			t.Fatal("a random nonce is marked")
		}
	}

	// An accepting server's hello, as the old client reads it.
	hs := testHS("k", "srv")
	hs.acceptV1 = true
	var shb []byte
	_, _ = pipeWith(func(rw io.ReadWriter) error {
		var err error
		shb, err = readHandshakeMsg(rw)
		return err
	}, func(rw io.ReadWriter) error { _, err := hs.server(rw, nil); return err })
	sh, err := parseServerHello(shb)
	if err != nil || sh.version != versionPlain || !markedV2(sh.nonce) {
		t.Fatalf("accepting server hello %+v, %v: want version 1, marked", sh, err)
	}
	// Without the setting, or without a secret, nothing is marked.
	for _, hs := range []handshaker{testHS("k", "srv"), testHS("", "srv")} {
		_, _ = pipeWith(func(rw io.ReadWriter) error {
			var err error
			shb, err = readHandshakeMsg(rw)
			return err
		}, func(rw io.ReadWriter) error { _, err := hs.server(rw, nil); return err })
		if sh, _ := parseServerHello(shb); markedV2(sh.nonce) {
			t.Fatalf("server hello %+v marked without the setting", sh)
		}
	}

	// An accepting client's version 1 hello to an old server.
	var chb []byte
	_, _ = pipeWith(func(rw io.ReadWriter) error {
		if err := writeHandshakeMsg(rw, appendServerHello(nil, serverHello{version: versionPlain, maxFrame: 16 << 20})); err != nil {
			return err
		}
		var err error
		chb, err = readHandshakeMsg(rw)
		return err
	}, func(rw io.ReadWriter) error {
		hs := testHS("k", "cli")
		hs.acceptV1 = true
		_, err := hs.client(rw, "x:1")
		return err
	})
	ch, err := oldParseClientHello(chb)
	if err != nil || ch.version != versionPlain || !markedV2(ch.nonce) {
		t.Fatalf("accepting client hello %+v, %v: want an old-release version 1 hello, marked", ch, err)
	}
}

// mitm relays a handshake between a client and a server, letting edit
// change the server's first message (its hello) and the client's first
// message (its hello) on the way. nil edits relay as is.
func mitm(t *testing.T, server, client handshaker, editServerHello, editClientHello func([]byte) []byte) (ss, cs session, serr, cerr error) {
	t.Helper()
	cA, cB := net.Pipe() // client <-> attacker
	sA, sB := net.Pipe() // attacker <-> server
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range []net.Conn{cA, cB, sA, sB} {
		c.SetDeadline(deadline)
	}
	done := make(chan struct{}, 4)
	relay := func(from, to net.Conn, edit func([]byte) []byte) {
		defer func() { done <- struct{}{} }()
		for first := true; ; first = false {
			m, err := readHandshakeMsg(from)
			if err != nil {
				to.Close()
				return
			}
			if first && edit != nil {
				m = edit(bytes.Clone(m))
			}
			if writeHandshakeMsg(to, m) != nil {
				from.Close()
				return
			}
		}
	}
	go relay(sB, cB, editServerHello)
	go relay(cB, sB, editClientHello)
	go func() {
		defer func() { done <- struct{}{} }()
		ss, serr = server.server(sA, nil)
		sA.Close()
	}()
	cs, cerr = client.client(cA, "srv:1")
	cA.Close()
	for range 3 {
		<-done
	}
	return ss, cs, serr, cerr
}

// An active attacker between two nodes of this release, without the
// secret, cannot make them speak version 1, whatever their settings: a
// stripped mark or a rewritten version breaks both proofs, and an
// accepting server refuses version 1 from a marked client.
func TestUpgradeNoDowngrade(t *testing.T) {
	strip := func(b []byte) []byte { // the server hello without its mark, as an old node's
		b[3] = versionPlain
		rand.Read(b[4+nonceSize-len(v2Mark) : 4+nonceSize])
		return b
	}
	for _, tc := range []struct {
		name     string
		cli, srv bool
	}{{"both accepting", true, true}, {"client accepting", true, false}, {"server accepting", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := testHS("k", "srv"), testHS("k", "cli")
			srv.acceptV1, cli.acceptV1 = tc.srv, tc.cli
			ss, cs, serr, cerr := mitm(t, srv, cli, strip, nil)
			if serr == nil || cerr == nil {
				t.Fatalf("server %v (version %d), client %v (version %d): a handshake through the attacker completed", serr, ss.version, cerr, cs.version)
			}
			if !errors.Is(serr, ErrAuth) && !errors.Is(serr, ErrProtocol) {
				t.Fatalf("server: %v", serr)
			}
			// Unmodified, the same pair speaks version 2.
			ss, cs, serr, cerr = mitm(t, srv, cli, nil, nil)
			if serr != nil || cerr != nil || ss.version != versionSealed || cs.version != versionSealed {
				t.Fatalf("relayed as is: server %v (v%d), client %v (v%d)", serr, ss.version, cerr, cs.version)
			}
		})
	}
	t.Run("a marked version 1 hello proving the secret", func(t *testing.T) {
		// What a client of this release would send if its view of the
		// server hello were unmarked: the accepting server refuses it even
		// though the proof holds.
		srv := testHS("k", "srv")
		srv.acceptV1 = true
		perr, err := pipeWith(expectBadVersion(func(shb []byte) []byte {
			ch := clientHello{version: versionPlain, maxFrame: 16 << 20, id: "cli", addr: "c:1"}
			rand.Read(ch.nonce[:])
			markV2(&ch.nonce)
			ch.mac = mac([]byte("k"), clientTagV1, shb, appendClientHelloBody(nil, ch))
			return appendClientHello(nil, ch)
		}), func(rw io.ReadWriter) error { _, err := srv.server(rw, nil); return err })
		if perr != nil {
			t.Fatal(perr)
		}
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "never talk unencrypted") {
			t.Fatalf("server: %v", err)
		}
	})
}

// Over real sockets, with AcceptV1Peers: a node of the release before
// encryption calls this one and is called by it, frames in the clear;
// the transport says so while such a connection is open and when the last
// one closes.
func TestAcceptV1PeersTCP(t *testing.T) {
	cfg, lb := testConfig(t, "new", echo)
	cfg.AcceptV1Peers = true
	cfg.legacyReminder = 20 * time.Millisecond
	// One connection per peer: a second one, dialed in the background to
	// grow the pool, could reach the old peer after Forget below (Forget
	// does not stop a dial in flight) and leave a version 1 connection.
	cfg.ConnsPerPeer = 1
	tr := listen(t, cfg)
	lb.waitLog(t, "accept-v1-peers is on")
	old := &oldPeer{secret: cfg.Secret, served: make(chan []byte, 4)}

	// Old caller, new handler.
	reply, err := old.call(tr.LocalAddr(), 7, []byte("from old"))
	if err != nil || string(reply) != "\x07from old" {
		t.Fatalf("old caller got %q, %v", reply, err)
	}
	lb.waitLog(t, "connection in transport protocol version 1")
	lb.waitLog(t, "no transport protocol version 1 connection open any more") // the old caller hung up

	// New caller, old handler: the old peer reads the request in the clear.
	ln := fakeListener(t, func(nc net.Conn) { _ = old.serve(nc) })
	reply, err = tr.Call(ctxTimeout(t, 5*time.Second), ln, 3, []byte("to old"))
	if err != nil || string(reply) != "old:to old" {
		t.Fatalf("new caller got %q, %v", reply, err)
	}
	if got := <-old.served; string(got) != "to old" {
		t.Fatalf("old peer read %q", got)
	}
	if peers := tr.LegacyPeers(); len(peers) != 1 || peers[0] != "old at "+ln {
		t.Fatalf("LegacyPeers %q, want the old peer", peers)
	}
	lb.waitLog(t, "connected to peers of the release before encryption") // the reminder
	tr.Forget(ln)
	eventually(t, "no version 1 connection", func() bool { return len(tr.LegacyPeers()) == 0 })

	// A peer of this release still speaks version 2 with it.
	ocfg, _ := testConfig(t, "other", echo)
	other := listen(t, ocfg)
	if _, err := tr.Call(ctxTimeout(t, 5*time.Second), other.LocalAddr(), 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Call(ctxTimeout(t, 5*time.Second), tr.LocalAddr(), 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if peers := tr.LegacyPeers(); len(peers) != 0 {
		t.Fatalf("LegacyPeers %q after calls between new nodes", peers)
	}
	for _, c := range []*TCP{tr, other} {
		c.mu.Lock()
		for cn := range c.conns {
			if cn.legacy {
				t.Errorf("%s: a version 1 connection with %s", c.cfg.NodeID, cn.addr)
			}
		}
		c.mu.Unlock()
	}
}

// Without the setting the old release is refused both ways, by name.
func TestOldPeerRefusedWithoutSetting(t *testing.T) {
	cfg, lb := testConfig(t, "new", echo)
	tr := listen(t, cfg)
	old := &oldPeer{secret: cfg.Secret, served: make(chan []byte, 1)}
	if _, err := old.call(tr.LocalAddr(), 1, nil); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("old caller: %v, want its version error", err)
	}
	lb.waitLog(t, "older release")
	ln := fakeListener(t, func(nc net.Conn) { _ = old.serve(nc) })
	_, err := tr.Call(ctxTimeout(t, 5*time.Second), ln, 1, nil)
	mustIs(t, err, ErrUnreachable, ErrVersion)
	if !strings.Contains(err.Error(), "version 1") || !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "accept-v1-peers") {
		t.Fatalf("error %q does not name both versions and the setting", err)
	}
	if len(old.served) != 0 {
		t.Fatal("the old peer was served a frame")
	}
}

func TestAcceptV1PeersNeedsSecret(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID, cfg.ListenAddr, cfg.AcceptV1Peers = "n", "127.0.0.1:0", true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "AcceptV1Peers needs a Secret") {
		t.Fatalf("Validate: %v", err)
	}
	cfg.Secret = []byte("k")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
