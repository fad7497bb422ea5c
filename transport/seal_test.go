package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// keyPair returns the two ends of one direction: a sealer and an opener
// with the same key.
func sealPair(t testing.TB) (send, recv *aeadState) {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	send, err := newAEADState(key)
	if err != nil {
		t.Fatal(err)
	}
	recv, _ = newAEADState(key)
	return send, recv
}

// records seals each of msgs as one Write and returns the wire bytes and
// the offsets where records start.
func records(t testing.TB, send *aeadState, msgs ...[]byte) ([]byte, []int) {
	t.Helper()
	var wire bytes.Buffer
	var starts []int
	w := newSealedWriter(&wire, send)
	for _, m := range msgs {
		before := wire.Len()
		if _, err := w.Write(m); err != nil {
			t.Fatal(err)
		}
		for off := before; off < wire.Len(); {
			starts = append(starts, off)
			off += 4 + int(binary.BigEndian.Uint32(wire.Bytes()[off:]))
		}
	}
	return wire.Bytes(), starts
}

func readAll(recv *aeadState, wire []byte) ([]byte, error) {
	return io.ReadAll(newSealedReader(bytes.NewReader(wire), recv, nil))
}

func TestSealRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 100, maxRecordPlain - 1, maxRecordPlain, maxRecordPlain + 1, 5*maxRecordPlain + 17, maxSealBatch + 3} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		send, recv := sealPair(t)
		wire, starts := records(t, send, msg, []byte("tail"))
		if want := (size+maxRecordPlain-1)/maxRecordPlain + 1; len(starts) != want {
			t.Fatalf("size %d: %d records, want %d", size, len(starts), want)
		}
		got, err := readAll(recv, wire)
		if err != nil || !bytes.Equal(got, append(msg, "tail"...)) {
			t.Fatalf("size %d: read %d bytes, %v", size, len(got), err)
		}
	}
}

// Every way of tampering with the record stream is caught at the first
// record it touches.
func TestSealRejectsTampering(t *testing.T) {
	msgs := [][]byte{[]byte("first record"), []byte("second record"), []byte("third record")}
	for _, tc := range []struct {
		name   string
		edit   func(wire []byte, starts []int) []byte
		wantOK int    // records read before the failure
		want   error  // the failure
		substr string // in the error
	}{
		{"bit flipped in ciphertext", func(w []byte, s []int) []byte { w[s[1]+6] ^= 1; return w }, 1, ErrProtocol, "failed authentication"},
		{"bit flipped in tag", func(w []byte, s []int) []byte { w[s[2]-1] ^= 0x80; return w }, 1, ErrProtocol, "failed authentication"},
		{"length changed", func(w []byte, s []int) []byte { w[s[1]+3]--; return w }, 1, ErrProtocol, "failed authentication"},
		{"record replayed", func(w []byte, s []int) []byte {
			return append(append(bytes.Clone(w[:s[2]]), w[s[1]:s[2]]...), w[s[2]:]...)
		}, 2, ErrProtocol, "failed authentication"},
		{"records reordered", func(w []byte, s []int) []byte {
			return append(append(bytes.Clone(w[:s[1]]), w[s[2]:]...), w[s[1]:s[2]]...)
		}, 1, ErrProtocol, "failed authentication"},
		{"record dropped", func(w []byte, s []int) []byte { return append(bytes.Clone(w[:s[1]]), w[s[2]:]...) }, 1, ErrProtocol, "failed authentication"},
		{"stream cut in a record", func(w []byte, s []int) []byte { return w[:s[2]-3] }, 1, io.ErrUnexpectedEOF, ""},
		{"stream cut in a length", func(w []byte, s []int) []byte { return w[:s[1]+2] }, 1, io.ErrUnexpectedEOF, ""},
		{"length zero", func(w []byte, s []int) []byte { return append(w[:s[1]], 0, 0, 0, 0) }, 1, ErrProtocol, "record length"},
		{"length of a bare tag", func(w []byte, s []int) []byte { return append(w[:s[1]], 0, 0, 0, tagSize) }, 1, ErrProtocol, "record length"},
		{"length over the limit", func(w []byte, s []int) []byte {
			return binary.BigEndian.AppendUint32(w[:s[1]], maxRecordPlain+tagSize+1)
		}, 1, ErrProtocol, "record length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send, recv := sealPair(t)
			wire, starts := records(t, send, msgs...)
			wire = tc.edit(bytes.Clone(wire), starts)
			r := newSealedReader(bytes.NewReader(wire), recv, nil)
			buf := make([]byte, 100)
			for i := range tc.wantOK {
				n, err := r.Read(buf)
				if err != nil || !bytes.Equal(buf[:n], msgs[i]) {
					t.Fatalf("record %d: %q, %v", i, buf[:n], err)
				}
			}
			_, err := r.Read(buf)
			if !errors.Is(err, tc.want) || !bytes.Contains([]byte(errString(err)), []byte(tc.substr)) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.substr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A partial record makes the reader call its hook before blocking for the
// rest (the connection arms its read deadline there); a whole record or an
// idle stream does not.
func TestSealedReaderArmsOnPartialRecord(t *testing.T) {
	send, recv := sealPair(t)
	wire, _ := records(t, send, []byte("whole"), []byte("partial"))
	pr, pw := io.Pipe()
	calls := 0
	r := newSealedReader(pr, recv, func() error { calls++; return nil })
	split := len(wire) - 5
	go func() {
		pw.Write(wire[:split])
		pw.Write(wire[split:])
		pw.Close()
	}()
	br := bufio.NewReader(r)
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "wholepartial" {
		t.Fatalf("read %q, %v", got, err)
	}
	if calls != 1 {
		t.Fatalf("partial hook called %d times, want 1", calls)
	}
}

func TestSealKeyRetires(t *testing.T) {
	send, _ := sealPair(t)
	send.seq = maxRecords
	if _, err := send.appendRecord(nil, []byte("x")); !errors.Is(err, errKeyExhausted) {
		t.Fatalf("sealing past maxRecords: %v", err)
	}
}

// FuzzSealedReader feeds arbitrary bytes to the record reader: it never
// panics and accepts nothing it did not authenticate. Only the genuine
// records of the seed, in order from the first, open under its key; so a
// stream read to its end without error must be a prefix of the seed's
// stream, and what it yields a prefix of the seed's plaintext.
func FuzzSealedReader(f *testing.F) {
	plain := append([]byte("hello"), bytes.Repeat([]byte("x"), 40000)...)
	send, _ := sealPair(f)
	wire, _ := records(f, send, plain[:5], plain[5:])
	f.Add(wire)
	f.Add(wire[:30])
	f.Add([]byte{0, 0, 0, 17, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, recv := sealPair(t)
		got, err := readAll(recv, in)
		if !bytes.HasPrefix(plain, got) {
			t.Fatalf("yielded %d bytes that were never sealed", len(got))
		}
		// io.ReadAll turns io.EOF into nil: no error means a clean end
		// after whole, authentic records.
		if err == nil && !bytes.HasPrefix(wire, in) {
			t.Fatalf("accepted %d bytes that are not genuine records", len(in))
		}
	})
}
