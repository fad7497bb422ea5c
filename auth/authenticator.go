package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// Authenticator holds a parsed token set and, when loaded from a file, can
// re-read it. All methods are safe for concurrent use. A nil *Authenticator
// means authentication is off: HTTP returns its handler unchanged,
// Authorize allows everything and Authenticate finds no one.
type Authenticator struct {
	path string // "" when built from bytes: Reload is refused
	set  atomic.Pointer[tokenSet]
}

// tokenSet is one immutable generation of principals.
type tokenSet struct {
	entries []Entry
	words   [][4]uint64 // entries[i].Digest as words, for Authenticate
}

func newTokenSet(entries []Entry) *tokenSet {
	s := &tokenSet{entries: entries, words: make([][4]uint64, len(entries))}
	for i, e := range entries {
		s.words[i] = digestWords(e.Digest)
	}
	return s
}

// digestWords splits a digest into the words Authenticate compares.
func digestWords(d [sha256.Size]byte) [4]uint64 {
	var w [4]uint64
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(d[8*i:])
	}
	return w
}

// New returns an Authenticator of the token file contents b (see
// ParseTokens), for tests and for callers that hold the file themselves.
// Reload returns an error on it.
func New(b []byte) (*Authenticator, []string, error) {
	entries, warnings, err := ParseTokens(b)
	if err != nil {
		return nil, nil, err
	}
	a := &Authenticator{}
	a.set.Store(newTokenSet(entries))
	return a, warnings, nil
}

// Load reads and parses the token file at path. The warnings are for the
// caller to log: short tokens, and plaintext tokens in a file every user of
// the machine may read.
func Load(path string) (*Authenticator, []string, error) {
	s, warnings, err := readTokenFile(path)
	if err != nil {
		return nil, nil, err
	}
	a := &Authenticator{path: path}
	a.set.Store(s)
	return a, warnings, nil
}

// Reload re-reads the file Load read and swaps in the new set at once:
// requests authenticated after Reload returns see only the new set. If the
// file is bad, the old set stays in force and the error says why.
func (a *Authenticator) Reload() ([]string, error) {
	if a == nil || a.path == "" {
		return nil, errors.New("token set was not loaded from a file: nothing to reload")
	}
	s, warnings, err := readTokenFile(a.path)
	if err != nil {
		return nil, fmt.Errorf("%w (keeping the %d principal(s) loaded before)", err, len(a.set.Load().entries))
	}
	a.set.Store(s)
	return warnings, nil
}

// readTokenFile reads, bounds and parses path.
func readTokenFile(path string) (*tokenSet, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("token file %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("token file %s: %w", path, err)
	}
	entries, warnings, err := ParseTokens(b)
	if err != nil {
		return nil, nil, fmt.Errorf("token file %s: %w", path, err)
	}
	for i := range warnings {
		warnings[i] = "token file " + path + ": " + warnings[i]
	}
	if fi.Mode().Perm()&0o004 != 0 {
		plain := 0
		for _, e := range entries {
			if e.Plain {
				plain++
			}
		}
		if plain > 0 {
			warnings = append(warnings, fmt.Sprintf("token file %s is readable by every user of this machine and holds %d plaintext token(s): chmod 600 it, or write tokens as sha256:HEX (quorumkv can hash them)", path, plain))
		}
	}
	return newTokenSet(entries), warnings, nil
}

// Authenticate returns the principal whose token is token. It hashes token
// and compares the digest with every entry's without stopping at a match
// (a branch-free word compare per entry, subtle.ConstantTimeSelect to keep
// the index), so its time depends only on the number of entries and the
// token's length: not on which entry matched, if any, nor on how many
// bytes matched. Tokens over MaxTokenLen are refused without hashing.
func (a *Authenticator) Authenticate(token string) (Principal, bool) {
	if a == nil || len(token) == 0 || len(token) > MaxTokenLen {
		return Principal{}, false
	}
	d := digestWords(sha256.Sum256([]byte(token)))
	set := a.set.Load()
	found, idx := 0, 0
	for i := range set.words {
		w := &set.words[i]
		diff := (d[0] ^ w[0]) | (d[1] ^ w[1]) | (d[2] ^ w[2]) | (d[3] ^ w[3])
		// eq is 1 when diff is 0, computed without a branch: diff|-diff
		// has its top bit set exactly when diff is not 0.
		eq := int(((diff|-diff)>>63)^1) & 1
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 {
		return Principal{}, false
	}
	entries := set.entries
	e := entries[idx]
	return Principal{Name: e.Name, Role: e.Role}, true
}

// Authorize returns nil if p may do act, else an error wrapping
// ErrForbidden. With authentication off (a nil receiver) everything is
// allowed.
func (a *Authenticator) Authorize(p Principal, act Action) error {
	if a == nil {
		return nil
	}
	return Authorize(p, act)
}

// Len returns how many principals are in force (0 for nil).
func (a *Authenticator) Len() int {
	if a == nil {
		return 0
	}
	return len(a.set.Load().entries)
}
