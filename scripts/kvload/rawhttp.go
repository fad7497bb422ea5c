package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// maxLine bounds a status, header or chunk-size line: the reader's buffer,
// so a line is parsed in place. quorumkv's longest header (the causal
// context) is far shorter.
const maxLine = 16 << 10

// errNoAnswer is a connection that failed before any byte of the answer:
// on a reused connection, most likely the server closing it while idle,
// which net/http's Transport also retries once on a new connection.
var errNoAnswer = errors.New("connection closed before an answer")

// rawHTTP is an HTTP/1.1 client of one keep-alive connection, as lean as
// the RESP client so that the fronts, not the clients, are compared: a
// request is written in one call from a reused buffer and its answer
// parsed in place from a buffered reader, with no goroutine or channel per
// request (net/http's Transport runs a read and a write goroutine per
// connection and hands each request between them).
//
// It handles what a server may answer with: a Content-Length body, a
// chunked one, one delimited by the connection's close, interim 1xx
// answers, and `Connection: close`, after which the next request dials a
// new connection. It is not safe for concurrent use.
type rawHTTP struct {
	addr   string
	nc     net.Conn
	rd     *bufio.Reader
	buf    []byte
	reused bool      // nc has answered a request
	sink   io.Writer // receives answer bodies when set (tests); nil discards them
}

// do sends method on path (prefix+key) with the extra header lines hdr
// (each ending in CRLF) and, unless method is GET or HEAD, body with its
// Content-Length; it returns the answer's status once its body is read.
func (c *rawHTTP) do(method, prefix, key, hdr string, body []byte) (int, error) {
	for retried := false; ; retried = true {
		if c.nc == nil {
			nc, err := net.Dial("tcp", c.addr)
			if err != nil {
				return 0, err
			}
			c.nc, c.rd, c.reused = nc, bufio.NewReaderSize(nc, maxLine), false
		}
		reused := c.reused
		status, keep, err := c.roundTrip(method, prefix, key, hdr, body)
		if err == nil && keep {
			c.reused = true
			return status, nil
		}
		c.close()
		if err == nil {
			return status, nil
		}
		if !errors.Is(err, errNoAnswer) || !reused || retried {
			return 0, err
		}
	}
}

func (c *rawHTTP) roundTrip(method, prefix, key, hdr string, body []byte) (status int, keep bool, err error) {
	b := append(c.buf[:0], method...)
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, key...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\n"...)
	b = append(b, hdr...)
	if method != "GET" && method != "HEAD" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n\r\n"...)
		b = append(b, body...)
	} else {
		b = append(b, "\r\n"...)
	}
	c.buf = b
	if _, err := c.nc.Write(b); err != nil {
		return 0, false, fmt.Errorf("%w: %v", errNoAnswer, err)
	}
	if _, err := c.rd.Peek(1); err != nil {
		return 0, false, fmt.Errorf("%w: %v", errNoAnswer, err)
	}
	return readResponse(c.rd, method == "HEAD", c.sink)
}

func (c *rawHTTP) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc, c.rd = nil, nil
	}
}

// readResponse reads one answer (skipping interim 1xx ones) and its body,
// which it copies to sink (nil: discards it). keep says whether the
// connection can carry another request.
func readResponse(rd *bufio.Reader, head bool, sink io.Writer) (status int, keep bool, err error) {
	for {
		line, err := readLine(rd)
		if err != nil {
			return 0, false, err
		}
		// "HTTP/1.x SSS reason", the reason optional.
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
			(len(line) > 12 && line[12] != ' ') {
			return 0, false, fmt.Errorf("bad status line %q", line)
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return 0, false, fmt.Errorf("bad status line %q", line)
		}
		http10 := line[7] == '0'
		keep = !http10 // HTTP/1.0 closes unless it says keep-alive
		length, chunked := int64(-1), false
		for {
			line, err := readLine(rd)
			if err != nil {
				return 0, false, err
			}
			if len(line) == 0 {
				break
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, false, fmt.Errorf("bad header line %q", line)
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 || (length >= 0 && n != length) {
					return 0, false, fmt.Errorf("bad Content-Length %q", value)
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				// chunked is last when present (RFC 9112 6.1); any other
				// coding of the body is read as it is, not decoded.
				i := bytes.LastIndexByte(value, ',')
				chunked = bytes.EqualFold(bytes.TrimSpace(value[i+1:]), []byte("chunked"))
			case bytes.EqualFold(name, []byte("Connection")):
				for opt := range bytes.SplitSeq(value, []byte(",")) {
					switch opt = bytes.TrimSpace(opt); {
					case bytes.EqualFold(opt, []byte("close")):
						keep = false
					case bytes.EqualFold(opt, []byte("keep-alive")) && http10:
						keep = true
					}
				}
			}
		}
		switch {
		case status == 101:
			return 0, false, errors.New("unexpected 101 Switching Protocols")
		case status < 200:
			continue // interim answer; the final one follows
		case head || status == 204 || status == 304:
			return status, keep, nil
		case chunked:
			return status, keep, readChunked(rd, sink)
		case length >= 0:
			return status, keep, copyBody(rd, sink, length)
		default:
			// Delimited by the close: the connection cannot be reused.
			if sink == nil {
				sink = io.Discard
			}
			_, err := io.Copy(sink, rd)
			return status, false, err
		}
	}
}

// readChunked reads a chunked body and its trailer.
func readChunked(rd *bufio.Reader, sink io.Writer) error {
	for {
		line, err := readLine(rd)
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";")) // chunk extensions are ignored
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailer fields, up to the empty line
				line, err := readLine(rd)
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if err := copyBody(rd, sink, n); err != nil {
			return err
		}
		if line, err := readLine(rd); err != nil || len(line) != 0 {
			return fmt.Errorf("chunk not followed by CRLF: %q %v", line, err)
		}
	}
}

// copyBody reads n bytes of body into sink, or discards them if it is nil.
func copyBody(rd *bufio.Reader, sink io.Writer, n int64) error {
	var err error
	if sink == nil {
		var d int
		for n > 0 && err == nil { // Discard takes an int
			d, err = rd.Discard(int(min(n, 1<<30)))
			n -= int64(d)
		}
	} else {
		_, err = io.CopyN(sink, rd, n)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns a line without its CRLF (or bare LF), valid until the
// next read.
func readLine(rd *bufio.Reader) ([]byte, error) {
	line, err := rd.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes", maxLine)
	case errors.Is(err, io.EOF):
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
