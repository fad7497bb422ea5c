package resp

import (
	"bytes"
	"fmt"
	"io"

	"github.com/quorumkv/quorumkv/httpguard"
)

// RESP reader limits. Every size a client sends is checked against these
// before anything is allocated for it.
const (
	// maxArgs bounds the arguments of one command (an MGET of 8191 keys).
	maxArgs = 8192
	// maxInline bounds one inline (telnet-style) command line, as Redis's
	// PROTO_INLINE_MAX_SIZE does.
	maxInline = 64 << 10
	// maxHeader bounds a "*<count>\r\n" or "$<len>\r\n" line.
	maxHeader = 32
	// readBuf is a connection's initial (and idle) read buffer.
	readBuf = 16 << 10
)

// protocolError is malformed input; the connection answers
// "-ERR Protocol error: ..." and closes, as Redis does, since the stream
// cannot be resynchronised.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "protocol error: " + e.msg }

func protoErr(format string, args ...any) error {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// reader splits a client's byte stream into commands. It keeps one
// buffer per connection that grows only to hold a single command (at most
// maxCmd bytes) and shrinks back when idle, so memory per connection is
// bounded however the client pipelines. (redcon's own reader grows its
// buffer without compacting it while a pipeline streams, without bound.)
//
// Not safe for concurrent use: one connection goroutine owns it.
type reader struct {
	r          io.Reader
	buf        []byte // buf[start:end] is read but not yet parsed
	start, end int
	args       [][]byte // reused for every command
	maxBulk    int      // largest bulk string
	maxCmd     int      // largest command, all of it
}

func newReader(r io.Reader, maxBulk, maxCmd int) *reader {
	return &reader{r: r, buf: make([]byte, readBuf), maxBulk: maxBulk, maxCmd: maxCmd}
}

// Buffered reports whether unparsed bytes are waiting.
func (rd *reader) Buffered() bool { return rd.end > rd.start }

// next returns the next complete command from the buffer, or ok=false when
// more bytes are needed (call fill). The arguments alias the buffer: they
// are valid only until the next call of next or fill. Empty commands (a
// blank inline line, "*0") are skipped.
func (rd *reader) next() (args [][]byte, ok bool, err error) {
	for {
		b := rd.buf[rd.start:rd.end]
		if len(b) == 0 {
			return nil, false, nil
		}
		var n int
		if b[0] == '*' {
			args, n, err = parseRESPArray(b, rd.args[:0], rd.maxBulk)
		} else {
			if i := bytes.IndexByte(b[:min(len(b), maxInline)], '\n'); i >= 0 && httpguard.IsHTTP(b[:i]) {
				return nil, false, errCrossProtocol
			}
			args, n, err = parseRESPInline(b, rd.args[:0], rd.maxBulk)
		}
		if err != nil {
			return nil, false, err
		}
		if n == 0 {
			if len(b) >= rd.maxCmd {
				return nil, false, protoErr("command larger than %d bytes", rd.maxCmd)
			}
			return nil, false, nil
		}
		rd.start += n
		rd.args = args[:0]
		if len(args) > 0 {
			return args, true, nil
		}
	}
}

// fill reads more bytes: it first makes room by moving the unparsed bytes
// to the front, growing the buffer only when they fill it (never past
// maxCmd plus a header), and drops a grown buffer once it is empty.
func (rd *reader) fill() error {
	if rd.start == rd.end {
		rd.start, rd.end = 0, 0
		if len(rd.buf) > readBuf {
			rd.buf = make([]byte, readBuf)
		}
	}
	if rd.end == len(rd.buf) {
		if rd.start > 0 {
			rd.end = copy(rd.buf, rd.buf[rd.start:rd.end])
			rd.start = 0
		} else {
			size := min(2*len(rd.buf), rd.maxCmd+maxHeader)
			if size <= len(rd.buf) {
				return protoErr("command larger than %d bytes", rd.maxCmd)
			}
			nb := make([]byte, size)
			copy(nb, rd.buf[:rd.end])
			rd.buf = nb
		}
	}
	n, err := rd.r.Read(rd.buf[rd.end:])
	rd.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// parseRESPArray parses one "*<n>\r\n" array of "$<len>\r\n<bytes>\r\n"
// bulk strings from the start of b. It returns the arguments (appended to
// args, aliasing b) and the bytes consumed, or n=0 when b holds only part
// of the command.
func parseRESPArray(b []byte, args [][]byte, maxBulk int) (_ [][]byte, n int, err error) {
	count, pos, err := parseRESPHeader(b, '*', 0)
	if err != nil || pos == 0 {
		return args, 0, err
	}
	if count <= 0 {
		return args, pos, nil // "*0" and "*-1" are empty commands: skipped
	}
	if count > maxArgs {
		return args, 0, protoErr("%d arguments, at most %d", count, maxArgs)
	}
	for range count {
		if pos == len(b) {
			return args, 0, nil
		}
		if b[pos] != '$' {
			return args, 0, protoErr("expected '$', got %q", b[pos])
		}
		size, next, err := parseRESPHeader(b, '$', pos)
		if err != nil || next == 0 {
			return args, 0, err
		}
		if size < 0 || size > maxBulk {
			return args, 0, protoErr("invalid bulk length %d (at most %d)", size, maxBulk)
		}
		if len(b)-next < size+2 {
			return args, 0, nil
		}
		if b[next+size] != '\r' || b[next+size+1] != '\n' {
			return args, 0, protoErr("bulk string not terminated by CRLF")
		}
		args = append(args, b[next:next+size:next+size])
		pos = next + size + 2
	}
	return args, pos, nil
}

// parseRESPHeader parses "<c><int>\r\n" at b[at:]. It returns the integer
// and the offset just past the line, or next=0 when the line is incomplete.
func parseRESPHeader(b []byte, c byte, at int) (v, next int, err error) {
	end := min(len(b), at+maxHeader)
	i := bytes.IndexByte(b[at:end], '\n')
	if i < 0 {
		if end-at == maxHeader {
			return 0, 0, protoErr("%q line longer than %d bytes", c, maxHeader)
		}
		return 0, 0, nil
	}
	line := b[at+1 : at+i]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, 0, protoErr("invalid %q line", c)
	}
	line = line[:len(line)-1]
	neg := false
	if len(line) > 0 && line[0] == '-' {
		neg, line = true, line[1:]
	}
	if len(line) == 0 || len(line) > 10 {
		return 0, 0, protoErr("invalid %q length", c)
	}
	for _, d := range line {
		if d < '0' || d > '9' {
			return 0, 0, protoErr("invalid %q length", c)
		}
		v = v*10 + int(d-'0')
	}
	if neg {
		v = -v
	}
	return v, at + i + 1, nil
}

// parseRESPInline parses one inline command: a line of words separated by
// spaces or tabs, ended by LF (optionally CRLF), as telnet users type. Words
// may not be quoted; send RESP arrays (as every client library does) for
// binary values. A word longer than maxBulk is refused, as a bulk string of
// that length would be.
func parseRESPInline(b []byte, args [][]byte, maxBulk int) (_ [][]byte, n int, err error) {
	end := min(len(b), maxInline)
	i := bytes.IndexByte(b[:end], '\n')
	if i < 0 {
		if end == maxInline {
			return args, 0, protoErr("inline command longer than %d bytes", maxInline)
		}
		return args, 0, nil
	}
	line := b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	for len(line) > 0 {
		j := 0
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > 0 {
			if j > maxBulk {
				return args, 0, protoErr("inline argument of %d bytes (at most %d)", j, maxBulk)
			}
			if len(args) == maxArgs {
				return args, 0, protoErr("more than %d arguments", maxArgs)
			}
			args = append(args, line[:j:j])
		}
		if j == len(line) {
			break
		}
		line = line[j+1:]
	}
	return args, i + 1, nil
}
