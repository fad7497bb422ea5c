package resp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/quorum"
)

// FuzzParseOptions feeds command options, split as the reader splits a
// command's words, to the RESP option parser: it never panics, errors are
// either syntax errors or the shared parser's *quorum.ParamError, and a
// CONTEXT option is kept exactly as given.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{
		"", "N 3 R 2", "W all PW quorum DW 1", "TIMEOUT 500", "TIMEOUT 2s", "context abc",
		"EX 10", "NX", "N", "R 2 R 2", "n 0", "timeout -5", "Q 1", "XX GET",
	} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, line string, defN uint8) {
		args := bytes.Fields([]byte(line))
		o, err := parseOptions(args, quorumOpts|optContext, int(defN%9)+1)
		if err != nil {
			var se *syntaxError
			var pe *quorum.ParamError
			if !errors.As(err, &se) && !errors.As(err, &pe) {
				t.Fatalf("%q: error %v (%T) is neither a syntax nor a parameter error", line, err, err)
			}
			return
		}
		if len(args)%2 != 0 {
			t.Fatalf("%q: an odd option list was accepted", line)
		}
		var want []byte
		given := false
		for i := 0; i+1 < len(args); i += 2 {
			if string(bytes.ToLower(args[i])) == "context" {
				want, given = args[i+1], true
			}
		}
		if given != o.hasContext || given && o.context != string(want) {
			t.Fatalf("%q: context %q (given %v), want %q", line, o.context, o.hasContext, want)
		}
		if o.p.Timeout < 0 || o.p.Timeout > quorum.MaxTimeout {
			t.Fatalf("%q: timeout %v", line, o.p.Timeout)
		}
	})
}
