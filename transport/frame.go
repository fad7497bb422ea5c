package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame layout (see doc.go): a uint32 big-endian length L, then L bytes:
// kind (1), method (1), request id (8, big-endian), budget (4, big-endian
// milliseconds, requests only), body (L-14).
const (
	lenPrefixSize = 4
	headerSize    = 14
	frameOverhead = lenPrefixSize + headerSize

	// minFrame is the smallest MaxFrame a node may configure or announce:
	// enough for any error reply and every fixed-size message.
	minFrame = 4 << 10
	// maxFrameLimit caps MaxFrame; the length prefix could express 4 GiB
	// but no single message of this store needs more than a fraction of it.
	maxFrameLimit = 1 << 30
	// maxErrorMsg caps the message of an error reply; longer ones are cut.
	maxErrorMsg = 4 << 10
	// maxPooledBuf keeps rare huge frames from pinning memory in the pool.
	maxPooledBuf = 64 << 10
)

// kind is the frame type. Wire values: ONLY APPEND.
type kind uint8

const (
	kindRequest  kind = iota + 1 // caller -> handler
	kindResponse                 // body is the handler's reply
	kindError                    // body is code (uint16 BE) then message
	kindFailure                  // body is one failure reason byte
)

// Failure reasons carried by kindFailure frames. Wire values: ONLY APPEND.
const (
	failReplyTooLarge uint8 = iota + 1 // the reply did not fit the caller's MaxFrame
	failBusy                           // no room in the node's memory budget: the request was skipped unread
)

// header is the fixed part of a frame after the length prefix.
type header struct {
	kind   kind
	method Method
	id     uint64
	budget uint32 // request deadline, ms from receipt; 0 means none
}

// putHeader writes the length prefix and header for a body of n bytes into
// b, which must hold at least frameOverhead bytes.
func putHeader(b []byte, h header, n int) {
	binary.BigEndian.PutUint32(b[0:4], uint32(headerSize+n))
	b[4] = byte(h.kind)
	b[5] = byte(h.method)
	binary.BigEndian.PutUint64(b[6:14], h.id)
	binary.BigEndian.PutUint32(b[14:18], h.budget)
}

// readHeader reads a frame's length prefix and header from br and returns
// the body length, which it checks against maxFrame before anyone
// allocates. It returns io.EOF only when the stream ended cleanly between
// frames; a frame cut short is io.ErrUnexpectedEOF.
func readHeader(br *bufio.Reader, maxFrame int) (header, int, error) {
	p, err := br.Peek(lenPrefixSize)
	if err != nil {
		return header{}, 0, eofErr(err, len(p))
	}
	l := binary.BigEndian.Uint32(p)
	if l < headerSize {
		return header{}, 0, fmt.Errorf("%w: frame length %d below header size", ErrProtocol, l)
	}
	if uint64(l) > uint64(maxFrame) {
		return header{}, 0, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrFrameTooLarge, l, maxFrame)
	}
	p, err = br.Peek(frameOverhead)
	if err != nil {
		return header{}, 0, eofErr(err, 1)
	}
	h := header{
		kind:   kind(p[4]),
		method: Method(p[5]),
		id:     binary.BigEndian.Uint64(p[6:14]),
		budget: binary.BigEndian.Uint32(p[14:18]),
	}
	if _, err := br.Discard(frameOverhead); err != nil {
		return header{}, 0, eofErr(err, 1)
	}
	switch h.kind {
	case kindRequest:
		if h.method == 0 {
			return header{}, 0, fmt.Errorf("%w: request with method 0", ErrProtocol)
		}
	case kindResponse, kindError, kindFailure:
	default:
		return header{}, 0, fmt.Errorf("%w: unknown frame kind %d", ErrProtocol, h.kind)
	}
	return h, int(l) - headerSize, nil
}

// eofErr turns an EOF after `got` bytes of a frame into io.ErrUnexpectedEOF.
func eofErr(err error, got int) error {
	if errors.Is(err, io.EOF) && got > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFrame reads one whole frame into a fresh body slice. The connections
// use readHeader and manage bodies themselves; this is the reference
// decoder that the fuzz target and tests exercise.
func readFrame(br *bufio.Reader, maxFrame int) (header, []byte, error) {
	h, n, err := readHeader(br, maxFrame)
	if err != nil {
		return header{}, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return header{}, nil, eofErr(err, 1)
	}
	return h, body, nil
}

// appendFrame appends one encoded frame to dst.
func appendFrame(dst []byte, h header, body []byte) []byte {
	var hb [frameOverhead]byte
	putHeader(hb[:], h, len(body))
	return append(append(dst, hb[:]...), body...)
}

// appendErrorBody encodes a RemoteError as the body of a kindError frame,
// cutting the message to fit max bytes of body and maxErrorMsg.
func appendErrorBody(dst []byte, code uint16, msg string, max int) []byte {
	limit := min(maxErrorMsg, max-2)
	if len(msg) > limit {
		msg = msg[:limit]
	}
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, msg...)
}

// parseErrorBody decodes the body of a kindError frame.
func parseErrorBody(b []byte) (*RemoteError, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: error frame body of %d bytes", ErrProtocol, len(b))
	}
	return &RemoteError{Code: binary.BigEndian.Uint16(b), Msg: string(b[2:])}, nil
}

// failureErr maps a kindFailure body to the caller's error. Unknown reasons
// (from a newer peer) become a generic error rather than a broken
// connection, since the reason byte is append-only.
func failureErr(b []byte) error {
	if len(b) == 1 {
		switch b[0] {
		case failReplyTooLarge:
			return fmt.Errorf("reply: %w", ErrFrameTooLarge)
		case failBusy:
			return ErrBusy
		}
	}
	return fmt.Errorf("transport: remote transport failure %x", b)
}

// frameBuf is a pooled frame buffer. Pooling the pointer, not the slice,
// keeps Get and Put free of allocations.
type frameBuf struct {
	b      []byte
	charge int64 // bytes counted against the budgets for this frame (conn.charge)
	queued int64 // bytes counted in the calling conn's queued (register)
}

var bufPool = sync.Pool{New: func() any { return new(frameBuf) }}

// getBuf returns a buffer of length n.
func getBuf(n int) *frameBuf {
	fb := bufPool.Get().(*frameBuf)
	if cap(fb.b) < n {
		fb.b = make([]byte, n, max(n, 512))
	}
	fb.b = fb.b[:n]
	return fb
}

// putBuf returns fb to the pool. The caller must not touch fb afterwards.
func putBuf(fb *frameBuf) {
	if cap(fb.b) > maxPooledBuf {
		fb.b = nil
	}
	bufPool.Put(fb)
}
