package auth

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkAuthenticate: the cost per request for token sets of several
// sizes, and for a token matching the first entry, the last, or none: the
// three should cost the same (no early exit).
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 16, 256, MaxPrincipals} {
		var f strings.Builder
		for i := range n {
			fmt.Fprintf(&f, "p%d read token-number-%08d\n", i, i)
		}
		a, _, err := New([]byte(f.String()))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct{ name, token string }{
			{"first", "token-number-00000000"},
			{"last", fmt.Sprintf("token-number-%08d", n-1)},
			{"none", "token-number-xxxxxxxx"},
		} {
			b.Run(fmt.Sprintf("principals=%d/match=%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					a.Authenticate(c.token)
				}
			})
		}
	}
}
