package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"
	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// readAll parses every command of in, delivered to the reader in chunks of
// chunk bytes, and returns them (copied) and the first error.
func readAll(in []byte, chunk int, maxBulk, maxCmd int) ([][]string, error) {
	rd := newReader(&chunkReader{b: in, n: chunk}, maxBulk, maxCmd)
	var out [][]string
	for {
		args, ok, err := rd.next()
		if err != nil {
			return out, err
		}
		if !ok {
			if err := rd.fill(); err != nil {
				if err == io.EOF {
					return out, nil
				}
				return out, err
			}
			continue
		}
		cmd := make([]string, len(args))
		for i, a := range args {
			cmd[i] = string(a)
		}
		out = append(out, cmd)
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

func encodeCommand(args []string) []byte {
	b := redcon.AppendArray(nil, len(args))
	for _, a := range args {
		b = redcon.AppendBulkString(b, a)
	}
	return b
}

func TestRESPReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
		err  string
	}{
		{"one", "*1\r\n$4\r\nPING\r\n", "[[PING]]", ""},
		{"two pipelined", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n", "[[GET k] [PING]]", ""},
		{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "[[ECHO ]]", ""},
		{"binary bulk", "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", "[[ECHO \r\n\x00\xff]]", ""},
		{"empty arrays skipped", "*0\r\n*-1\r\n*1\r\n$1\r\nX\r\n", "[[X]]", ""},
		{"inline", "SET  k\tv\r\nGET k\n\r\n\n", "[[SET k v] [GET k]]", ""},
		{"incomplete at EOF", "*2\r\n$3\r\nGET\r\n$1\r\n", "[]", ""},
		{"negative bulk", "*1\r\n$-2\r\n", "", "invalid bulk length -2"},
		{"bulk over limit", "*1\r\n$101\r\n", "", "invalid bulk length 101 (at most 100)"},
		{"no CR", "*1\n$4\r\nPING\r\n", "", "invalid '*' line"},
		{"bad count", "*1x\r\n", "", "invalid '*' length"},
		{"count too long", "*12345678901\r\n", "", "invalid '*' length"},
		{"too many args", fmt.Sprintf("*%d\r\n", maxArgs+1), "", "8193 arguments, at most 8192"},
		{"not a bulk", "*1\r\n:1\r\n", "", "expected '$'"},
		{"bulk not terminated", "*1\r\n$4\r\nPINGxx", "", "bulk string not terminated by CRLF"},
		{"header too long", "*1\r\n$" + strings.Repeat("1", 40), "", "'$' line longer than 32 bytes"},
		{"command too large", "*3\r\n$3\r\nSET\r\n$100\r\n" + strings.Repeat("k", 100) + "\r\n$100\r\n" + strings.Repeat("v", 100),
			"", "command larger than 150 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 7, 1 << 20} {
				got, err := readAll([]byte(tc.in), chunk, 100, 150)
				if tc.err != "" {
					var pe *protocolError
					if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("chunk %d: error %v, want a protocol error with %q", chunk, err, tc.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if s := fmt.Sprint(got); s != tc.want && !(s == "[]" && tc.want == "[]") {
					t.Fatalf("chunk %d: got %q, want %q", chunk, s, tc.want)
				}
			}
		})
	}
}

func TestRESPReaderInlineLimit(t *testing.T) {
	_, err := readAll([]byte(strings.Repeat("a", maxInline+1)), 4096, 1<<20, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "inline command longer than 65536 bytes") {
		t.Fatalf("error %v, want the inline limit", err)
	}
}

// The reader keeps at most one command's worth of buffer however a client
// pipelines, and gives a grown buffer back once idle.
func TestRESPReaderBoundedBuffer(t *testing.T) {
	var in bytes.Buffer
	for in.Len() < 4<<20 {
		in.Write(encodeCommand([]string{"SET", "key", strings.Repeat("v", 100)}))
	}
	rd := newReader(&chunkReader{b: in.Bytes(), n: 1 << 16}, 1<<20, 2<<20)
	n := 0
	for {
		_, ok, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if len(rd.buf) > readBuf {
			t.Fatalf("buffer grew to %d bytes for 119-byte commands", len(rd.buf))
		}
		if ok {
			n++
			continue
		}
		if err := rd.fill(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		t.Fatal("no commands")
	}
	big := encodeCommand([]string{"SET", "k", strings.Repeat("v", 100<<10)})
	rd = newReader(&chunkReader{b: big, n: 4096}, 1<<20, 2<<20)
	for {
		_, ok, err := rd.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if err := rd.fill(); err != nil {
			t.Fatal(err)
		}
	}
	if len(rd.buf) < 100<<10 {
		t.Fatalf("buffer of %d bytes holds a 100 KiB command?", len(rd.buf))
	}
	if err := rd.fill(); err != io.EOF {
		t.Fatalf("fill at EOF: %v", err)
	}
	if len(rd.buf) != readBuf {
		t.Fatalf("idle buffer is %d bytes, want it back at %d", len(rd.buf), readBuf)
	}
}

// Against redcon's parser, on well-formed pipelines split anywhere.
func TestRESPReaderMatchesRedcon(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cmds := rapid.SliceOfN(rapid.SliceOfN(rapid.StringN(0, 40, -1), 1, 6), 1, 8).Draw(t, "cmds")
		var in []byte
		for _, c := range cmds {
			in = append(in, encodeCommand(c)...)
		}
		got, err := readAll(in, rapid.IntRange(1, 64).Draw(t, "chunk"), 1<<10, 1<<12)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for rest := in; len(rest) > 0; {
			complete, args, _, left, err := redcon.ReadNextCommand(rest, nil)
			if err != nil || !complete {
				t.Fatalf("redcon: complete=%v err=%v", complete, err)
			}
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			want = append(want, cmd)
			rest = left
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("got %q, redcon %q", got, want)
		}
	})
}

// FuzzRESPReader: arbitrary bytes never panic the reader or grow it past
// its limits; whatever parses re-encodes to bytes that parse the same.
func FuzzRESPReader(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "GET k\r\n", "*1\r\n$-2\r\n",
		"*-1\r\n", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "*1\r\n$4\r\nPINGxx", "\r\n\r\n", "*0\r\n", "$4 PING\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const maxBulk, maxCmd = 64, 256
		got, err := readAll(in, int(chunk)+1, maxBulk, maxCmd)
		var pe *protocolError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("non-protocol error %v", err)
		}
		var again []byte
		for _, c := range got {
			for _, a := range c {
				if len(a) > maxBulk {
					t.Fatalf("argument of %d bytes past the %d limit", len(a), maxBulk)
				}
			}
			if len(c) > 0 {
				again = append(again, encodeCommand(c)...)
			}
		}
		round, err := readAll(again, 1<<20, 1<<20, 1<<30)
		if err != nil {
			t.Fatalf("re-encoded commands do not parse: %v", err)
		}
		if fmt.Sprintf("%q", round) != fmt.Sprintf("%q", got) {
			t.Fatalf("decode(encode(decode(b))) = %q, decode(b) = %q", round, got)
		}
	})
}

func TestParseRESPOptions(t *testing.T) {
	args := words
	for _, tc := range []struct {
		in      string
		allowed optSet
		want    quorum.Params
		ctx     string
		err     string
	}{
		{"", readOpts, quorum.Params{}, "", ""},
		{"R 2", readOpts, quorum.Params{R: 2}, "", ""},
		{"r quorum", readOpts, quorum.Params{R: 2}, "", ""},
		{"N 5 r quorum", readOpts, quorum.Params{N: 5, R: 3}, "", ""},
		{"r all N 5", readOpts, quorum.Params{N: 5, R: 5}, "", ""},
		{"W one PW 1 DW 1 TIMEOUT 250", writeOpts, quorum.Params{W: 1, PW: 1, DW: 1, Timeout: 250 * time.Millisecond}, "", ""},
		{"timeout 2s", writeOpts, quorum.Params{Timeout: 2 * time.Second}, "", ""},
		{"W 2 PZ 2", writeOpts, quorum.Params{W: 2, PZ: 2}, "", ""},
		{"PZ -1", writeOpts, quorum.Params{}, "", "pz=-1: cannot be negative"},
		{"PZ 2", readOpts, quorum.Params{}, "", "unknown option \"PZ\""},
		{"CONTEXT abc W 2", writeOpts | optContext, quorum.Params{W: 2}, "abc", ""},
		{"PR 0", readOpts, quorum.Params{}, "", ""},
		{"W 2", readOpts, quorum.Params{}, "", "unknown option \"W\" (this command takes N, R, PR, TIMEOUT)"},
		{"CONTEXT x", writeOpts, quorum.Params{}, "", "unknown option"},
		{"R", readOpts, quorum.Params{}, "", "option \"R\" needs a value"},
		{"R 1 r 2", readOpts, quorum.Params{}, "", "option R given twice"},
		{"EX 10", writeOpts, quorum.Params{}, "", "does not support expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL) (option EX)"},
		{"NX", writeOpts, quorum.Params{}, "", "does not support create-only writes here (SET takes NX) (option NX)"},
		{"XX", writeOpts, quorum.Params{}, "", "does not support SET ... XX (option XX)"},
		{"N 0", readOpts, quorum.Params{}, "", "n=0: must be at least 1"},
		{"N x", readOpts, quorum.Params{}, "", "not a number"},
		{"R -1", readOpts, quorum.Params{}, "", "r=-1: must be at least 1"},
		{"PR -1", readOpts, quorum.Params{}, "", "pr=-1: cannot be negative"},
		{"R lots", readOpts, quorum.Params{}, "", "is not a number"},
		{"TIMEOUT 0", readOpts, quorum.Params{}, "", "timeout=0s"},
		{"TIMEOUT 99999999999999", readOpts, quorum.Params{}, "", "at most 5m0s"},
		{"TIMEOUT soon", readOpts, quorum.Params{}, "", "want milliseconds or a duration"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			o, err := parseOptions(args(tc.in), tc.allowed, 3)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.p != tc.want || o.context != tc.ctx || o.hasContext != (tc.ctx != "") {
				t.Fatalf("got %+v, want %+v context %q", o, tc.want, tc.ctx)
			}
		})
	}
}

func TestMergeParams(t *testing.T) {
	for _, tc := range []struct {
		name            string
		req, conn, want quorum.Params
	}{
		{"no connection settings", quorum.Params{R: 1}, quorum.Params{}, quorum.Params{R: 1}},
		{"connection fills", quorum.Params{}, quorum.Params{N: 3, R: 3, W: 3, PW: 1, Timeout: time.Second},
			quorum.Params{N: 3, R: 3, W: 3, PW: 1, Timeout: time.Second}},
		{"command wins", quorum.Params{W: 1}, quorum.Params{R: 3, W: 3}, quorum.Params{R: 3, W: 1}},
		{"command N caps connection counts", quorum.Params{N: 1}, quorum.Params{N: 3, R: 3, W: 2, PR: 2},
			quorum.Params{N: 1, R: 1, W: 1, PR: 1}},
		{"PR alone applies without N", quorum.Params{}, quorum.Params{PR: 1}, quorum.Params{PR: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeParams(tc.req, tc.conn); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	// Siblings are sorted by dot; the pick is the latest timestamp, ties to
	// the later (greater) dot, never a tombstone.
	mk := func(ts ...int64) (s setOfValues) {
		for i, t := range ts {
			s = append(s, valueAt(i, t))
		}
		return s
	}
	for _, tc := range []struct {
		name string
		set  setOfValues
		want string
		live int
	}{
		{"none", nil, "", 0},
		{"one", mk(5), "v0", 1},
		{"latest wins", mk(7, 9, 8), "v1", 3},
		{"tie to the greater dot", mk(9, 9, 1), "v1", 3},
		{"tombstone skipped", append(mk(1), tomb(99)), "v0", 1},
		{"only tombstones", setOfValues{tomb(1)}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, live := pick(tc.set.set())
			if string(v.Data) != tc.want || live != tc.live {
				t.Fatalf("pick = %q (%d live), want %q (%d)", v.Data, live, tc.want, tc.live)
			}
		})
	}
}

func TestRESPGlob(t *testing.T) {
	for _, tc := range []struct {
		s, pat string
		want   bool
	}{
		{"save", "save", true}, {"save", "*", true}, {"save", "s*", true}, {"save", "s?ve", true},
		{"save", "sav", false}, {"appendonly", "*only", true}, {"save", "", false}, {"", "*", true},
	} {
		if got := redconMatch(tc.s, tc.pat); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.s, tc.pat, got)
		}
	}
}

// setOfValues builds sets for pick: siblings in dot order.
type setOfValues []vclock.Sibling

func valueAt(i int, ts int64) vclock.Sibling {
	return vclock.Sibling{Dot: vclock.Dot{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: uint64(i + 1)},
		Value: vclock.Value{Data: []byte(fmt.Sprintf("v%d", i)), Timestamp: ts}}
}

func tomb(ts int64) vclock.Sibling {
	return vclock.Sibling{Dot: vclock.Dot{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 100},
		Value: vclock.Value{Deleted: true, Timestamp: ts}}
}

func (s setOfValues) set() vclock.Set { return vclock.Set{Siblings: s} }

// BenchmarkRESPReader parses a pipeline of SET commands, per value size.
func BenchmarkRESPReader(b *testing.B) {
	for _, size := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			cmd := encodeCommand([]string{"SET", "key:000123", strings.Repeat("v", size)})
			in := bytes.Repeat(cmd, max(1, 64<<10/len(cmd)))
			src := &bytes.Reader{}
			rd := newReader(src, 1<<20, 2<<20)
			b.ReportAllocs()
			b.SetBytes(int64(len(cmd)))
			n := 0
			for b.Loop() {
				for {
					_, ok, err := rd.next()
					if err != nil {
						b.Fatal(err)
					}
					if ok {
						n++
						break
					}
					if err := rd.fill(); err == io.EOF {
						src.Reset(in)
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
