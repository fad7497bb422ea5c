package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/quorumkv/quorumkv/internal/excerpt"
)

// Version is the format this package writes. A reader refuses any other:
// an older quorumkv cannot know what a newer format means.
const Version = 1

// magic opens every backup file and every record stream.
const magic = "QKVBACK\n"

// Caps on what a reader accepts, checked before allocating.
const (
	// MaxKeyBytes bounds one key (the transport's cap, above any node's
	// --max-key-size).
	MaxKeyBytes = 64 << 10
	// MaxSetBytes bounds one key's encoded set: the transport's cap on a
	// set, which every stored set fits.
	MaxSetBytes = 13 << 20
	// MaxChunkBytes bounds a chunk's payload. A writer closes a chunk once
	// it passes ChunkBytes, so a chunk holds at most ChunkBytes plus one
	// record.
	MaxChunkBytes = ChunkBytes + MaxKeyBytes + MaxSetBytes + 2*binary.MaxVarintLen64
	// MaxMetaBytes bounds the header's metadata.
	MaxMetaBytes = 64 << 10
	// ChunkBytes is the payload size past which a writer closes a chunk.
	ChunkBytes = 1 << 20
)

// Chunk kinds.
const (
	kindRecords byte = 'R'
	kindEnd     byte = 'E'
)

// chunkHeaderLen is kind (1) | record count (4) | payload length (4).
const chunkHeaderLen = 1 + 4 + 4

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors a Reader returns, wrapped with where it stopped.
var (
	// ErrNotBackup: the input does not start with the backup magic.
	ErrNotBackup = errors.New("not a quorumkv backup (bad magic)")
	// ErrVersion: the input is of a format version this reader does not know.
	ErrVersion = errors.New("unsupported backup format version")
	// ErrTruncated: the input ends before its end chunk.
	ErrTruncated = errors.New("backup is truncated")
	// ErrCorrupt: a checksum, length or count does not match.
	ErrCorrupt = errors.New("backup is corrupt")
)

// Record is one key and its set as vclock encodes it (every sibling,
// tombstones, the causal context). Slices a Reader returns are its own
// until the next call of Next.
type Record struct {
	Key []byte
	Set []byte
}

// Meta describes a backup; it travels in the header as JSON. Every field is
// informational: restoring reads none of them.
type Meta struct {
	Created time.Time `json:"created,omitzero"`
	// Source is the node (stream) or nodes (file) read.
	Source string `json:"source,omitempty"`
	// Partitions and N are the source cluster's ring settings.
	Partitions int `json:"partitions,omitempty"`
	N          int `json:"n,omitempty"`
	// Partition is the one partition a record stream holds.
	Partition *uint32 `json:"partition,omitempty"`
	// Note says how the records were gathered.
	Note string `json:"note,omitempty"`
}

// Writer writes a backup: NewWriter writes the header, Add buffers records
// into chunks, Close writes the last chunk and the end chunk. Not safe for
// concurrent use.
type Writer struct {
	w       io.Writer
	payload []byte
	count   uint32
	records uint64
	chunks  uint64
	bytes   uint64
	err     error
	closed  bool
}

// NewWriter writes the header of a backup with meta to w.
func NewWriter(w io.Writer, meta Meta) (*Writer, error) {
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if len(m) > MaxMetaBytes {
		return nil, fmt.Errorf("backup metadata of %d bytes (max %d)", len(m), MaxMetaBytes)
	}
	b := make([]byte, 0, len(magic)+2+4+len(m)+4)
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	b = append(b, m...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[len(magic):], crcTable))
	wr := &Writer{w: w}
	wr.write(b)
	return wr, wr.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.bytes += uint64(n)
	w.err = err
}

// Add appends rec. The writer copies it; it writes a chunk once the
// buffered payload passes ChunkBytes.
func (w *Writer) Add(rec Record) error {
	switch {
	case w.closed:
		return errors.New("backup writer is closed")
	case len(rec.Key) == 0 || len(rec.Key) > MaxKeyBytes:
		return fmt.Errorf("key of %d bytes (want 1 to %d)", len(rec.Key), MaxKeyBytes)
	case len(rec.Set) > MaxSetBytes:
		return fmt.Errorf("set of key %q is %d bytes (max %d)", clip(rec.Key), len(rec.Set), MaxSetBytes)
	}
	w.payload = binary.AppendUvarint(w.payload, uint64(len(rec.Key)))
	w.payload = append(w.payload, rec.Key...)
	w.payload = binary.AppendUvarint(w.payload, uint64(len(rec.Set)))
	w.payload = append(w.payload, rec.Set...)
	w.count++
	w.records++
	if len(w.payload) >= ChunkBytes {
		return w.Flush()
	}
	return w.err
}

// Flush writes the buffered records as a chunk (nothing if none).
func (w *Writer) Flush() error {
	if w.count > 0 {
		w.chunk(kindRecords, w.count, w.payload)
		w.payload, w.count = w.payload[:0], 0
	}
	return w.err
}

func (w *Writer) chunk(kind byte, count uint32, payload []byte) {
	h := make([]byte, 0, chunkHeaderLen)
	h = append(h, kind)
	h = binary.BigEndian.AppendUint32(h, count)
	h = binary.BigEndian.AppendUint32(h, uint32(len(payload)))
	sum := crc32.Update(crc32.Checksum(h, crcTable), crcTable, payload)
	w.write(h)
	w.write(payload)
	w.write(binary.BigEndian.AppendUint32(nil, sum))
	w.chunks++
}

// Close flushes and writes the end chunk, which carries the totals of
// records and chunks. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	w.closed = true
	var p []byte
	p = binary.AppendUvarint(p, w.records)
	p = binary.AppendUvarint(p, w.chunks)
	w.chunk(kindEnd, 0, p)
	return w.err
}

// Records returns how many records were added.
func (w *Writer) Records() uint64 { return w.records }

// Bytes returns how many bytes were written so far.
func (w *Writer) Bytes() uint64 { return w.bytes }

// Reader reads a backup chunk by chunk. Not safe for concurrent use.
type Reader struct {
	r       *bufio.Reader
	meta    Meta
	buf     []byte
	recs    []Record
	records uint64 // records read so far
	chunks  uint64 // record chunks read so far
	bytes   uint64
	done    bool
	err     error
}

// NewReader reads and checks the header of a backup.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	h := make([]byte, len(magic)+2+4)
	n, err := io.ReadFull(rd.r, h)
	rd.bytes += uint64(n)
	switch {
	case !bytes.HasPrefix([]byte(magic), h[:min(n, len(magic))]) || n == 0 && err != nil:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, ErrNotBackup
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: it ends at byte %d, inside the header", ErrTruncated, n)
	case err != nil:
		return nil, err
	}
	if v := binary.BigEndian.Uint16(h[len(magic):]); v != Version {
		return nil, fmt.Errorf("%w %d: this quorumkv reads version %d only (use the quorumkv release that wrote it, or a newer one)", ErrVersion, v, Version)
	}
	ml := binary.BigEndian.Uint32(h[len(magic)+2:])
	if ml > MaxMetaBytes {
		return nil, fmt.Errorf("%w: header metadata of %d bytes (max %d)", ErrCorrupt, ml, MaxMetaBytes)
	}
	m := make([]byte, ml+4)
	if err := rd.full(m); err != nil {
		return nil, err
	}
	sum := crc32.Update(crc32.Checksum(h[len(magic):], crcTable), crcTable, m[:ml])
	if sum != binary.BigEndian.Uint32(m[ml:]) {
		return nil, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if err := json.Unmarshal(m[:ml], &rd.meta); err != nil {
		return nil, fmt.Errorf("%w: header metadata: %v", ErrCorrupt, err)
	}
	return rd, nil
}

// full reads exactly len(b) bytes; an early end is ErrTruncated.
func (rd *Reader) full(b []byte) error {
	n, err := io.ReadFull(rd.r, b)
	rd.bytes += uint64(n)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: it ends at byte %d, inside a chunk or before the end chunk", ErrTruncated, rd.bytes)
	case err != nil:
		return err
	}
	return nil
}

// Meta returns the header's metadata.
func (rd *Reader) Meta() Meta { return rd.meta }

// Next returns the records of the next chunk, or io.EOF after a valid end
// chunk. Any other error is final: every chunk returned before it was
// whole and checked. The records alias the reader's buffer until the next
// call.
func (rd *Reader) Next() ([]Record, error) {
	if rd.err != nil {
		return nil, rd.err
	}
	recs, err := rd.next()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			err = fmt.Errorf("chunk %d (after %d records): %w", rd.chunks+1, rd.records, err)
		}
		rd.err = err
	}
	return recs, err
}

func (rd *Reader) next() ([]Record, error) {
	if rd.done {
		return nil, io.EOF
	}
	var h [chunkHeaderLen]byte
	if err := rd.full(h[:]); err != nil {
		return nil, err
	}
	kind, count, n := h[0], binary.BigEndian.Uint32(h[1:]), binary.BigEndian.Uint32(h[5:])
	switch {
	case kind != kindRecords && kind != kindEnd:
		return nil, fmt.Errorf("%w: unknown chunk kind %#x", ErrCorrupt, kind)
	case n > MaxChunkBytes:
		return nil, fmt.Errorf("%w: chunk of %d bytes (max %d)", ErrCorrupt, n, MaxChunkBytes)
	case kind == kindEnd && (count != 0 || n > 2*binary.MaxVarintLen64):
		return nil, fmt.Errorf("%w: end chunk of %d bytes and %d records", ErrCorrupt, n, count)
	case uint64(count)*3 > uint64(n):
		// A record takes at least 3 bytes (two lengths and a key byte).
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrCorrupt, count, n)
	}
	if cap(rd.buf) < int(n)+4 {
		rd.buf = make([]byte, int(n)+4)
	}
	b := rd.buf[:n+4]
	if err := rd.full(b); err != nil {
		return nil, err
	}
	sum := crc32.Update(crc32.Checksum(h[:], crcTable), crcTable, b[:n])
	if sum != binary.BigEndian.Uint32(b[n:]) {
		return nil, fmt.Errorf("%w: chunk checksum mismatch", ErrCorrupt)
	}
	b = b[:n]
	if kind == kindEnd {
		recs, k1 := binary.Uvarint(b)
		chunks, k2 := 0, 0
		if k1 > 0 {
			var c uint64
			c, k2 = binary.Uvarint(b[k1:])
			chunks = int(min(c, 1<<62))
		}
		switch {
		case k1 <= 0 || k2 <= 0 || k1+k2 != len(b):
			return nil, fmt.Errorf("%w: bad end chunk", ErrCorrupt)
		case recs != rd.records || uint64(chunks) != rd.chunks:
			return nil, fmt.Errorf("%w: the end chunk counts %d records in %d chunks, the file holds %d in %d",
				ErrCorrupt, recs, chunks, rd.records, rd.chunks)
		}
		rd.done = true
		return nil, io.EOF
	}
	rd.recs = rd.recs[:0]
	for i := uint32(0); i < count; i++ {
		var key, set []byte
		var err error
		if key, b, err = field(b, 1, MaxKeyBytes); err != nil {
			return nil, fmt.Errorf("%w: record %d key: %v", ErrCorrupt, i, err)
		}
		if set, b, err = field(b, 0, MaxSetBytes); err != nil {
			return nil, fmt.Errorf("%w: record %d set: %v", ErrCorrupt, i, err)
		}
		rd.recs = append(rd.recs, Record{Key: key, Set: set})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the chunk's %d records", ErrCorrupt, len(b), count)
	}
	rd.records += uint64(count)
	rd.chunks++
	return rd.recs, nil
}

// field reads a uvarint length in [lo, hi] and that many bytes.
func field(b []byte, lo, hi uint64) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	switch {
	case k <= 0:
		return nil, nil, errors.New("bad length")
	case n < lo || n > hi:
		return nil, nil, fmt.Errorf("length %d (want %d to %d)", n, lo, hi)
	case n > uint64(len(b)-k):
		return nil, nil, fmt.Errorf("length %d past the chunk's end", n)
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

// Records returns how many records Next has returned.
func (rd *Reader) Records() uint64 { return rd.records }

// Bytes returns how many bytes were read so far.
func (rd *Reader) Bytes() uint64 { return rd.bytes }

// clip bounds a key quoted in an error message.
func clip(b []byte) string { return excerpt.Of(b, 64) }

// ForEach reads the backup r to its end chunk and calls fn with every
// record, in order; fn's Record is valid only during the call. It returns
// fn's first error, or the reader's (nil after a valid end chunk).
func ForEach(r io.Reader, fn func(Record) error) error {
	rd, err := NewReader(r)
	if err != nil {
		return err
	}
	for {
		recs, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}
