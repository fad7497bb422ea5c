package ctxauth

import (
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

// BenchmarkEncodeContext is what signing costs every HTTP GET and PUT
// answer (its X-Quorumkv-Context), and DecodeContext what a write that
// sends one back costs.
func BenchmarkEncodeContext(b *testing.B) {
	s := mustSigner(b, key(1))
	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 7}, Counter: 3},
		vclock.Entry{Actor: vclock.Actor{Node: "n2", Epoch: 1}, Counter: 12})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.EncodeContext(v)
		}
	})
	tok := s.EncodeContext(v)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.DecodeContext(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
