package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

func TestContextTokensAreSigned(t *testing.T) {
	a := &Node{ctxKey: contextKey("secret-a")}
	b := &Node{ctxKey: contextKey("secret-a")}
	other := &Node{ctxKey: contextKey("secret-b")}
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 4})
	tok := a.EncodeContext(v)
	got, err := b.DecodeContext(tok)
	if err != nil || !got.Equal(v) {
		t.Fatalf("same-cluster decode: %v, %v", got, err)
	}
	if _, err := other.DecodeContext(tok); !errors.Is(err, errContextMAC) {
		t.Fatalf("other cluster's token: %v, want a signature error", err)
	}
	// A forged vector with the original signature is refused.
	forged := vclock.EncodeContext(vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 1000}))
	_, mac, _ := strings.Cut(tok, ".")
	if _, err := a.DecodeContext(forged + "." + mac); !errors.Is(err, errContextMAC) {
		t.Fatalf("forged token: %v", err)
	}
	if _, err := a.DecodeContext(forged); !errors.Is(err, errContextMAC) {
		t.Fatalf("unsigned token: %v", err)
	}
	if v, err := a.DecodeContext(""); err != nil || len(v) != 0 {
		t.Fatalf("empty token: %v %v", v, err)
	}
	if a.EncodeContext(nil) != "" {
		t.Fatal("empty vector should encode as empty token")
	}
	if pv, err := ParseContextToken(tok); err != nil || !pv.Equal(v) {
		t.Fatalf("ParseContextToken: %v %v", pv, err)
	}
}
