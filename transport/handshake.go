package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Handshake messages (layout in doc.go). Every one travels as a uint32
// big-endian length and a payload of at most maxHandshakeMsg bytes.
const (
	protoVersion    = 1
	nonceSize       = 32
	macSize         = sha256.Size
	maxIDLen        = 255 // node ids and addresses carry a one-byte length
	maxHandshakeMsg = 1024
	serverHelloSize = 3 + 1 + nonceSize + 4
)

var magic = [3]byte{'Q', 'K', 'V'}

// Answer statuses. Wire values: ONLY APPEND.
const (
	statusAccepted   uint8 = iota + 1 // followed by the server's id and proof
	statusRejected                    // the client's proof was wrong
	statusBadVersion                  // the server does not speak the client's version
)

// Domain-separation tags, so that neither proof can be replayed as the
// other.
const (
	clientTag = "quorumkv/transport/v1 client"
	serverTag = "quorumkv/transport/v1 server"
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
	mac      [macSize]byte
}

type serverAnswer struct {
	status uint8
	id     string // only when accepted
	mac    [macSize]byte
}

// peerInfo is what a handshake learns about the other side.
type peerInfo struct {
	id       string
	addr     string
	maxFrame int
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
	return h, nil
}

// appendClientHelloBody encodes everything but the MAC, which covers it.
func appendClientHelloBody(dst []byte, h clientHello) []byte {
	dst = append(dst, magic[:]...)
	dst = append(dst, h.version)
	dst = append(dst, h.nonce[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.maxFrame)
	dst = append(dst, byte(len(h.id)))
	dst = append(dst, h.id...)
	dst = append(dst, byte(len(h.addr)))
	return append(dst, h.addr...)
}

func appendClientHello(dst []byte, h clientHello) []byte {
	return append(appendClientHelloBody(dst, h), h.mac[:]...)
}

func parseClientHello(b []byte) (clientHello, error) {
	var h clientHello
	bad := fmt.Errorf("%w: malformed client hello", ErrProtocol)
	const fixed = 3 + 1 + nonceSize + 4
	if len(b) < fixed+1+1+macSize || [3]byte(b[:3]) != magic {
		return h, bad
	}
	h.version = b[3]
	copy(h.nonce[:], b[4:4+nonceSize])
	h.maxFrame = binary.BigEndian.Uint32(b[4+nonceSize:])
	rest := b[fixed:]
	id, rest, ok := cutString(rest)
	if !ok || id == "" {
		return h, bad
	}
	addr, rest, ok := cutString(rest)
	if !ok || len(rest) != macSize {
		return h, bad
	}
	h.id, h.addr = id, addr
	copy(h.mac[:], rest)
	return h, nil
}

func appendServerAnswerBody(dst []byte, a serverAnswer) []byte {
	dst = append(dst, a.status)
	if a.status != statusAccepted {
		return dst
	}
	dst = append(dst, byte(len(a.id)))
	return append(dst, a.id...)
}

func appendServerAnswer(dst []byte, a serverAnswer) []byte {
	dst = appendServerAnswerBody(dst, a)
	if a.status != statusAccepted {
		return dst
	}
	return append(dst, a.mac[:]...)
}

func parseServerAnswer(b []byte) (serverAnswer, error) {
	var a serverAnswer
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
	if !ok || id == "" || len(rest) != macSize {
		return a, bad
	}
	a.id = id
	copy(a.mac[:], rest)
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

func newNonce() ([nonceSize]byte, error) {
	var n [nonceSize]byte
	_, err := rand.Read(n[:])
	return n, err
}

// clientHandshake runs the dialing side: it proves the secret over the
// server's nonce and checks the server's proof over its own. The caller
// sets deadlines on rw.
func clientHandshake(rw io.ReadWriter, secret []byte, id, addr string, maxFrame int) (peerInfo, error) {
	shb, err := readHandshakeMsg(rw)
	if err != nil {
		return peerInfo{}, fmt.Errorf("read server hello: %w", err)
	}
	sh, err := parseServerHello(shb)
	if err != nil {
		return peerInfo{}, err
	}
	if sh.version != protoVersion {
		return peerInfo{}, fmt.Errorf("%w: server speaks version %d, we speak %d", ErrProtocol, sh.version, protoVersion)
	}
	if sh.maxFrame < minFrame {
		return peerInfo{}, fmt.Errorf("%w: server max frame %d below %d", ErrProtocol, sh.maxFrame, minFrame)
	}
	ch := clientHello{version: protoVersion, maxFrame: uint32(maxFrame), id: id, addr: addr}
	if ch.nonce, err = newNonce(); err != nil {
		return peerInfo{}, err
	}
	body := appendClientHelloBody(nil, ch)
	ch.mac = mac(secret, clientTag, shb, body)
	chb := appendClientHello(nil, ch)
	if err := writeHandshakeMsg(rw, chb); err != nil {
		return peerInfo{}, fmt.Errorf("write client hello: %w", err)
	}
	ab, err := readHandshakeMsg(rw)
	if err != nil {
		return peerInfo{}, fmt.Errorf("read server answer: %w", err)
	}
	a, err := parseServerAnswer(ab)
	if err != nil {
		return peerInfo{}, err
	}
	switch a.status {
	case statusAccepted:
	case statusRejected:
		return peerInfo{}, fmt.Errorf("%w: server rejected our proof", ErrAuth)
	case statusBadVersion:
		return peerInfo{}, fmt.Errorf("%w: server does not speak version %d", ErrProtocol, protoVersion)
	default:
		return peerInfo{}, fmt.Errorf("%w: unknown answer status %d", ErrProtocol, a.status)
	}
	want := mac(secret, serverTag, chb, shb, appendServerAnswerBody(nil, a))
	if !hmac.Equal(want[:], a.mac[:]) {
		return peerInfo{}, fmt.Errorf("%w: server did not prove the secret", ErrAuth)
	}
	return peerInfo{id: a.id, addr: addr, maxFrame: int(sh.maxFrame)}, nil
}

// serverHandshake runs the accepting side. On a failed proof it tells the
// client so (the client can then report ErrAuth rather than a bare EOF)
// and returns an error; the caller closes the connection.
func serverHandshake(rw io.ReadWriter, secret []byte, id string, maxFrame int) (peerInfo, error) {
	sh := serverHello{version: protoVersion, maxFrame: uint32(maxFrame)}
	var err error
	if sh.nonce, err = newNonce(); err != nil {
		return peerInfo{}, err
	}
	shb := appendServerHello(nil, sh)
	if err := writeHandshakeMsg(rw, shb); err != nil {
		return peerInfo{}, fmt.Errorf("write server hello: %w", err)
	}
	chb, err := readHandshakeMsg(rw)
	if err != nil {
		return peerInfo{}, fmt.Errorf("read client hello: %w", err)
	}
	ch, err := parseClientHello(chb)
	if err != nil {
		return peerInfo{}, err
	}
	if ch.version != protoVersion {
		_ = writeHandshakeMsg(rw, []byte{statusBadVersion})
		return peerInfo{}, fmt.Errorf("%w: client speaks version %d", ErrProtocol, ch.version)
	}
	want := mac(secret, clientTag, shb, chb[:len(chb)-macSize])
	if !hmac.Equal(want[:], ch.mac[:]) {
		_ = writeHandshakeMsg(rw, []byte{statusRejected})
		return peerInfo{}, fmt.Errorf("%w: client %q did not prove the secret", ErrAuth, ch.id)
	}
	if ch.maxFrame < minFrame {
		return peerInfo{}, fmt.Errorf("%w: client max frame %d below %d", ErrProtocol, ch.maxFrame, minFrame)
	}
	a := serverAnswer{status: statusAccepted, id: id}
	a.mac = mac(secret, serverTag, chb, shb, appendServerAnswerBody(nil, a))
	if err := writeHandshakeMsg(rw, appendServerAnswer(nil, a)); err != nil {
		return peerInfo{}, fmt.Errorf("write server answer: %w", err)
	}
	return peerInfo{id: ch.id, addr: ch.addr, maxFrame: int(ch.maxFrame)}, nil
}
