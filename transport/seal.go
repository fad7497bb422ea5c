package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Records of protocol version 2. After the handshake each direction is a
// stream of records:
//
//	length (u32, = len(ciphertext), tag included)  ciphertext (AES-256-GCM)
//
// The plaintexts, concatenated, are the same frames version 1 sends in the
// clear; a record boundary need not fall on a frame boundary. Each record
// is sealed with nonce = 4 zero bytes | sequence number (u64 big-endian,
// 0 for the first record of the direction) and the length prefix as
// additional data. The receiver expects the next sequence number, so a
// record that was altered, cut, replayed, reordered or dropped fails to
// open, and the connection is closed.
//
// The writer seals whatever it flushes, so frames coalesced into one write
// share one record and one tag; a batch larger than a record is cut into
// several, all written with one syscall where they fit.
const (
	tagSize = 16
	// maxRecordPlain bounds a record's plaintext. It is also what a reader
	// must buffer to open a record, so it bounds memory per connection
	// whatever length a peer claims.
	maxRecordPlain = 32 << 10
	maxRecordWire  = lenPrefixSize + maxRecordPlain + tagSize
	// maxSealBatch bounds the sealed bytes handed to one write syscall for
	// a write larger than a record (a big frame bypassing the buffer).
	maxSealBatch = 8 * maxRecordWire
	// maxRecords is when a direction's key retires: far below the 2^64
	// nonces and within AES-GCM's bounds for the data one key may protect
	// (2^32 records of at most 32 KiB is 128 TiB). The connection is then
	// closed and the next call dials with fresh keys.
	maxRecords = 1 << 32
)

// errKeyExhausted closes a connection whose key has sealed maxRecords.
var errKeyExhausted = errors.New("transport: connection key used up; reconnecting with fresh keys")

// aeadState is one direction's cipher and its next sequence number. It is
// used by one goroutine at a time (the connection's writer, or its reader).
type aeadState struct {
	aead  cipher.AEAD
	seq   uint64
	nonce [12]byte
}

func newAEADState(key []byte) (*aeadState, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &aeadState{aead: aead}, nil
}

// next returns the nonce for the next record and advances the counter.
func (s *aeadState) next() ([]byte, error) {
	if s.seq >= maxRecords {
		return nil, errKeyExhausted
	}
	binary.BigEndian.PutUint64(s.nonce[4:], s.seq)
	s.seq++
	return s.nonce[:], nil
}

// appendRecord seals plain (at most maxRecordPlain bytes) as one record
// appended to dst.
func (s *aeadState) appendRecord(dst, plain []byte) ([]byte, error) {
	nonce, err := s.next()
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(plain)+tagSize))
	return s.aead.Seal(dst, nonce, plain, dst[start:start+lenPrefixSize]), nil
}

// openRecord opens one whole record (length prefix included) in place and
// returns its plaintext, which aliases rec.
func (s *aeadState) openRecord(rec []byte) ([]byte, error) {
	nonce, err := s.next()
	if err != nil {
		return nil, err
	}
	plain, err := s.aead.Open(rec[lenPrefixSize:lenPrefixSize], nonce, rec[lenPrefixSize:], rec[:lenPrefixSize])
	if err != nil {
		return nil, fmt.Errorf("%w: record %d failed authentication (altered, replayed, reordered or dropped)", ErrProtocol, s.seq-1)
	}
	return plain, nil
}

// recordLen checks a record's length prefix and returns the whole
// record's size on the wire.
func recordLen(prefix []byte) (int, error) {
	l := binary.BigEndian.Uint32(prefix)
	if l <= tagSize || l > maxRecordPlain+tagSize {
		return 0, fmt.Errorf("%w: record length %d outside [%d, %d]", ErrProtocol, l, tagSize+1, maxRecordPlain+tagSize)
	}
	return lenPrefixSize + int(l), nil
}

// deriveKeys computes both directions' keys of a version 2 connection:
// HKDF-SHA256 over the X25519 shared secret and the cluster secret, salted
// with the transcript (both hellos and the answer, so both nonces and both
// key shares). Without the cluster secret the keys cannot be derived even
// from the shared secret; without one side's ephemeral private key they
// cannot be derived even with the cluster secret, so recorded traffic
// stays unreadable if the secret leaks later.
func deriveKeys(secret []byte, priv *ecdh.PrivateKey, peerShare, shb, chb, ab []byte) (c2s, s2c *aeadState, err error) {
	pub, err := ecdh.X25519().NewPublicKey(peerShare)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: bad key share: %v", ErrProtocol, err)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: bad key share: %v", ErrProtocol, err)
	}
	th := sha256.New()
	for _, m := range [][]byte{shb, chb, ab} {
		th.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m))))
		th.Write(m)
	}
	ikm := append(shared, secret...)
	keys, err := hkdf.Key(sha256.New, ikm, th.Sum(nil), keysInfoV2, 64)
	if err != nil {
		return nil, nil, err
	}
	if c2s, err = newAEADState(keys[:32]); err != nil {
		return nil, nil, err
	}
	if s2c, err = newAEADState(keys[32:]); err != nil {
		return nil, nil, err
	}
	return c2s, s2c, nil
}

// sealedWriter seals everything written to it into records. A connection's
// writer goroutine owns it.
type sealedWriter struct {
	w   io.Writer
	s   *aeadState
	out []byte
}

func newSealedWriter(w io.Writer, s *aeadState) *sealedWriter {
	return &sealedWriter{w: w, s: s, out: make([]byte, 0, maxRecordWire)}
}

// Write seals p into records and writes them, up to maxSealBatch bytes per
// call to the underlying writer. After an error the stream is broken (the
// connection is closed).
func (w *sealedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		w.out = w.out[:0]
		taken := 0
		for len(p) > taken && len(w.out)+maxRecordWire <= max(maxSealBatch, cap(w.out)) {
			chunk := p[taken:min(len(p), taken+maxRecordPlain)]
			var err error
			if w.out, err = w.s.appendRecord(w.out, chunk); err != nil {
				return n, err
			}
			taken += len(chunk)
		}
		if _, err := w.w.Write(w.out); err != nil {
			return n, err
		}
		n += taken
		p = p[taken:]
	}
	if cap(w.out) > maxRecordWire {
		// A big frame went through: do not keep its batch buffer.
		w.out = make([]byte, 0, maxRecordWire)
	}
	return n, nil
}

// sealedReader opens the records read from r and serves their plaintext.
// Its buffer holds one record plus whatever followed it in the same read,
// so memory per connection is fixed whatever lengths the peer claims.
// A connection's reader goroutine owns it.
type sealedReader struct {
	r io.Reader
	s *aeadState
	// partial, if set, is called before blocking on r for the rest of a
	// record that has started to arrive; the connection arms its read
	// deadline there, so a peer cannot hold a reader with half a record.
	partial func() error

	buf        []byte
	start, end int    // raw bytes buffered: buf[start:end]
	plain      []byte // opened bytes not yet read; aliases buf
}

func newSealedReader(r io.Reader, s *aeadState, partial func() error) *sealedReader {
	return &sealedReader{r: r, s: s, partial: partial, buf: make([]byte, maxRecordWire+4<<10)}
}

func (r *sealedReader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// open reads and opens the next record. It returns io.EOF only when the
// stream ended cleanly between records.
func (r *sealedReader) open() error {
	if err := r.fill(lenPrefixSize); err != nil {
		return err
	}
	n, err := recordLen(r.buf[r.start:])
	if err != nil {
		return err
	}
	if err := r.fill(n); err != nil {
		return err
	}
	rec := r.buf[r.start : r.start+n]
	r.start += n
	plain, err := r.s.openRecord(rec)
	if err != nil {
		return err
	}
	r.plain = plain
	return nil
}

// fill reads until at least n raw bytes are buffered (n <= maxRecordWire).
func (r *sealedReader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start > 0 && len(r.buf)-r.start < maxRecordWire {
		// Keep room for a whole record after start, so that one read can
		// take it: move the few bytes of a record already begun (often
		// none) to the front.
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	for r.end-r.start < n {
		if r.end > r.start && r.partial != nil {
			if err := r.partial(); err != nil {
				return err
			}
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			if r.end-r.start >= n {
				return nil
			}
			return eofErr(err, r.end-r.start)
		}
	}
	return nil
}
