package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/vclock"
)

func signerNode(t *testing.T, cfg Config, clusterKey []byte) *Node {
	t.Helper()
	s, err := newContextSigner(cfg, clusterKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Node{cfg: cfg, ctxSigner: s}
}

func TestContextTokensAreSigned(t *testing.T) {
	a := signerNode(t, Config{Secret: "secret-a"}, nil)
	b := signerNode(t, Config{Secret: "secret-a"}, nil)
	other := signerNode(t, Config{Secret: "secret-b"}, nil)
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 4})
	tok := a.EncodeContext(v)
	got, err := b.DecodeContext(tok)
	if err != nil || !got.Equal(v) {
		t.Fatalf("same-cluster decode: %v, %v", got, err)
	}
	if _, err := other.DecodeContext(tok); !errors.Is(err, ctxauth.ErrBadSignature) {
		t.Fatalf("other cluster's token: %v, want a signature error", err)
	}
	// A forged vector with the original signature is refused.
	forged := vclock.EncodeContext(vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 1000}))
	_, mac, _ := strings.Cut(tok, ".")
	if _, err := a.DecodeContext(forged + "." + mac); !errors.Is(err, ctxauth.ErrBadSignature) {
		t.Fatalf("forged token: %v", err)
	}
	if _, err := a.DecodeContext(forged); !errors.Is(err, ctxauth.ErrBadSignature) {
		t.Fatalf("unsigned token: %v", err)
	}
	if v, err := a.DecodeContext(""); err != nil || len(v) != 0 {
		t.Fatalf("empty token: %v %v", v, err)
	}
	if a.EncodeContext(nil) != "" {
		t.Fatal("empty vector should encode as empty token")
	}
	// Tools read a token's vector without the key (client.ParseContext).
	if pv, err := client.ParseContext(tok); err != nil || !pv.Equal(v) {
		t.Fatalf("client.ParseContext: %v %v", pv, err)
	}
}

// The key is never the public constant of the release before: without a
// secret each cluster has its own random key, and a token signed with the
// old constant is refused.
func TestContextKeyIsNotPublic(t *testing.T) {
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 4})
	k1, _ := ctxauth.NewClusterKey(nil)
	k2, _ := ctxauth.NewClusterKey(nil)
	c1, c2 := signerNode(t, Config{}, k1), signerNode(t, Config{}, k2)
	if _, err := c2.DecodeContext(c1.EncodeContext(v)); !errors.Is(err, ctxauth.ErrBadSignature) {
		t.Fatalf("another cluster's token: %v", err)
	}
	old, _ := ctxauth.NewSigner(legacyContextKey(""))
	if _, err := c1.DecodeContext(old.EncodeContext(v)); !errors.Is(err, ctxauth.ErrBadSignature) {
		t.Fatalf("token under the old public constant: %v", err)
	}
	if _, err := newContextSigner(Config{}, nil); err == nil {
		t.Fatal("a node without a secret and without a cluster key got a signer")
	}
	// A merged key: contexts signed just before stay valid.
	tok := c2.EncodeContext(v)
	c2.cfg.Secret = ""
	if err := c2.ctxSigner.Rotate(k1); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.DecodeContext(tok); err != nil {
		t.Fatalf("token signed before the key merge: %v", err)
	}
	if _, err := c2.DecodeContext(c1.EncodeContext(v)); err != nil {
		t.Fatalf("token of the merged key: %v", err)
	}
}

// Counters past ctxauth.MaxCounter are refused even when signed (a context
// that would make the key unwritable through its actor).
func TestContextCounterBound(t *testing.T) {
	a := signerNode(t, Config{Secret: "s"}, nil)
	big := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: ctxauth.MaxCounter + 1})
	if _, err := a.DecodeContext(a.EncodeContext(big)); !errors.Is(err, ctxauth.ErrCounterRange) {
		t.Fatalf("counter past the bound: %v", err)
	}
}

// With a secret, the previous release's tokens (legacy key) still verify,
// and during the upgrade window this release signs with that key, so old
// nodes accept its tokens; outside the window it signs with the HKDF key.
func TestContextUpgradeWindow(t *testing.T) {
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 4})
	old, _ := ctxauth.NewSigner(legacyContextKey("s"))
	now := signerNode(t, Config{Secret: "s"}, nil)
	window := signerNode(t, Config{Secret: "s", AcceptV1Peers: true}, nil)
	if _, err := now.DecodeContext(old.EncodeContext(v)); err != nil {
		t.Fatalf("previous release's token: %v", err)
	}
	if _, err := old.DecodeContext(window.EncodeContext(v)); err != nil {
		t.Fatalf("window token on the previous release: %v", err)
	}
	if _, err := old.DecodeContext(now.EncodeContext(v)); err == nil {
		t.Fatal("outside the window the token is still signed with the legacy key")
	}
	if _, err := now.DecodeContext(window.EncodeContext(v)); err != nil {
		t.Fatalf("window token after the window: %v", err)
	}
}
