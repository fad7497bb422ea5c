package ctxauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

func mustSigner(t testing.TB, key []byte) *Signer {
	t.Helper()
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeyLen) }

func TestKeyFromSecret(t *testing.T) {
	k1, err := KeyFromSecret("s3cret")
	if err != nil || len(k1) != KeyLen {
		t.Fatal(err)
	}
	k1b, _ := KeyFromSecret("s3cret")
	k2, _ := KeyFromSecret("s3cret2")
	if !bytes.Equal(k1, k1b) || bytes.Equal(k1, k2) {
		t.Fatal("derivation not deterministic, or not per secret")
	}
	// Independent of the other keys node derives from the secret, and of
	// the derivation contexts were signed with before.
	for _, label := range []string{"quorumkv gossip key\x00", "quorumkv context key\x00"} {
		other := sha256.Sum256([]byte(label + "s3cret"))
		if bytes.Equal(k1, other[:]) {
			t.Fatalf("context key equals the %q derivation", label)
		}
	}
	if _, err := KeyFromSecret(""); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func TestNewClusterKey(t *testing.T) {
	a, err := NewClusterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewClusterKey(nil)
	if ValidKey(a) != nil || bytes.Equal(a, b) {
		t.Fatal("cluster keys not random")
	}
	if _, err := NewClusterKey(strings.NewReader("short")); err == nil {
		t.Fatal("short random source accepted")
	}
}

// Members gossiping keys in any order agree: the merge is a semilattice,
// and invalid keys from the wire never win.
func TestMergeClusterKey(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() []byte {
		switch r.IntN(5) {
		case 0:
			return nil
		case 1:
			return []byte("short")
		}
		return key(byte(r.IntN(4)))
	}
	eq := func(a, b []byte) bool { return bytes.Equal(a, b) }
	for range 2000 {
		a, b, c := pick(), pick(), pick()
		if !eq(MergeClusterKey(a, b), MergeClusterKey(b, a)) {
			t.Fatalf("not commutative: %x %x", a, b)
		}
		if !eq(MergeClusterKey(MergeClusterKey(a, b), c), MergeClusterKey(a, MergeClusterKey(b, c))) {
			t.Fatalf("not associative: %x %x %x", a, b, c)
		}
		if ValidKey(a) == nil && !eq(MergeClusterKey(a, a), a) {
			t.Fatal("not idempotent")
		}
		if m := MergeClusterKey(a, b); m != nil && ValidKey(m) != nil {
			t.Fatalf("invalid key %x won", m)
		}
	}
}

func TestSignVerify(t *testing.T) {
	s := mustSigner(t, key(1))
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 7}, Counter: 3})
	tok := s.EncodeContext(v)
	got, err := s.DecodeContext(tok)
	if err != nil || len(got) != 1 || got[0] != v[0] {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if s.EncodeContext(nil) != "" {
		t.Fatal("empty vector signed")
	}
	if got, err := s.DecodeContext(""); err != nil || got != nil {
		t.Fatal("empty context refused")
	}

	raw, _, _ := strings.Cut(tok, ".")
	forged := vclock.EncodeContext(vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 7}, Counter: 300}))
	for name, bad := range map[string]string{
		"unsigned":            raw,
		"empty mac":           raw + ".",
		"flipped mac":         raw + "." + flip(strings.SplitN(tok, ".", 2)[1]),
		"mac of another body": forged + "." + strings.SplitN(tok, ".", 2)[1],
		"other cluster":       mustSigner(t, key(2)).EncodeContext(v),
		"no body":             "." + strings.SplitN(tok, ".", 2)[1],
	} {
		if _, err := s.DecodeContext(bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := s.DecodeContext(strings.Repeat("a", MaxSignedLen+1)); !errors.Is(err, vclock.ErrTooLarge) {
		t.Errorf("huge token: %v", err)
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// After a key merge, contexts signed with the previous key stay valid;
// after a second change they do not.
func TestRotate(t *testing.T) {
	s := mustSigner(t, key(5))
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 1})
	old := s.EncodeContext(v)
	if err := s.Rotate(key(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(key(3)); err != nil { // same key: keeps key(5) as previous
		t.Fatal(err)
	}
	if _, err := s.DecodeContext(old); err != nil {
		t.Fatalf("context of the previous key: %v", err)
	}
	cur := s.EncodeContext(v)
	if cur == old || !bytes.Equal(s.Key(), key(3)) {
		t.Fatal("not signing with the new key")
	}
	if err := s.Rotate(key(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DecodeContext(old); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("context of two keys ago: %v", err)
	}
	if _, err := s.DecodeContext(cur); err != nil {
		t.Fatalf("context of the previous key: %v", err)
	}
	if err := s.Rotate([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := NewSigner(nil); err == nil {
		t.Fatal("nil key accepted")
	}
}

func TestSignerConcurrent(t *testing.T) {
	// Start on one of the two keys rotated below: a token signed before
	// the first rotations then still verifies (under a third key it would
	// not after two rotations, which made the test flaky).
	s := mustSigner(t, key(1))
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 1})
	var wg sync.WaitGroup
	var failures sync.Map
	for g := range 4 {
		wg.Go(func() {
			for range 2000 {
				if _, err := s.DecodeContext(s.EncodeContext(v)); err != nil {
					failures.Store(g, err)
				}
			}
		})
	}
	for i := range 200 {
		s.Rotate(key(byte(i % 2))) // two keys in turn: the previous is always the other
	}
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("goroutine %v: %v", k, v); return true })
}

// The attack of the issue: a context whose counter is near the encoding
// limit makes every later write of the key by that actor fail. With the
// bound, such a context is refused and the largest accepted one leaves the
// key writable.
func TestCheckCountersKeepsKeysWritable(t *testing.T) {
	x := vclock.Actor{Node: "n3", Epoch: 42}
	write := func(s vclock.Set, ctx vclock.Vector) (vclock.Set, error) {
		next, _ := vclock.Update(s, ctx, x, vclock.Value{Data: []byte("v")})
		_, err := next.MarshalBinary()
		return next, err
	}
	// Without the bound: a stored context at vclock.MaxCounter for n3.
	poisoned, err := write(vclock.Set{}, vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n3", Epoch: 42}, Counter: vclock.MaxCounter - 1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := write(poisoned, poisoned.Context); err == nil {
		t.Fatal("expected the unbounded key to be unwritable: the test no longer shows the attack")
	}

	s := mustSigner(t, key(1))
	forged := s.EncodeContext(vclock.NewVector(vclock.Entry{Actor: x, Counter: vclock.MaxCounter - 1}))
	if _, err := s.DecodeContext(forged); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("counter past the bound: %v", err)
	}
	edge, err := s.DecodeContext(s.EncodeContext(vclock.NewVector(vclock.Entry{Actor: x, Counter: MaxCounter})))
	if err != nil {
		t.Fatal(err)
	}
	set := vclock.Set{}
	for i := range 1000 {
		ctx := edge
		if i > 0 {
			ctx = set.Context
		}
		if set, err = write(set, ctx); err != nil {
			t.Fatalf("write %d after a context at the bound: %v", i, err)
		}
	}
}

// FuzzDecodeContext: any client string gives a vector within the bounds or
// an error; a vector decoded re-signs to a token that decodes to it.
func FuzzDecodeContext(f *testing.F) {
	s := mustSigner(f, key(7))
	f.Add(s.EncodeContext(vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 5})))
	f.Add("abc.def")
	f.Add(".")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		v, err := s.DecodeContext(in)
		if err != nil {
			return
		}
		if CheckCounters(v) != nil {
			t.Fatal("accepted a counter past the bound")
		}
		again, err := s.DecodeContext(s.EncodeContext(v))
		if err != nil || len(again) != len(v) {
			t.Fatalf("re-sign: %v", err)
		}
		for i := range v {
			if again[i] != v[i] {
				t.Fatal("entry changed")
			}
		}
	})
}

// TestSignKnownAnswer: signatures made from pooled HMAC states are the
// HMAC-SHA256 of the token under the key, cut to 128 bits, however many
// times a state is reused and whatever the caller later does to the key
// slice it passed; a reused state carries nothing of the token before.
func TestSignKnownAnswer(t *testing.T) {
	k := key(9)
	s := mustSigner(t, k)
	want := func(token string) string {
		m := hmac.New(sha256.New, key(9))
		m.Write([]byte(token))
		return token + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:macLen])
	}
	k[0] ^= 0xff // the signer keeps its own copy
	for i := range 50 {
		token := strings.Repeat("t", i%7+1) + string(rune('a'+i%26))
		if got := s.Sign(token); got != want(token) {
			t.Fatalf("Sign(%q) = %q, want %q", token, got, want(token))
		}
		if got, err := s.Verify(want(token)); err != nil || got != token {
			t.Fatalf("Verify(%q): %q %v", want(token), got, err)
		}
	}
}
