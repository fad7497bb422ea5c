package readcall

import (
	"bytes"
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// rawFunc adapts a function to quorum.RawReadDone.
type rawFunc func(t ring.Target, b []byte, err error)

func (f rawFunc) RawRead(t ring.Target, b []byte, err error) { f(t, b, err) }

// Done and Raw are given the same answer: a failure, nothing held, a set
// (decoded, or its bytes as the reply holds them), or for a reply found
// with a nil set a failure to decode (Raw: empty bytes, which do not).
func TestFinishDoneAndRawAgree(t *testing.T) {
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "a", Epoch: 1}, vclock.Value{Data: []byte("v")})
	enc, _ := s.MarshalBinary()
	down := errors.New("down")
	target := ring.Target{Node: "n2", HintFor: "n3"}
	reply := func(found bool, set []byte) []byte {
		b, _ := (&wire.ReadResponse{Found: found, Set: set}).Append(nil)
		return b
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		err   error
		want  vclock.Set
		isNil bool // Raw's bytes are nil
	}{
		{"failed", nil, down, vclock.Set{}, true},
		{"not found", reply(false, nil), nil, vclock.Set{}, true},
		{"found", reply(true, enc), nil, s, false},
		{"found, nil set", reply(true, nil), nil, vclock.Set{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				dec, fromRaw vclock.Set
				decErr       error
				raw          []byte
				rawErr       error
			)
			calls := 0
			for _, c := range []*Call{
				{Done: func(s vclock.Set, err error) { dec, decErr = s, err; calls++ }},
				{Raw: rawFunc(func(tg ring.Target, b []byte, err error) {
					if tg != target {
						t.Errorf("Raw got target %v, want %v", tg, target)
					}
					raw, rawErr = b, err
					calls++
				}), T: target},
			} {
				err := tc.err
				if tc.body != nil {
					if err = c.Decode(tc.body); err != nil {
						t.Fatal(err)
					}
				}
				c.Finish(err)
			}
			if calls != 2 {
				t.Fatalf("%d answers, want 2", calls)
			}
			if (raw == nil) != tc.isNil || !errors.Is(rawErr, tc.err) {
				t.Fatalf("Raw got %x, %v", raw, rawErr)
			}
			if raw != nil {
				fromRaw, rawErr = vclock.DecodeSet(raw)
				if tc.want.Siblings != nil && !bytes.Equal(raw, enc) {
					t.Errorf("Raw got %x, want %x", raw, enc)
				}
			}
			if (decErr == nil) != (rawErr == nil) || !dec.Equal(fromRaw) || !dec.Equal(tc.want) {
				t.Errorf("Done got %v, %v; Raw's decode %v, %v; want %v", dec, decErr, fromRaw, rawErr, tc.want)
			}
		})
	}
}
