package transport

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Handshake messages (layout in doc.go). Every one travels as a uint32
// big-endian length and a payload of at most maxHandshakeMsg bytes.
//
// Protocol versions. Wire values: ONLY APPEND.
//   - 1 (plain): HMAC proofs of the secret, frames in the clear. Spoken by
//     the release before encryption, and by this one when it has no secret,
//     so that clusters without a secret upgrade with old and new nodes
//     talking to each other.
//   - 2 (sealed): the proofs also cover ephemeral X25519 keys; every frame
//     after the handshake travels in AES-256-GCM records (seal.go). Spoken
//     by this release whenever it has a secret; it refuses version 1 then,
//     since that would send frames in the clear, unless the rolling-upgrade
//     setting (Config.AcceptV1Peers) lets it speak version 1 to a peer
//     that speaks nothing else (see "Rolling upgrades" in doc.go).
//
// The server hello's layout is fixed for every version (magic, version,
// nonce, max frame), so a node of any release can read which version its
// peer speaks and name it in its error.
const (
	versionPlain  = 1
	versionSealed = 2

	nonceSize       = 32
	keyShareSize    = 32 // X25519 public key
	macSize         = sha256.Size
	maxIDLen        = 255 // node ids and addresses carry a one-byte length
	maxHandshakeMsg = 1024
	serverHelloSize = 3 + 1 + nonceSize + 4
)

var magic = [3]byte{'Q', 'K', 'V'}

// v2Mark ends the nonce of a version 1 hello (server hello or client
// hello) sent, with a secret, by a node that also speaks version 2: it
// says "I speak version 2 too". The release before encryption reads the
// nonce as opaque bytes, and every proof covers it, so it can be neither
// added nor stripped on the way; the other 24 bytes of such a nonce stay
// random. A node of the release before encryption has a 2^-64 chance per
// handshake of drawing it by accident, which costs that one connection
// (it is retried with a fresh nonce).
var v2Mark = [8]byte{'q', 'k', 'v', '/', 'v', '2', '+', 0x01}

// markV2 stamps n with v2Mark; markedV2 reports whether n carries it.
func markV2(n *[nonceSize]byte) { copy(n[nonceSize-len(v2Mark):], v2Mark[:]) }

func markedV2(n [nonceSize]byte) bool { return [8]byte(n[nonceSize-len(v2Mark):]) == v2Mark }

// Answer statuses. Wire values: ONLY APPEND.
const (
	statusAccepted   uint8 = iota + 1 // followed by the server's id (and key share) and proof
	statusRejected                    // the client's proof was wrong
	statusBadVersion                  // the server does not speak the client's version
)

// Domain-separation tags, so that no proof can be replayed as another
// (client as server, or one version's as the other's).
const (
	clientTagV1 = "quorumkv/transport/v1 client"
	serverTagV1 = "quorumkv/transport/v1 server"
	clientTagV2 = "quorumkv/transport/v2 client"
	serverTagV2 = "quorumkv/transport/v2 server"
	keysInfoV2  = "quorumkv/transport/v2 keys"
)

type serverHello struct {
	version  uint8
	nonce    [nonceSize]byte
	maxFrame uint32
}

type clientHello struct {
	version  uint8
	nonce    [nonceSize]byte
	maxFrame uint32
	id       string // the client's node id, passed to handlers as from
	addr     string // the client's advertised address, used to key Stats
	share    [keyShareSize]byte
	mac      [macSize]byte
}

type serverAnswer struct {
	version uint8 // not on the wire: the version of the hello it answers, which decides the layout
	status  uint8
	id      string // only when accepted
	share   [keyShareSize]byte
	mac     [macSize]byte
}

// peerInfo is what a handshake learns about the other side.
type peerInfo struct {
	id       string
	addr     string
	maxFrame int
}

// session is the outcome of a handshake: the peer, and for version 2 the
// keys of both directions (nil for version 1, whose frames are plain).
type session struct {
	peer       peerInfo
	version    uint8
	send, recv *aeadState
}

func appendServerHello(dst []byte, h serverHello) []byte {
	dst = append(dst, magic[:]...)
	dst = append(dst, h.version)
	dst = append(dst, h.nonce[:]...)
	return binary.BigEndian.AppendUint32(dst, h.maxFrame)
}

func parseServerHello(b []byte) (serverHello, error) {
	var h serverHello
	if len(b) != serverHelloSize || [3]byte(b[:3]) != magic {
		return h, fmt.Errorf("%w: malformed server hello", ErrProtocol)
	}
	h.version = b[3]
	copy(h.nonce[:], b[4:4+nonceSize])
	h.maxFrame = binary.BigEndian.Uint32(b[4+nonceSize:])
	if h.version == 0 {
		return h, fmt.Errorf("%w: server hello with version 0", ErrProtocol)
	}
	return h, nil
}

// appendClientHelloBody encodes everything but the MAC, which covers it.
func appendClientHelloBody(dst []byte, h clientHello) []byte {
	dst = append(dst, magic[:]...)
	dst = append(dst, h.version)
	dst = append(dst, h.nonce[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.maxFrame)
	dst = appendString(dst, h.id)
	dst = appendString(dst, h.addr)
	return appendShare(dst, h.version, h.share)
}

// appendString appends s with a one-byte length (cutString reads it); s
// is at most maxIDLen bytes.
func appendString(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s))), s...)
}

// appendShare appends the X25519 key share that version 2 messages carry
// (version 1 ones carry none).
func appendShare(dst []byte, version uint8, share [keyShareSize]byte) []byte {
	if version == versionSealed {
		dst = append(dst, share[:]...)
	}
	return dst
}

func appendClientHello(dst []byte, h clientHello) []byte {
	return append(appendClientHelloBody(dst, h), h.mac[:]...)
}

// clientHelloVersion returns the version byte of a client hello that
// starts with the magic, so that a server can refuse a version it cannot
// parse by name rather than as garbage.
func clientHelloVersion(b []byte) (uint8, bool) {
	if len(b) < 4 || [3]byte(b[:3]) != magic {
		return 0, false
	}
	return b[3], true
}

// parseClientHello decodes a version 1 or 2 client hello; other versions
// are ErrProtocol (callers check clientHelloVersion first).
func parseClientHello(b []byte) (clientHello, error) {
	var h clientHello
	bad := fmt.Errorf("%w: malformed client hello", ErrProtocol)
	const fixed = 3 + 1 + nonceSize + 4
	if len(b) < fixed+1+1+macSize || [3]byte(b[:3]) != magic {
		return h, bad
	}
	h.version = b[3]
	if h.version != versionPlain && h.version != versionSealed {
		return h, bad
	}
	copy(h.nonce[:], b[4:4+nonceSize])
	h.maxFrame = binary.BigEndian.Uint32(b[4+nonceSize:])
	rest := b[fixed:]
	id, rest, ok := cutString(rest)
	if !ok || id == "" {
		return h, bad
	}
	addr, rest, ok := cutString(rest)
	if !ok {
		return h, bad
	}
	if h.share, h.mac, ok = cutShareMAC(rest, h.version); !ok {
		return h, bad
	}
	h.id, h.addr = id, addr
	return h, nil
}

// cutShareMAC reads the end of a client hello or server answer: the key
// share (version 2 only), then the MAC, which must end rest.
func cutShareMAC(rest []byte, version uint8) (share [keyShareSize]byte, m [macSize]byte, ok bool) {
	if version == versionSealed {
		if len(rest) < keyShareSize {
			return share, m, false
		}
		copy(share[:], rest)
		rest = rest[keyShareSize:]
	}
	if len(rest) != macSize {
		return share, m, false
	}
	copy(m[:], rest)
	return share, m, true
}

func appendServerAnswerBody(dst []byte, a serverAnswer) []byte {
	dst = append(dst, a.status)
	if a.status != statusAccepted {
		return dst
	}
	return appendShare(appendString(dst, a.id), a.version, a.share)
}

func appendServerAnswer(dst []byte, a serverAnswer) []byte {
	dst = appendServerAnswerBody(dst, a)
	if a.status != statusAccepted {
		return dst
	}
	return append(dst, a.mac[:]...)
}

// parseServerAnswer decodes the answer to a client hello of the given
// version (1 or 2).
func parseServerAnswer(b []byte, version uint8) (serverAnswer, error) {
	a := serverAnswer{version: version}
	bad := fmt.Errorf("%w: malformed server answer", ErrProtocol)
	if len(b) == 0 {
		return a, bad
	}
	a.status = b[0]
	if a.status != statusAccepted {
		if len(b) != 1 {
			return a, bad
		}
		return a, nil
	}
	id, rest, ok := cutString(b[1:])
	if !ok || id == "" {
		return a, bad
	}
	if a.share, a.mac, ok = cutShareMAC(rest, version); !ok {
		return a, bad
	}
	a.id = id
	return a, nil
}

// cutString splits a one-byte-length-prefixed string off b.
func cutString(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}

// mac computes HMAC-SHA256(secret, tag || parts...).
func mac(secret []byte, tag string, parts ...[]byte) [macSize]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tag))
	for _, p := range parts {
		m.Write(p)
	}
	var out [macSize]byte
	m.Sum(out[:0])
	return out
}

func tags(version uint8) (client, server string) {
	if version == versionSealed {
		return clientTagV2, serverTagV2
	}
	return clientTagV1, serverTagV1
}

func writeHandshakeMsg(w io.Writer, payload []byte) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(payload)), uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// readHandshakeMsg reads one length-prefixed handshake message, refusing
// more than maxHandshakeMsg bytes before allocating.
func readHandshakeMsg(r io.Reader) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > maxHandshakeMsg {
		return nil, fmt.Errorf("%w: handshake message of %d bytes", ErrProtocol, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, eofErr(err, 1)
	}
	return b, nil
}

// handshaker holds one side's settings for a handshake. rand supplies the
// nonces and the ephemeral X25519 keys: crypto/rand in production, a fixed
// stream in the golden tests.
type handshaker struct {
	secret   []byte
	id       string
	addr     string // client only: the address it advertises
	maxFrame int
	rand     io.Reader
	// acceptV1 is Config.AcceptV1Peers: with a secret, also speak version
	// 1 to a peer that speaks nothing newer.
	acceptV1 bool
}

// version is the protocol version this side speaks: sealed with a secret,
// plain without. With a secret and acceptV1 it also speaks version 1, to
// peers that speak nothing else (legacyOK).
func (hs handshaker) version() uint8 {
	if len(hs.secret) > 0 {
		return versionSealed
	}
	return versionPlain
}

// legacyOK reports whether this side, which has a secret, may fall back to
// version 1 (frames in the clear) for a peer that speaks only version 1.
func (hs handshaker) legacyOK() bool { return hs.acceptV1 && len(hs.secret) > 0 }

func (hs handshaker) nonce() ([nonceSize]byte, error) {
	var n [nonceSize]byte
	_, err := io.ReadFull(hs.rand, n[:])
	return n, err
}

// keyPair makes an ephemeral X25519 key. Its scalar comes from hs.rand
// (X25519 accepts any 32 bytes), so that tests can fix it.
func (hs handshaker) keyPair() (*ecdh.PrivateKey, error) {
	var k [32]byte
	if _, err := io.ReadFull(hs.rand, k[:]); err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(k[:])
}

// client runs the dialing side: it proves the secret over the server's
// nonce (and, in version 2, its key share) and checks the server's proof
// over its own. addr is the peer's address, for errors only. The caller
// sets deadlines on rw.
//
// The version it offers: its own (2 with a secret), except to a server
// whose hello announces version 1 without v2Mark, which is a node of the
// release before encryption (or one without a secret): with legacyOK it
// offers version 1 then, its nonce marked, and the session is plain. No
// attacker can make two nodes of this release fall back so: a node of this
// release with a secret never sends an unmarked version 1 hello, the hellos
// are covered by both proofs (a changed hello fails them), and a server
// refuses version 1 from a client whose nonce is marked.
func (hs handshaker) client(rw io.ReadWriter, addr string) (session, error) {
	shb, err := readHandshakeMsg(rw)
	if err != nil {
		return session{}, fmt.Errorf("read server hello: %w", err)
	}
	sh, err := parseServerHello(shb)
	if err != nil {
		return session{}, err
	}
	if sh.maxFrame < minFrame {
		return session{}, fmt.Errorf("%w: server max frame %d below %d", ErrProtocol, sh.maxFrame, minFrame)
	}
	// Whatever version the server announced, offer ours: a newer server may
	// still speak it, and one that does not says so (statusBadVersion).
	ch := clientHello{version: hs.version(), maxFrame: uint32(hs.maxFrame), id: hs.id, addr: hs.addr}
	legacyPeer := len(hs.secret) > 0 && sh.version == versionPlain && !markedV2(sh.nonce)
	if legacyPeer && hs.legacyOK() {
		ch.version = versionPlain
	}
	if ch.nonce, err = hs.nonce(); err != nil {
		return session{}, err
	}
	if ch.version == versionPlain && len(hs.secret) > 0 {
		markV2(&ch.nonce)
	}
	var priv *ecdh.PrivateKey
	if ch.version == versionSealed {
		if priv, err = hs.keyPair(); err != nil {
			return session{}, err
		}
		copy(ch.share[:], priv.PublicKey().Bytes())
	}
	ctag, stag := tags(ch.version)
	ch.mac = mac(hs.secret, ctag, shb, appendClientHelloBody(nil, ch))
	chb := appendClientHello(nil, ch)
	if err := writeHandshakeMsg(rw, chb); err != nil {
		return session{}, fmt.Errorf("write client hello: %w", err)
	}
	ab, err := readHandshakeMsg(rw)
	if err != nil {
		if legacyPeer && ch.version == versionSealed && errors.Is(err, io.EOF) {
			// The release before encryption hangs up on a version 2 hello
			// (it cannot parse it; its log says "malformed client hello").
			return session{}, &VersionError{Addr: addr, Local: ch.version, Peer: sh.version}
		}
		return session{}, fmt.Errorf("read server answer: %w", err)
	}
	a, err := parseServerAnswer(ab, ch.version)
	if err != nil {
		return session{}, err
	}
	switch a.status {
	case statusAccepted:
	case statusRejected:
		return session{}, fmt.Errorf("%w: server rejected our proof (is the cluster secret the same on both nodes?)", ErrAuth)
	case statusBadVersion:
		return session{}, &VersionError{Addr: addr, Local: hs.version(), Peer: sh.version}
	default:
		return session{}, fmt.Errorf("%w: unknown answer status %d", ErrProtocol, a.status)
	}
	want := mac(hs.secret, stag, chb, shb, appendServerAnswerBody(nil, a))
	if !hmac.Equal(want[:], a.mac[:]) {
		return session{}, fmt.Errorf("%w: server did not prove the secret", ErrAuth)
	}
	s := session{peer: peerInfo{id: a.id, addr: addr, maxFrame: int(sh.maxFrame)}, version: ch.version}
	if ch.version == versionSealed {
		c2s, s2c, err := deriveKeys(hs.secret, priv, a.share[:], shb, chb, ab)
		if err != nil {
			return session{}, err
		}
		s.send, s.recv = c2s, s2c
	}
	return s, nil
}

// server runs the accepting side. gotHello, if not nil, is called once the
// client's whole hello has arrived (the admission control stops treating
// the connection as silent then). On a failed proof or version it tells
// the client so (the client can then report ErrAuth or a *VersionError
// rather than a bare EOF) and returns an error; the caller closes the
// connection.
//
// With legacyOK its hello announces version 1 with v2Mark: the release
// before encryption reads only version 1 hellos, and this release's
// clients see the mark and speak version 2. It then accepts version 1 from
// a client that proves the secret and whose nonce is not marked (a client
// of the release before encryption), and version 2 from any client.
func (hs handshaker) server(rw io.ReadWriter, gotHello func()) (session, error) {
	sh := serverHello{version: hs.version(), maxFrame: uint32(hs.maxFrame)}
	var err error
	if sh.nonce, err = hs.nonce(); err != nil {
		return session{}, err
	}
	if hs.legacyOK() {
		sh.version = versionPlain
		markV2(&sh.nonce)
	}
	shb := appendServerHello(nil, sh)
	if err := writeHandshakeMsg(rw, shb); err != nil {
		return session{}, fmt.Errorf("write server hello: %w", err)
	}
	chb, err := readHandshakeMsg(rw)
	if errors.Is(err, io.EOF) {
		// The release before encryption hangs up here when it reads a
		// version it does not speak (its own log names both versions).
		return session{}, fmt.Errorf("read client hello: %w (the peer hung up after our version %d hello: a peer of an older release that does not speak it does so)", err, sh.version)
	}
	if err != nil {
		return session{}, fmt.Errorf("read client hello: %w", err)
	}
	if gotHello != nil {
		gotHello()
	}
	v, ok := clientHelloVersion(chb)
	if !ok {
		return session{}, fmt.Errorf("%w: malformed client hello", ErrProtocol)
	}
	if v != versionPlain && v != versionSealed {
		_ = writeHandshakeMsg(rw, []byte{statusBadVersion})
		return session{}, &VersionError{Local: hs.version(), Peer: v}
	}
	ch, err := parseClientHello(chb)
	if err != nil {
		return session{}, err
	}
	ctag, stag := tags(ch.version)
	want := mac(hs.secret, ctag, shb, chb[:len(chb)-macSize])
	if !hmac.Equal(want[:], ch.mac[:]) || (ch.version == versionSealed && len(hs.secret) == 0) {
		// A version 2 client holds a secret we lack: that is a secret
		// mismatch, reported as such.
		_ = writeHandshakeMsg(rw, []byte{statusRejected})
		return session{}, fmt.Errorf("%w: client %q did not prove the secret", ErrAuth, ch.id)
	}
	if ch.version != hs.version() {
		switch {
		case ch.version == versionPlain && hs.legacyOK() && markedV2(ch.nonce):
			// A client of this release offers version 1: it does so only
			// to a server whose hello was unmarked, and ours was marked
			// (and proven): never fall back between two such nodes.
			_ = writeHandshakeMsg(rw, []byte{statusBadVersion})
			return session{}, fmt.Errorf("%w: client %q offered version 1 although it speaks version 2 (its nonce is marked): refused, so that two nodes of this release never talk unencrypted", ErrProtocol, ch.id)
		case ch.version == versionPlain && hs.legacyOK():
			// A peer of the release before encryption, during a rolling
			// upgrade: frames go in the clear, as that release sends them.
		default:
			// A peer with our secret but speaking version 1: frames would go
			// in the clear, which a node with a secret refuses.
			_ = writeHandshakeMsg(rw, []byte{statusBadVersion})
			return session{}, &VersionError{Local: hs.version(), Peer: ch.version}
		}
	}
	if ch.maxFrame < minFrame {
		return session{}, fmt.Errorf("%w: client max frame %d below %d", ErrProtocol, ch.maxFrame, minFrame)
	}
	a := serverAnswer{version: ch.version, status: statusAccepted, id: hs.id}
	var priv *ecdh.PrivateKey
	if ch.version == versionSealed {
		if priv, err = hs.keyPair(); err != nil {
			return session{}, err
		}
		copy(a.share[:], priv.PublicKey().Bytes())
	}
	a.mac = mac(hs.secret, stag, chb, shb, appendServerAnswerBody(nil, a))
	ab := appendServerAnswer(nil, a)
	s := session{peer: peerInfo{id: ch.id, addr: ch.addr, maxFrame: int(ch.maxFrame)}, version: ch.version}
	if ch.version == versionSealed {
		// Derive before answering: a client share that X25519 refuses (a
		// low-order point) ends the handshake here.
		c2s, s2c, err := deriveKeys(hs.secret, priv, ch.share[:], shb, chb, ab)
		if err != nil {
			return session{}, err
		}
		s.send, s.recv = s2c, c2s
	}
	if err := writeHandshakeMsg(rw, ab); err != nil {
		return session{}, fmt.Errorf("write server answer: %w", err)
	}
	return s, nil
}
