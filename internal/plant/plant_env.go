//go:build plant

package plant

import (
	"fmt"
	"os"
	"strings"
)

// A binary built with -tags plant plants the bugs named in QKV_PLANT
// (comma-separated, as Bug.String prints them) at start, and says so on
// stderr. Release builds do not contain this file. The variable is not
// QUORUMKV_-prefixed so that `quorumkv dev` and `quorumkv bench --cluster`,
// which keep their own QUORUMKV_ settings from the agents they start, pass
// it on: the agents are where the merge and handoff bugs live.
func init() {
	v := os.Getenv("QKV_PLANT")
	if v == "" {
		return
	}
	for _, name := range strings.Split(v, ",") {
		b, err := Parse(strings.TrimSpace(name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "QKV_PLANT: %v\n", err)
			os.Exit(2)
		}
		Plant(b)
		fmt.Fprintf(os.Stderr, "WARNING: planted bug %s is ON (built with -tags plant)\n", b)
	}
}
