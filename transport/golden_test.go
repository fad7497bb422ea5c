package transport

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the version 2 golden files in testdata/golden (never the version 1 ones)")

// The golden files guard the wire format against accidental change. The
// v1-* files were written by the release before encryption (commit
// 8b71df9) and must never be regenerated: they are what that release
// sends and expects. The v2-* files are this release's, rewritten with
// -update only when the protocol version changes too.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".hex")
	if *update && strings.HasPrefix(name, "v2-") {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create v2 files)", err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file:\n got %x\nwant %x", name, got, want)
	}
}

// payloads strips the length prefix of each recorded handshake message.
func payloads(t *testing.T, writes [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, w := range writes {
		m, err := readHandshakeMsg(bytes.NewReader(w))
		if err != nil {
			t.Fatalf("recorded message: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// goldenHS runs a handshake with fixed "randomness": the server's nonce is
// 00..1f and its key 20..3f, the client's nonce 20..3f and its key 40..5f.
func goldenHS(t *testing.T, secret string) (ss, cs session, sw, cw [][]byte) {
	t.Helper()
	srv := handshaker{secret: []byte(secret), id: "server", maxFrame: 16 << 20, rand: &seqRand{0x00}}
	cli := handshaker{secret: []byte(secret), id: "client", addr: "10.0.0.2:7000", maxFrame: 16 << 20, rand: &seqRand{0x20}}
	ss, cs, serr, cerr, sww, cww := runHandshake(t, srv, cli)
	if serr != nil || cerr != nil {
		t.Fatalf("server %v, client %v", serr, cerr)
	}
	sw, cw = payloads(t, sww), payloads(t, cww)
	if len(sw) != 2 || len(cw) != 1 {
		t.Fatalf("server wrote %d messages, client %d; want 2 and 1", len(sw), len(cw))
	}
	return ss, cs, sw, cw
}

// goldenFrame is the frame of the golden files: a request with a budget.
var goldenFrame = appendFrame(nil, header{kind: kindRequest, method: 3, id: 42, budget: 1500}, []byte("distinctive body"))

func TestGoldenV1(t *testing.T) {
	// Without a secret this release speaks version 1 byte for byte as the
	// previous release did.
	_, _, sw, cw := goldenHS(t, "")
	golden(t, "v1-server-hello", sw[0])
	golden(t, "v1-nosecret-client-hello", cw[0])
	golden(t, "v1-nosecret-server-answer", sw[1])
	golden(t, "v1-frame", goldenFrame)

	// The previous release with a secret: this release sends these only
	// in the upgrade window (AcceptV1Peers, with its nonces marked), but
	// its encoders and MAC layout must still produce them, as a record of
	// what a version 1 peer sends (and so what the version check sees).
	var nS, nC [nonceSize]byte
	(&seqRand{0x00}).Read(nS[:])
	(&seqRand{0x20}).Read(nC[:])
	secret := []byte("golden secret")
	shb := appendServerHello(nil, serverHello{version: versionPlain, nonce: nS, maxFrame: 16 << 20})
	ch := clientHello{version: versionPlain, nonce: nC, maxFrame: 16 << 20, id: "client", addr: "10.0.0.2:7000"}
	ch.mac = mac(secret, clientTagV1, shb, appendClientHelloBody(nil, ch))
	chb := appendClientHello(nil, ch)
	a := serverAnswer{version: versionPlain, status: statusAccepted, id: "server"}
	a.mac = mac(secret, serverTagV1, chb, shb, appendServerAnswerBody(nil, a))
	golden(t, "v1-server-hello", shb)
	golden(t, "v1-secret-client-hello", chb)
	golden(t, "v1-secret-server-answer", appendServerAnswer(nil, a))
}

func TestGoldenV2(t *testing.T) {
	ss, cs, sw, cw := goldenHS(t, "golden secret")
	golden(t, "v2-server-hello", sw[0])
	golden(t, "v2-client-hello", cw[0])
	golden(t, "v2-server-answer", sw[1])
	// The server hello keeps version 1's layout: only the version differs,
	// so a node of the previous release reads and names our version.
	v1hello := appendServerHello(nil, serverHello{version: versionPlain, nonce: [nonceSize]byte(sw[0][4 : 4+nonceSize]), maxFrame: 16 << 20})
	if !bytes.Equal(withVersion(v1hello, versionSealed), sw[0]) {
		t.Fatalf("version 2 server hello %x is not the version 1 layout", sw[0])
	}

	// The first record from client to server, carrying the golden frame.
	var wire bytes.Buffer
	w := newSealedWriter(&wire, cs.send)
	if _, err := w.Write(goldenFrame); err != nil {
		t.Fatal(err)
	}
	golden(t, "v2-record", wire.Bytes())
	if bytes.Contains(wire.Bytes(), []byte("distinctive")) {
		t.Fatal("the record carries the body in the clear")
	}
	h, body, err := readFrame(bufio.NewReader(newSealedReader(bytes.NewReader(wire.Bytes()), ss.recv, nil)), 16<<20)
	if err != nil || h != (header{kind: kindRequest, method: 3, id: 42, budget: 1500}) || string(body) != "distinctive body" {
		t.Fatalf("server read %+v %q, %v", h, body, err)
	}
}

// The hellos of the upgrade window (AcceptV1Peers): an accepting server's
// version 1 hello with the mark, and an accepting client's version 1 hello
// to an unmarked (old release) server, with the mark.
func TestGoldenUpgradeWindow(t *testing.T) {
	srv := handshaker{secret: []byte("golden secret"), id: "server", maxFrame: 16 << 20, rand: &seqRand{0x00}, acceptV1: true}
	cli := handshaker{secret: []byte("golden secret"), id: "client", addr: "10.0.0.2:7000", maxFrame: 16 << 20, rand: &seqRand{0x20}, acceptV1: true}
	ss, cs, serr, cerr, sw, _ := runHandshake(t, srv, cli)
	if serr != nil || cerr != nil || ss.version != versionSealed || cs.version != versionSealed {
		t.Fatalf("server %v (v%d), client %v (v%d)", serr, ss.version, cerr, cs.version)
	}
	golden(t, "v2-window-server-hello", payloads(t, sw)[0])

	var nS [nonceSize]byte
	(&seqRand{0x00}).Read(nS[:])
	oldHello := appendServerHello(nil, serverHello{version: versionPlain, nonce: nS, maxFrame: 16 << 20})
	var chb []byte
	_, _ = pipeWith(func(rw io.ReadWriter) error {
		if err := writeHandshakeMsg(rw, oldHello); err != nil {
			return err
		}
		var err error
		chb, err = readHandshakeMsg(rw)
		return err
	}, func(rw io.ReadWriter) error {
		cli.rand = &seqRand{0x20}
		_, err := cli.client(rw, "old:1")
		return err
	})
	golden(t, "v2-window-client-hello", chb)
}
