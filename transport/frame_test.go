package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

const fuzzMaxFrame = 1 << 16

func TestReadFrame(t *testing.T) {
	valid := []struct {
		name string
		h    header
		body []byte
	}{
		{"request", header{kind: kindRequest, method: 7, id: 1, budget: 250}, []byte("body")},
		{"empty response", header{kind: kindResponse, id: 1<<64 - 1}, nil},
		{"error", header{kind: kindError, id: 3}, appendErrorBody(nil, 42, "nope", 100)},
		{"failure", header{kind: kindFailure, id: 4}, []byte{failReplyTooLarge}},
		{"largest", header{kind: kindResponse, id: 5}, make([]byte, fuzzMaxFrame-headerSize)},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(bytes.NewReader(appendFrame(nil, tc.h, tc.body)))
			h, body, err := readFrame(br, fuzzMaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.h || !bytes.Equal(body, tc.body) {
				t.Fatalf("got %+v %d bytes, want %+v %d bytes", h, len(body), tc.h, len(tc.body))
			}
			if _, _, err := readFrame(br, fuzzMaxFrame); err != io.EOF {
				t.Fatalf("after the frame: %v, want io.EOF", err)
			}
		})
	}

	full := appendFrame(nil, header{kind: kindRequest, method: 1, id: 9}, []byte("0123456789"))
	invalid := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"cut in length", full[:2], io.ErrUnexpectedEOF},
		{"cut in header", full[:10], io.ErrUnexpectedEOF},
		{"cut in body", full[:len(full)-1], io.ErrUnexpectedEOF},
		{"length below header", binary.BigEndian.AppendUint32(nil, headerSize-1), ErrProtocol},
		{"length over max", binary.BigEndian.AppendUint32(nil, fuzzMaxFrame+1), ErrFrameTooLarge},
		{"length 4 GiB", binary.BigEndian.AppendUint32(nil, 1<<32-1), ErrFrameTooLarge},
		{"kind 0", appendFrame(nil, header{method: 1}, nil), ErrProtocol},
		{"kind 5", appendFrame(nil, header{kind: 5}, nil), ErrProtocol},
		{"request method 0", appendFrame(nil, header{kind: kindRequest}, nil), ErrProtocol},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readFrame(bufio.NewReader(bytes.NewReader(tc.in)), fuzzMaxFrame)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	re, err := parseErrorBody(appendErrorBody(nil, 513, "why", 1000))
	if err != nil || re.Code != 513 || re.Msg != "why" {
		t.Fatalf("got %+v, %v", re, err)
	}
	if re, _ := parseErrorBody(appendErrorBody(nil, 1, "0123456789", 7)); re.Msg != "01234" {
		t.Fatalf("message not cut to the frame: %q", re.Msg)
	}
	if _, err := parseErrorBody([]byte{1}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("short body: %v", err)
	}
	if err := failureErr([]byte{failReplyTooLarge}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("reply too large: %v", err)
	}
	if err := failureErr([]byte{200}); err == nil || errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("unknown reason: %v", err)
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame decoder: it must never
// panic, must return an error or a frame within the limit, and re-encoding
// a decoded frame must decode to the same frame. The error and failure
// body decoders get the body too.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, header{kind: kindRequest, method: 7, id: 1, budget: 250}, []byte("body")))
	f.Add(appendFrame(nil, header{kind: kindResponse, id: 2}, nil))
	f.Add(appendFrame(nil, header{kind: kindError, id: 3}, appendErrorBody(nil, 42, "nope", 100)))
	f.Add(appendFrame(nil, header{kind: kindFailure, id: 4}, []byte{failReplyTooLarge}))
	f.Add(appendFrame(appendFrame(nil, header{kind: kindResponse, id: 5}, []byte("a")), header{kind: kindRequest, method: 1, id: 6}, nil))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<31))
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		for {
			h, body, err := readFrame(br, fuzzMaxFrame)
			if err != nil {
				if h != (header{}) || body != nil {
					t.Fatalf("error %v with a frame", err)
				}
				return
			}
			if headerSize+len(body) > fuzzMaxFrame {
				t.Fatalf("accepted a %d-byte body over the limit", len(body))
			}
			switch h.kind {
			case kindError:
				if re, err := parseErrorBody(body); err == nil {
					again, err := parseErrorBody(appendErrorBody(nil, re.Code, re.Msg, len(body)))
					if err != nil || *again != *re {
						t.Fatalf("error body round trip: %+v -> %+v, %v", re, again, err)
					}
				}
			case kindFailure:
				_ = failureErr(body)
			}
			h2, body2, err := readFrame(bufio.NewReader(bytes.NewReader(appendFrame(nil, h, body))), fuzzMaxFrame)
			if err != nil || h2 != h || !bytes.Equal(body, body2) {
				t.Fatalf("round trip: %+v %q -> %+v %q, %v", h, body, h2, body2, err)
			}
		}
	})
}
