package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/vclock"
)

// encSet returns the encoding of a set with the given sibling values, written
// blind by actor a (so they are siblings), the last one deleted if tomb.
func encSet(t testing.TB, a string, tomb bool, vals ...string) []byte {
	t.Helper()
	var s vclock.Set
	for i, v := range vals {
		s, _ = vclock.Update(s, nil, vclock.Actor{Node: a, Epoch: 1}, vclock.Value{Data: []byte(v), Deleted: tomb && i == len(vals)-1, Timestamp: int64(i + 1)})
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Meta{Created: time.Unix(1, 0).UTC(), Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) ([]Record, error) {
	var out []Record
	err := ForEach(bytes.NewReader(b), func(r Record) error {
		out = append(out, Record{Key: bytes.Clone(r.Key), Set: bytes.Clone(r.Set)})
		return nil
	})
	return out, err
}

func testRecords(t testing.TB, n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Key: fmt.Appendf(nil, "key-%06d", i), Set: encSet(t, "n1", i%7 == 0, fmt.Sprintf("v%d", i), fmt.Sprintf("w%d", i))}
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	// Large values force several chunks.
	recs := testRecords(t, 300)
	big := bytes.Repeat([]byte("x"), 300<<10)
	var s vclock.Set
	s, _ = vclock.Update(s, nil, vclock.Actor{Node: "n2", Epoch: 3}, vclock.Value{Data: big})
	bs, _ := s.MarshalBinary()
	for i := range 8 {
		recs = append(recs, Record{Key: fmt.Appendf(nil, "big-%d", i), Set: bs})
	}
	file := writeFile(t, recs)
	got, err := readAll(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(got[i].Key, recs[i].Key) || !bytes.Equal(got[i].Set, recs[i].Set) {
			t.Fatalf("record %d differs", i)
		}
	}
	rd, _ := NewReader(bytes.NewReader(file))
	if rd.Meta().Source != "test" {
		t.Errorf("meta = %+v", rd.Meta())
	}
}

func TestEmptyBackup(t *testing.T) {
	got, err := readAll(writeFile(t, nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty backup: %d records, %v", len(got), err)
	}
}

// Every proper prefix of a file but the empty one is refused as truncated,
// never read as a shorter backup.
func TestTruncatedIsRefused(t *testing.T) {
	file := writeFile(t, testRecords(t, 20))
	if _, err := readAll(nil); !errors.Is(err, ErrNotBackup) {
		t.Fatalf("empty file: err = %v, want ErrNotBackup", err)
	}
	for n := 1; n < len(file); n++ {
		_, err := readAll(file[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrTruncated", n, len(file), err)
		}
	}
}

// Every single flipped byte is caught: by a checksum, a length check or
// the magic and version checks.
func TestCorruptionIsCaught(t *testing.T) {
	file := writeFile(t, testRecords(t, 10))
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x20
		_, err := readAll(bad)
		if err == nil {
			t.Fatalf("byte %d flipped: read without error", i)
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrVersion) {
			t.Fatalf("byte %d flipped: unexpected error %v", i, err)
		}
	}
}

func TestWrongVersionIsNamed(t *testing.T) {
	file := writeFile(t, testRecords(t, 1))
	file[len(magic)+1] = 2 // version 2
	_, err := NewReader(bytes.NewReader(file))
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
	if want := "version 2"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not name %q", err, want)
	}
	for in, want := range map[string]error{
		"hello, this is not a backup at all": ErrNotBackup,
		"hello":                              ErrNotBackup,
		"QKV":                                ErrTruncated, // a prefix of the magic: cut short
	} {
		if _, err := NewReader(strings.NewReader(in)); !errors.Is(err, want) {
			t.Errorf("%q: err = %v, want %v", in, err, want)
		}
	}
}

// Records of the chunks before a bad one are returned; the error says
// which chunk.
func TestGoodChunksBeforeABadOne(t *testing.T) {
	recs := testRecords(t, 3)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Meta{})
	for _, r := range recs {
		_ = w.Add(r)
		_ = w.Flush() // one record per chunk
	}
	_ = w.Close()
	file := buf.Bytes()
	file[len(file)-30] ^= 1 // inside the last record chunk
	got, err := readAll(file)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if len(got) != 2 {
		t.Fatalf("read %d records before the bad chunk, want 2", len(got))
	}
	if !bytes.Contains([]byte(err.Error()), []byte("chunk 3")) {
		t.Errorf("error %q does not name chunk 3", err)
	}
}

func TestWriterRefusesBadRecords(t *testing.T) {
	w, _ := NewWriter(io.Discard, Meta{})
	if err := w.Add(Record{Key: nil, Set: []byte{1}}); err == nil {
		t.Error("empty key accepted")
	}
	if err := w.Add(Record{Key: make([]byte, MaxKeyBytes+1)}); err == nil {
		t.Error("oversized key accepted")
	}
	if err := w.Add(Record{Key: []byte("k"), Set: make([]byte, MaxSetBytes+1)}); err == nil {
		t.Error("oversized set accepted")
	}
}

// A chunk header claiming a huge payload is refused before allocating.
func TestHugeChunkLengthRefused(t *testing.T) {
	file := writeFile(t, nil)
	hdr := len(file) - (chunkHeaderLen + 2 + 4) // the end chunk
	bad := append(bytes.Clone(file[:hdr]), kindRecords, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff)
	_, err := readAll(bad)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(writeFile(f, testRecords(f, 3)))
	f.Add(writeFile(f, nil))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b)
		if err != nil {
			return
		}
		// What reads cleanly writes back to a file that reads the same.
		again, err := readAll(writeFile(t, got))
		if err != nil || len(again) != len(got) {
			t.Fatalf("rewrite: %d records, %v; want %d", len(again), err, len(got))
		}
	})
}
