package transport

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// The handshake of the last release before encryption (commit 8b71df9,
// transport/handshake.go), kept as it was, names prefixed with "old", so
// that the upgrade tests run this release against that code and not
// against a reimplementation that shares this release's parsers. Only the
// shared helpers (length-prefixed messages, HMAC, server hello encoding)
// come from this release; the golden v1-* files pin that they did not
// change. Do not "fix" this code: it is what is deployed.

const oldProtoVersion = 1

const (
	oldClientTag = "quorumkv/transport/v1 client"
	oldServerTag = "quorumkv/transport/v1 server"
)

type oldClientHello struct {
	version  uint8
	nonce    [nonceSize]byte
	maxFrame uint32
	id       string
	addr     string
	mac      [macSize]byte
}

type oldServerAnswer struct {
	status uint8
	id     string
	mac    [macSize]byte
}

func oldAppendClientHelloBody(dst []byte, h oldClientHello) []byte {
	dst = append(dst, magic[:]...)
	dst = append(dst, h.version)
	dst = append(dst, h.nonce[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.maxFrame)
	dst = append(dst, byte(len(h.id)))
	dst = append(dst, h.id...)
	dst = append(dst, byte(len(h.addr)))
	return append(dst, h.addr...)
}

func oldAppendClientHello(dst []byte, h oldClientHello) []byte {
	return append(oldAppendClientHelloBody(dst, h), h.mac[:]...)
}

func oldParseClientHello(b []byte) (oldClientHello, error) {
	var h oldClientHello
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

func oldAppendServerAnswerBody(dst []byte, a oldServerAnswer) []byte {
	dst = append(dst, a.status)
	if a.status != statusAccepted {
		return dst
	}
	dst = append(dst, byte(len(a.id)))
	return append(dst, a.id...)
}

func oldAppendServerAnswer(dst []byte, a oldServerAnswer) []byte {
	dst = oldAppendServerAnswerBody(dst, a)
	if a.status != statusAccepted {
		return dst
	}
	return append(dst, a.mac[:]...)
}

func oldParseServerAnswer(b []byte) (oldServerAnswer, error) {
	var a oldServerAnswer
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

func oldNewNonce() ([nonceSize]byte, error) {
	var n [nonceSize]byte
	_, err := rand.Read(n[:])
	return n, err
}

func oldClientHandshake(rw io.ReadWriter, secret []byte, id, addr string, maxFrame int) (peerInfo, error) {
	shb, err := readHandshakeMsg(rw)
	if err != nil {
		return peerInfo{}, fmt.Errorf("read server hello: %w", err)
	}
	sh, err := parseServerHello(shb)
	if err != nil {
		return peerInfo{}, err
	}
	if sh.version != oldProtoVersion {
		return peerInfo{}, fmt.Errorf("%w: server speaks version %d, we speak %d", ErrProtocol, sh.version, oldProtoVersion)
	}
	if sh.maxFrame < minFrame {
		return peerInfo{}, fmt.Errorf("%w: server max frame %d below %d", ErrProtocol, sh.maxFrame, minFrame)
	}
	ch := oldClientHello{version: oldProtoVersion, maxFrame: uint32(maxFrame), id: id, addr: addr}
	if ch.nonce, err = oldNewNonce(); err != nil {
		return peerInfo{}, err
	}
	body := oldAppendClientHelloBody(nil, ch)
	ch.mac = mac(secret, oldClientTag, shb, body)
	chb := oldAppendClientHello(nil, ch)
	if err := writeHandshakeMsg(rw, chb); err != nil {
		return peerInfo{}, fmt.Errorf("write client hello: %w", err)
	}
	ab, err := readHandshakeMsg(rw)
	if err != nil {
		return peerInfo{}, fmt.Errorf("read server answer: %w", err)
	}
	a, err := oldParseServerAnswer(ab)
	if err != nil {
		return peerInfo{}, err
	}
	switch a.status {
	case statusAccepted:
	case statusRejected:
		return peerInfo{}, fmt.Errorf("%w: server rejected our proof", ErrAuth)
	case statusBadVersion:
		return peerInfo{}, fmt.Errorf("%w: server does not speak version %d", ErrProtocol, oldProtoVersion)
	default:
		return peerInfo{}, fmt.Errorf("%w: unknown answer status %d", ErrProtocol, a.status)
	}
	want := mac(secret, oldServerTag, chb, shb, oldAppendServerAnswerBody(nil, a))
	if !hmac.Equal(want[:], a.mac[:]) {
		return peerInfo{}, fmt.Errorf("%w: server did not prove the secret", ErrAuth)
	}
	return peerInfo{id: a.id, addr: addr, maxFrame: int(sh.maxFrame)}, nil
}

func oldServerHandshake(rw io.ReadWriter, secret []byte, id string, maxFrame int) (peerInfo, error) {
	sh := serverHello{version: oldProtoVersion, maxFrame: uint32(maxFrame)}
	var err error
	if sh.nonce, err = oldNewNonce(); err != nil {
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
	ch, err := oldParseClientHello(chb)
	if err != nil {
		return peerInfo{}, err
	}
	if ch.version != oldProtoVersion {
		_ = writeHandshakeMsg(rw, []byte{statusBadVersion})
		return peerInfo{}, fmt.Errorf("%w: client speaks version %d", ErrProtocol, ch.version)
	}
	want := mac(secret, oldClientTag, shb, chb[:len(chb)-macSize])
	if !hmac.Equal(want[:], ch.mac[:]) {
		_ = writeHandshakeMsg(rw, []byte{statusRejected})
		return peerInfo{}, fmt.Errorf("%w: client %q did not prove the secret", ErrAuth, ch.id)
	}
	if ch.maxFrame < minFrame {
		return peerInfo{}, fmt.Errorf("%w: client max frame %d below %d", ErrProtocol, ch.maxFrame, minFrame)
	}
	a := oldServerAnswer{status: statusAccepted, id: id}
	a.mac = mac(secret, oldServerTag, chb, shb, oldAppendServerAnswerBody(nil, a))
	if err := writeHandshakeMsg(rw, oldAppendServerAnswer(nil, a)); err != nil {
		return peerInfo{}, fmt.Errorf("write server answer: %w", err)
	}
	return peerInfo{id: ch.id, addr: ch.addr, maxFrame: int(ch.maxFrame)}, nil
}

// oldServer and oldClient run one side of the old handshake as the tests'
// peers.
func oldServer(rw io.ReadWriter, secret []byte) error {
	_, err := oldServerHandshake(rw, secret, "old", 16<<20)
	return err
}

func oldClient(rw io.ReadWriter, secret []byte) error {
	_, err := oldClientHandshake(rw, secret, "old", "old:1", 16<<20)
	return err
}

// oldPeer is a node of the release before encryption reduced to its
// transport: after the old handshake it reads plain frames (the v1-frame
// golden file pins that the layout did not change) and answers each
// request with "old:" and the body. As a server it listens on 127.0.0.1;
// as a client it dials and sends calls.
type oldPeer struct {
	secret []byte
	served chan []byte // request bodies it answered
}

// serve runs the old server side on nc until it breaks.
func (o *oldPeer) serve(nc net.Conn) error {
	if _, err := oldServerHandshake(nc, o.secret, "old", 16<<20); err != nil {
		return err
	}
	return o.answer(nc)
}

// answer reads requests and writes replies, plain frames, until EOF.
func (o *oldPeer) answer(nc net.Conn) error {
	br := bufio.NewReader(nc)
	for {
		h, body, err := readFrame(br, 16<<20)
		if err != nil {
			return err
		}
		if h.kind != kindRequest {
			return fmt.Errorf("old peer: frame kind %d", h.kind)
		}
		select {
		case o.served <- body:
		default:
		}
		reply := appendFrame(nil, header{kind: kindResponse, method: h.method, id: h.id}, append([]byte("old:"), body...))
		if _, err := nc.Write(reply); err != nil {
			return err
		}
	}
}

// call dials addr as the old client, sends one request and returns the
// reply body.
func (o *oldPeer) call(addr string, m Method, body []byte) ([]byte, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if _, err := oldClientHandshake(nc, o.secret, "old", "old:1", 16<<20); err != nil {
		return nil, err
	}
	if _, err := nc.Write(appendFrame(nil, header{kind: kindRequest, method: m, id: 1}, body)); err != nil {
		return nil, err
	}
	h, reply, err := readFrame(bufio.NewReader(nc), 16<<20)
	if err != nil {
		return nil, err
	}
	if h.kind != kindResponse || h.id != 1 {
		return nil, fmt.Errorf("old peer: reply %+v", h)
	}
	return reply, nil
}
