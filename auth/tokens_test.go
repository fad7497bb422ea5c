package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	tokAdmin = "admin-token-0123456789"
	tokWrite = "write-token-0123456789"
	tokRead  = "read-token-01234567890"
)

// testFile holds one principal of each role, the admin one as a digest.
var testFile = "# principals\n\n" +
	"ops admin " + HashToken(tokAdmin) + "\n" +
	"  app\twrite " + tokWrite + "\r\n" +
	"# grafana reads\n" +
	"grafana read " + tokRead

func TestParseTokens(t *testing.T) {
	entries, warnings, err := ParseTokens([]byte(testFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	want := []struct {
		name  string
		role  Role
		plain bool
		line  int
		tok   string
	}{
		{"ops", RoleAdmin, false, 3, tokAdmin},
		{"app", RoleWrite, true, 4, tokWrite},
		{"grafana", RoleRead, true, 6, tokRead},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if e.Name != w.name || e.Role != w.role || e.Plain != w.plain || e.Line != w.line || HashToken(w.tok) != "sha256:"+fmt.Sprintf("%x", e.Digest) {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
}

func TestParseTokensErrors(t *testing.T) {
	long := strings.Repeat("x", MaxTokenLen+1)
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		name, file string
		line       int
		msg        string
	}{
		{"empty", "", 0, "no principals"},
		{"only comments", "# a\n\n   # b\n", 0, "no principals"},
		{"two fields", "a read\n", 1, "want NAME ROLE TOKEN, got 2 field(s)"},
		{"four fields", "# c\na read tok-0123456789abcdef extra\n", 2, "got 4 field(s)"},
		{"bad role", "a reader tok-0123456789abcdef\n", 1, `bad role "reader"`},
		{"role case", "a Admin tok-0123456789abcdef\n", 1, `bad role "Admin"`},
		{"bad name", "a/b read tok-0123456789abcdef\n", 1, `name "a/b"`},
		{"name starts with dot", ".a read tok-0123456789abcdef\n", 1, `name ".a"`},
		{"long name", strings.Repeat("n", MaxNameLen+1) + " read tok-0123456789abcdef\n", 1, "want 1 to 64 characters"},
		{"duplicate name", "a read tok-0123456789abcdef\n\na write tok-fedcba9876543210\n", 3, `duplicate name "a" (first on line 1)`},
		{"duplicate token", "a read tok-0123456789abcdef\nb admin tok-0123456789abcdef\n", 2, `the token of "b" is the token of line 1`},
		{"duplicate token plain and digest", "a read tok-0123456789abcdef\nb admin " + HashToken("tok-0123456789abcdef") + "\n", 2, "is the token of line 1"},
		{"short hex", "a read sha256:abcd\n", 1, "has 4 characters, want 64 hex digits"},
		{"bad hex", "a read sha256:" + strings.Repeat("zz", 32) + "\n", 1, "is not hex"},
		{"long hex", "a read sha256:" + hex + "00\n", 1, "has 66 characters"},
		{"long token", "a read " + long + "\n", 1, "longer than 1024 bytes"},
		{"control byte", "a read tok\x01-0123456789abcdef\n", 1, "not printable ASCII at offset 3"},
		{"non-ascii", "a read tok-é-0123456789abcdef\n", 1, "not printable ASCII at offset 4"},
		{"long line", "# " + strings.Repeat("c", MaxLineLen) + "\n", 1, "longer than 4096 bytes"},
		{"too many lines", strings.Repeat("#\n", MaxLines) + "a read tok-0123456789abcdef\n", MaxLines + 1, "more than 65536 lines"},
		{"too large", strings.Repeat("#\n", MaxFileBytes/2+1), 0, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseTokens([]byte(tc.file))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("err = %q (line %d), want line %d and %q", err, pe.Line, tc.line, tc.msg)
			}
			if strings.Contains(err.Error(), "tok-0123456789abcdef") {
				t.Fatalf("error %q quotes a token", err)
			}
		})
	}
}

func TestParseTokensTooManyPrincipals(t *testing.T) {
	var b bytes.Buffer
	for i := range MaxPrincipals + 1 {
		fmt.Fprintf(&b, "p%d read token-number-%08d\n", i, i)
	}
	_, _, err := ParseTokens(b.Bytes())
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != MaxPrincipals+1 || !strings.Contains(pe.Msg, "more than 1024 principals") {
		t.Fatalf("err = %v", err)
	}
	// Exactly the limit is fine.
	if _, _, err := ParseTokens(b.Bytes()[:bytes.LastIndex(b.Bytes()[:b.Len()-1], []byte("\n"))+1]); err != nil {
		t.Fatalf("%d principals: %v", MaxPrincipals, err)
	}
}

func TestParseTokensWarnsShortToken(t *testing.T) {
	_, warnings, err := ParseTokens([]byte("a read short\nb read " + HashToken("x") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `line 1: the token of "a" has 5 characters`) {
		t.Fatalf("warnings %q", warnings)
	}
	if strings.Contains(warnings[0], "short") {
		t.Fatalf("warning %q quotes the token", warnings[0])
	}
}

func TestEntryStringRoundTrip(t *testing.T) {
	entries, _, err := ParseTokens([]byte(testFile))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.String() + "\n")
	}
	again, _, err := ParseTokens([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if again[i].Name != entries[i].Name || again[i].Role != entries[i].Role || again[i].Digest != entries[i].Digest || again[i].Plain {
			t.Fatalf("entry %d: %+v after round trip, was %+v", i, again[i], entries[i])
		}
	}
}

func TestGenerateToken(t *testing.T) {
	a, err := GenerateToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken(nil)
	if len(a) != 43 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	if _, _, err := ParseTokens([]byte("x admin " + a + "\n")); err != nil {
		t.Fatalf("generated token refused: %v", err)
	}
	if _, err := GenerateToken(strings.NewReader("short")); err == nil {
		t.Fatal("no error from a short random source")
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		role Role
		act  Action
		ok   bool
	}{
		{RoleRead, ActionOpen, true}, {RoleRead, ActionStatus, true}, {RoleRead, ActionRead, true},
		{RoleRead, ActionWrite, false}, {RoleRead, ActionAdmin, false},
		{RoleWrite, ActionRead, true}, {RoleWrite, ActionWrite, true}, {RoleWrite, ActionAdmin, false},
		{RoleAdmin, ActionStatus, true}, {RoleAdmin, ActionWrite, true}, {RoleAdmin, ActionAdmin, true},
		{0, ActionOpen, true}, {0, ActionRead, false},
		{RoleAdmin, 0, true}, {RoleWrite, 0, false}, // unset action fails closed: admin only
	}
	for _, tc := range tests {
		if got := tc.role.Allows(tc.act); got != tc.ok {
			t.Errorf("%s allows %s = %v, want %v", tc.role, tc.act, got, tc.ok)
		}
		err := Authorize(Principal{Name: "p", Role: tc.role}, tc.act)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("Authorize(%s, %s) = %v", tc.role, tc.act, err)
		}
	}
	for _, s := range []string{"read", "write", "admin"} {
		r, err := ParseRole(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRole(%q) = %v, %v", s, r, err)
		}
	}
	// The unset role, and one past the last, have no name.
	for _, r := range []Role{0, RoleAdmin + 1} {
		if s, want := r.String(), fmt.Sprintf("role(%d)", uint8(r)); s != want {
			t.Errorf("Role(%d) = %q, want %q", uint8(r), s, want)
		}
	}
	if r, err := ParseRole(""); err == nil {
		t.Errorf(`ParseRole("") = %v, want an error`, r)
	}
}
