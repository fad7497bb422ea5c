package client

import (
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

func TestParseContext(t *testing.T) {
	v := vclock.NewVector(
		vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 4},
		vclock.Entry{Actor: vclock.Actor{Node: "n2", Epoch: 3}, Counter: 9},
	)
	tok := vclock.EncodeContext(v)
	tests := []struct {
		name  string
		token string
		want  vclock.Vector
		err   error
	}{
		{"empty", "", nil, nil},
		{"signed", tok + ".c2lnbmF0dXJl", v, nil},
		{"unsigned", tok, v, nil},
		{"mac only", ".abc", nil, nil},
		{"not base64", "!!!.mac", nil, vclock.ErrMalformed},
		{"truncated", tok[:len(tok)-3] + ".mac", nil, vclock.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseContext(tc.token)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("ParseContext(%q) = %v, %v; want %v", tc.token, got, err, tc.want)
			}
		})
	}
	got, _ := ParseContext(tok)
	if !got.Covers(vclock.Dot{Actor: vclock.Actor{Node: "n2", Epoch: 3}, Counter: 9}) ||
		got.Covers(vclock.Dot{Actor: vclock.Actor{Node: "n2", Epoch: 3}, Counter: 10}) {
		t.Fatal("decoded vector covers the wrong dots")
	}
}

// FuzzParseContext: arbitrary tokens never panic, and a decoded vector
// re-encodes to a token that decodes to the same vector.
func FuzzParseContext(f *testing.F) {
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 1}, Counter: 4})
	for _, s := range []string{"", ".", "x.y", vclock.EncodeContext(v) + ".mac", vclock.EncodeContext(v), "!!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := ParseContext(token)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with a vector %v", err, got)
			}
			return
		}
		again, err := ParseContext(vclock.EncodeContext(got) + ".sig")
		if err != nil || !again.Equal(got) {
			t.Fatalf("round trip of %v: %v, %v", got, again, err)
		}
	})
}
