package ctxauth_test

import (
	"fmt"

	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/vclock"
)

func Example() {
	// With a cluster secret: every member derives the same key.
	key, _ := ctxauth.KeyFromSecret("the cluster secret")
	s, _ := ctxauth.NewSigner(key)

	v := vclock.NewVector(vclock.Entry{Actor: vclock.Actor{Node: "n1", Epoch: 9}, Counter: 4})
	token := s.EncodeContext(v) // X-Quorumkv-Context of a read
	back, err := s.DecodeContext(token)
	fmt.Println(back[0].Counter, err)

	// A context of another cluster, or an unsigned one, is refused.
	other, _ := ctxauth.NewClusterKey(nil)
	o, _ := ctxauth.NewSigner(other)
	_, err = s.DecodeContext(o.EncodeContext(v))
	fmt.Println(err)
	_, err = s.DecodeContext(vclock.EncodeContext(v))
	fmt.Println(err)
	// Output:
	// 4 <nil>
	// context was not issued by this cluster (bad signature)
	// context was not issued by this cluster (bad signature)
}
