package main

import (
	"fmt"
	"io"

	"github.com/quorumkv/quorumkv/node"
)

func runVersion(e *env, args []string) int {
	fs := newFlagSet(e, "version", "", `
Prints this binary's module version, the commit it was built from (when
the build recorded one: go build in a checkout does, go run does not) and
the Go version. A node's /status (and quorumkv status) says the same of
the binary it runs.`)
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return usageError(e, fs, "version takes no arguments")
	}
	printVersion(e.stdout)
	return exitOK
}

// printVersion writes "quorumkv VERSION (commit C[, modified], TIME) GO".
func printVersion(w io.Writer) {
	b := node.BuildInfo()
	commit := "commit unknown"
	if b.Commit != "" {
		commit = "commit " + b.Commit
		if b.Modified {
			commit += ", modified"
		}
		if b.CommitTime != "" {
			commit += ", " + b.CommitTime
		}
	}
	fmt.Fprintf(w, "quorumkv %s (%s) %s\n", b.Version, commit, b.Go)
}
