package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Bounds on a token file. They cap what a bad or hostile file can make the
// parser hold and every request compare against.
const (
	// MaxFileBytes is the largest token file Load reads.
	MaxFileBytes = 1 << 20
	// MaxLines is the most lines (comments and blank lines included).
	MaxLines = 65536
	// MaxLineLen is the longest line, in bytes.
	MaxLineLen = 4096
	// MaxPrincipals is the most principals. Authenticate compares against
	// every one of them on every request (a few ns each).
	MaxPrincipals = 1024
	// MaxNameLen is the longest principal name, in bytes.
	MaxNameLen = 64
	// MaxTokenLen is the longest plaintext token, in bytes; longer ones
	// presented by clients are refused without hashing.
	MaxTokenLen = 1024
	// MinTokenLen is the shortest plaintext token that draws no warning.
	MinTokenLen = 16
)

// digestPrefix marks a TOKEN field holding the SHA-256 of the token.
const digestPrefix = "sha256:"

// Entry is one principal of a token file.
type Entry struct {
	Name   string
	Role   Role
	Digest [sha256.Size]byte // SHA-256 of the token
	// Plain reports that the file held the token itself, not its digest.
	Plain bool
	// Line is the entry's line number in the file (1-based).
	Line int
}

// String formats e as a token-file line with the digest form of its token,
// which ParseTokens reads back to the same entry (Plain and Line aside).
func (e Entry) String() string {
	return e.Name + " " + e.Role.String() + " " + digestPrefix + hex.EncodeToString(e.Digest[:])
}

// ParseError is a token file error at one line (0: the file as a whole).
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

func lineErr(line int, format string, args ...any) error {
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// ParseTokens parses a token file's contents. It returns the entries in
// file order and warnings about them (short plaintext tokens), or a
// *ParseError naming the first bad line. A file with no principals is an
// error: it would lock every client out. Lines whose first non-blank byte
// is '#' are comments; a '#' elsewhere is part of a field, since tokens may
// hold it. Fields are separated by spaces or tabs; a trailing '\r' (a file
// written on Windows) is ignored.
func ParseTokens(b []byte) ([]Entry, []string, error) {
	if len(b) > MaxFileBytes {
		return nil, nil, lineErr(0, "file is larger than %d bytes", MaxFileBytes)
	}
	var (
		entries  []Entry
		warnings []string
		names    = map[string]int{}
		digests  = map[[sha256.Size]byte]int{}
	)
	for n := 1; len(b) > 0; n++ {
		if n > MaxLines {
			return nil, nil, lineErr(n, "more than %d lines", MaxLines)
		}
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > MaxLineLen {
			return nil, nil, lineErr(n, "longer than %d bytes", MaxLineLen)
		}
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, warn, err := parseLine(n, string(line))
		if err != nil {
			return nil, nil, err
		}
		if first, dup := names[e.Name]; dup {
			return nil, nil, lineErr(n, "duplicate name %q (first on line %d)", e.Name, first)
		}
		if first, dup := digests[e.Digest]; dup {
			return nil, nil, lineErr(n, "the token of %q is the token of line %d: every principal needs its own", e.Name, first)
		}
		if len(entries) == MaxPrincipals {
			return nil, nil, lineErr(n, "more than %d principals", MaxPrincipals)
		}
		names[e.Name], digests[e.Digest] = n, n
		entries = append(entries, e)
		if warn != "" {
			warnings = append(warnings, warn)
		}
	}
	if len(entries) == 0 {
		return nil, nil, lineErr(0, "no principals (want lines of NAME ROLE TOKEN)")
	}
	return entries, warnings, nil
}

// parseLine parses one non-comment line.
func parseLine(n int, line string) (Entry, string, error) {
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) != 3 {
		return Entry{}, "", lineErr(n, "want NAME ROLE TOKEN, got %d field(s)", len(f))
	}
	e := Entry{Name: f[0], Line: n}
	if err := checkName(e.Name); err != nil {
		return Entry{}, "", lineErr(n, "%v", err)
	}
	role, err := ParseRole(f[1])
	if err != nil {
		return Entry{}, "", lineErr(n, "%v", err)
	}
	e.Role = role
	tok := f[2]
	if hexDigest, ok := strings.CutPrefix(tok, digestPrefix); ok {
		if len(hexDigest) != 2*sha256.Size {
			return Entry{}, "", lineErr(n, "the sha256 digest of %q has %d characters, want %d hex digits", e.Name, len(hexDigest), 2*sha256.Size)
		}
		if _, err := hex.Decode(e.Digest[:], []byte(hexDigest)); err != nil {
			return Entry{}, "", lineErr(n, "the sha256 digest of %q is not hex", e.Name)
		}
		return e, "", nil
	}
	if len(tok) > MaxTokenLen {
		return Entry{}, "", lineErr(n, "the token of %q is longer than %d bytes", e.Name, MaxTokenLen)
	}
	if i := strings.IndexFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }); i >= 0 {
		return Entry{}, "", lineErr(n, "the token of %q holds a byte that is not printable ASCII at offset %d", e.Name, i)
	}
	e.Digest, e.Plain = sha256.Sum256([]byte(tok)), true
	var warn string
	if len(tok) < MinTokenLen {
		warn = fmt.Sprintf("line %d: the token of %q has %d characters; use at least %d random ones (quorumkv can generate them)", n, e.Name, len(tok), MinTokenLen)
	}
	return e, warn, nil
}

// checkName accepts 1 to MaxNameLen of [A-Za-z0-9._@+-], starting with a
// letter or digit: names appear in logs and in RESP AUTH, so they hold no
// spaces, quotes or control bytes.
func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", clip(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._@+-", rune(c))) {
			return fmt.Errorf("name %q: want letters, digits and . _ @ + - (starting with a letter or digit)", clip(s))
		}
	}
	return nil
}

// HashToken returns the form of token a token file can hold instead of the
// token itself: "sha256:" and the hex SHA-256.
func HashToken(token string) string {
	d := sha256.Sum256([]byte(token))
	return digestPrefix + hex.EncodeToString(d[:])
}

// GenerateToken returns a new random token: 32 bytes from r (crypto/rand's
// Reader if nil), URL-safe base64 without padding (43 characters).
func GenerateToken(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
