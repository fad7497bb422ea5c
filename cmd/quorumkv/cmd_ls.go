package main

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/quorumkv/quorumkv/listing"
)

func runLs(e *env, args []string) int {
	fs := newFlagSet(e, "ls", "[PREFIX] [flags]", `
Lists the keys that start with PREFIX (all keys without it), one per line,
partition by partition and in byte order within each partition (so not
one alphabetical list), page after page. A key live
for the whole listing is printed at least once; one deleted before it began
is not. Keys that are not printable UTF-8 on one line are printed quoted.
If a page fails, the error names the cursor to go on from with --after.`)
	var cf clientFlags
	cf.register(e, fs)
	max := fs.Int("max", 0, "stop after this many keys (0: all)")
	after := fs.String("after", "", "go on from this cursor (from an interrupted listing)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return usageError(e, fs, "ls takes at most one PREFIX, got %d arguments", len(pos))
	}
	if *max < 0 {
		return usageError(e, fs, "--max %d: cannot be negative", *max)
	}
	if _, err := listing.ParseCursor(*after); err != nil {
		return usageError(e, fs, "--after: %v", err)
	}
	prefix := ""
	if len(pos) == 1 {
		prefix = pos[0]
	}
	c, err := cf.client()
	if err != nil {
		return cf.exitFor(e, err)
	}
	defer c.Close()
	opts := requestOpts(&cf, &quorumFlags{})
	cursor, printed := *after, 0
	for {
		pg, err := c.Keys(e.ctx, prefix, cursor, 0, opts...)
		if err != nil {
			if cursor != "" {
				fmt.Fprintf(e.stderr, "listing interrupted: go on with --after %s\n", cursor)
			}
			return cf.exitFor(e, err)
		}
		for _, k := range pg.Keys {
			fmt.Fprintln(e.stdout, printableKey(k))
			if printed++; *max > 0 && printed >= *max {
				return exitOK
			}
		}
		if pg.Next == "" {
			if cf.verbose {
				fmt.Fprintf(e.stderr, "%d keys\n", printed)
			}
			return exitOK
		}
		cursor = pg.Next
	}
}

// printableKey is k as is when it is printable UTF-8 on one line, else
// Go-quoted.
func printableKey(k string) string {
	if !utf8.ValidString(k) || !strconv.CanBackquote(k) || (len(k) > 0 && k[0] == '"') {
		return strconv.Quote(k)
	}
	return k
}
