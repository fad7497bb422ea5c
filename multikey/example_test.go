package multikey_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/quorumkv/quorumkv/multikey"
)

func ExampleRun() {
	values := map[string]string{"a": "1", "b": "22", "c": "333"}
	keys := []string{"a", "b", "x", "c"}
	var out strings.Builder
	fmt.Fprintf(&out, "*%d\n", len(keys)) // a RESP array header, say
	err := multikey.Run(context.Background(), multikey.Config{Parallel: 2}, len(keys),
		func(_ context.Context, i int) (string, multikey.Cost, error) {
			v, ok := values[keys[i]]
			if !ok {
				return "(nil)", multikey.Cost{}, nil
			}
			return v, multikey.Cost{Held: int64(len(v))}, nil
		},
		func(i int, v string, err error) error {
			if err != nil {
				v = "-ERR " + err.Error()
			}
			fmt.Fprintf(&out, "%s\n", v) // written as soon as keys[0..i] are in
			return nil
		})
	fmt.Print(out.String(), err)
	// Output:
	// *4
	// 1
	// 22
	// (nil)
	// 333
	// <nil>
}
