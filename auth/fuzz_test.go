package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseTokens: never panics; an error is a *ParseError; a parsed file
// is within the bounds, and its canonical form (Entry.String per line)
// parses back to the same principals.
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{testFile, "", "# c\n", "a read x", "a read sha256:" + strings.Repeat("0", 64),
		"a read t1\na read t2\n", "a write t\r\nb admin t\r\n", "a\tadmin\t#t#\n", "a read tok\x00\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _, err := ParseTokens(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if len(entries) == 0 || len(entries) > MaxPrincipals {
			t.Fatalf("%d entries", len(entries))
		}
		var canon bytes.Buffer
		for _, e := range entries {
			if e.Role < RoleRead || e.Role > RoleAdmin || len(e.Name) > MaxNameLen {
				t.Fatalf("entry out of bounds: %+v", e)
			}
			canon.WriteString(e.String() + "\n")
		}
		again, _, err := ParseTokens(canon.Bytes())
		if err != nil {
			t.Fatalf("canonical form %q: %v", canon.Bytes(), err)
		}
		for i := range entries {
			if again[i].Name != entries[i].Name || again[i].Role != entries[i].Role || again[i].Digest != entries[i].Digest {
				t.Fatalf("entry %d changed: %+v -> %+v", i, entries[i], again[i])
			}
		}
	})
}

// FuzzParseRESP: never panics; an error is a *RESPError whose reply is one
// line of printable ASCII (it goes on the wire as-is); a parse is
// consistent with its arguments and bounded.
func FuzzParseRESP(f *testing.F) {
	f.Add("AUTH\x00tok")
	f.Add("auth\x00app\x00tok")
	f.Add("HELLO\x003\x00AUTH\x00default\x00tok\x00SETNAME\x00c")
	f.Add("HELLO\x002")
	f.Add("HELLO\x0003")
	f.Add("HELLO\x003\x00auth\x00a")
	f.Add("hello")
	f.Fuzz(func(t *testing.T, s string) {
		args := argv(strings.Split(s, "\x00")...)
		c, err := ParseRESP(args)
		if err != nil {
			var re *RESPError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RESPError", err)
			}
			for _, ch := range []byte(re.Reply) {
				if ch < 0x20 || ch > 0x7e {
					t.Fatalf("reply %q holds byte %#x", re.Reply, ch)
				}
			}
			return
		}
		if len(c.Token) > MaxTokenLen+1 || len(c.User) > MaxNameLen+1 {
			t.Fatalf("unbounded: %d %d", len(c.Token), len(c.User))
		}
		switch c.Kind {
		case RESPAuth:
			if !c.HasAuth || c.Proto != 0 || !strings.EqualFold(string(args[0]), "auth") {
				t.Fatalf("AUTH parse %+v", c)
			}
		case RESPHello:
			if !strings.EqualFold(string(args[0]), "hello") || (len(args) > 1) != (c.Proto == 2 || c.Proto == 3) {
				t.Fatalf("HELLO parse %+v of %q", c, args)
			}
		default:
			t.Fatalf("kind %d", c.Kind)
		}
	})
}
