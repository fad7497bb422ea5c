//go:build plant

package plant

import (
	"fmt"
	"os"
	"strings"
)

// A binary built with -tags plant plants the bugs named in QUORUMKV_PLANT
// (comma-separated, as Bug.String prints them) at start, and says so on
// stderr. Release builds do not contain this file.
func init() {
	v := os.Getenv("QUORUMKV_PLANT")
	if v == "" {
		return
	}
	for _, name := range strings.Split(v, ",") {
		b, err := Parse(strings.TrimSpace(name))
		if err != nil {
			fmt.Fprintf(os.Stderr, "QUORUMKV_PLANT: %v\n", err)
			os.Exit(2)
		}
		Plant(b)
		fmt.Fprintf(os.Stderr, "WARNING: planted bug %s is ON (built with -tags plant)\n", b)
	}
}
