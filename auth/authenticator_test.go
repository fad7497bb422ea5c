package auth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestAuthenticate(t *testing.T) {
	a, _, err := New([]byte(testFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		ok    bool
		want  Principal
	}{
		{tokAdmin, true, Principal{"ops", RoleAdmin}},
		{tokWrite, true, Principal{"app", RoleWrite}},
		{tokRead, true, Principal{"grafana", RoleRead}},
		{"", false, Principal{}},
		{tokRead + "x", false, Principal{}},
		{tokRead[:len(tokRead)-1], false, Principal{}},
		{HashToken(tokAdmin), false, Principal{}}, // the digest is not the token
		{strings.Repeat("a", MaxTokenLen+1), false, Principal{}},
	}
	for _, tc := range tests {
		p, ok := a.Authenticate(tc.token)
		if ok != tc.ok || p != tc.want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tc.token, p, ok, tc.want, tc.ok)
		}
	}
	if a.Len() != 3 {
		t.Fatalf("Len = %d", a.Len())
	}
	if _, err := a.Reload(); err == nil {
		t.Fatal("Reload of a set built from bytes succeeded")
	}
}

func TestNilAuthenticator(t *testing.T) {
	var a *Authenticator
	if _, ok := a.Authenticate(tokAdmin); ok {
		t.Fatal("nil authenticator authenticated")
	}
	if err := a.Authorize(Principal{}, ActionAdmin); err != nil {
		t.Fatalf("nil authenticator refused: %v", err)
	}
	if a.Len() != 0 {
		t.Fatal("Len of nil")
	}
	if _, err := a.Reload(); err == nil {
		t.Fatal("Reload of nil succeeded")
	}
}

func TestLoadWarnsWorldReadablePlaintext(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		warn    bool
	}{
		{"plaintext 0644", testFile, 0o644, true},
		{"plaintext 0600", testFile, 0o600, false},
		{"plaintext 0640", testFile, 0o640, false},
		{"digests only 0644", "ops admin " + HashToken(tokAdmin) + "\n", 0o644, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			writeFile(t, p, tc.content, tc.mode)
			a, warnings, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, w := range warnings {
				if strings.Contains(w, "readable by every user") && strings.Contains(w, p) {
					got = true
				}
			}
			if got != tc.warn {
				t.Fatalf("warnings %q, want the world-readable one: %v", warnings, tc.warn)
			}
			if _, ok := a.Authenticate(tokAdmin); !ok {
				t.Fatal("admin token refused")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "a read x\nb nope tok-0123456789abcdef\n", 0o600)
	big := filepath.Join(dir, "big")
	writeFile(t, big, strings.Repeat("#", MaxFileBytes+10), 0o600)
	tests := []struct{ path, msg string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
		{bad, bad + `: line 2: bad role "nope"`},
		{big, "larger than"},
	}
	for _, tc := range tests {
		_, _, err := Load(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Load(%s) = %v, want %q", tc.path, err, tc.msg)
		}
	}
}

func TestReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, p, "ops admin "+tokAdmin+"\n", 0o600)
	a, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}

	// A bad file keeps the old set.
	writeFile(t, p, "ops admin "+tokAdmin+"\nops read other-token-0123456789\n", 0o600)
	if _, err := a.Reload(); err == nil || !strings.Contains(err.Error(), "duplicate name") || !strings.Contains(err.Error(), "keeping the 1 principal(s)") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if p, ok := a.Authenticate(tokAdmin); !ok || p.Name != "ops" {
		t.Fatal("old set lost after a bad reload")
	}
	os.Remove(p)
	if _, err := a.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if _, ok := a.Authenticate(tokAdmin); !ok {
		t.Fatal("old set lost after a failed reload")
	}

	// A good file replaces it whole: the old token is gone.
	writeFile(t, p, "app write "+tokWrite+"\n", 0o600)
	if _, err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Authenticate(tokAdmin); ok {
		t.Fatal("revoked token still accepted")
	}
	if p, ok := a.Authenticate(tokWrite); !ok || p.Role != RoleWrite {
		t.Fatal("new token refused")
	}
}

// Reloads racing with Authenticate: every call sees one whole generation
// (the token of generation g authenticates as the principal of generation
// g), never a mix. Run with -race.
func TestReloadConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	gen := func(i int) string { return fmt.Sprintf("admin admin %s\nrw%d write %s\n", tokAdmin, i%2, tokWrite) }
	writeFile(t, p, gen(0), 0o600)
	a, _, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if p, ok := a.Authenticate(tokWrite); !ok || !strings.HasPrefix(p.Name, "rw") || p.Role != RoleWrite {
					bad.Add(1)
				}
			}
		})
	}
	for i := range 200 {
		// Rewrite via rename, as an operator's editor or config manager does.
		tmp := p + ".tmp"
		writeFile(t, tmp, gen(i), 0o600)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d authentications failed during reloads", n)
	}
}
