package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Exit codes. Every command returns one of these; `quorumkv help` and the
// README list them.
const (
	exitOK          = 0 // success; for get: the key was found (one value or several siblings)
	exitInternal    = 1 // unexpected error (a node answered 5xx other than 503, I/O failure, ...)
	exitBadInput    = 2 // bad usage or a request the node refused as invalid (4xx)
	exitNotFound    = 3 // get or delete: the key has no live value
	exitUnavailable = 4 // quorum not met, no node reachable, or the node is shutting down (503)
	exitViolation   = 5 // bench: a setting lost or resurrected an acknowledged write
	exitExists      = 6 // put --create: a read found a live value, nothing was written
)

// command is one subcommand.
type command struct {
	// Name is the word after quorumkv.
	Name string
	// Summary is one line for `quorumkv help`.
	Summary string
	// Run executes the command with the arguments after its name and
	// returns the process exit code (one of the exit* constants). It
	// prints usage itself for -h.
	Run func(e *env, args []string) int
	// OwnSignals makes the command read SIGINT and SIGTERM from env.sigs
	// itself (agent, dev). Otherwise the first signal cancels env.ctx.
	OwnSignals bool
}

// commands is the dispatch table, in the order `quorumkv help` lists it:
// each command's Run lives in its cmd_*.go file. TestCommandNamesUnique
// checks that no two share a name.
var commands = []*command{
	{Name: "agent", OwnSignals: true, Summary: "run a peer", Run: runAgent},
	{Name: "dev", OwnSignals: true, Summary: "start a local cluster of agents on 127.0.0.1", Run: runDev},
	{Name: "bench", OwnSignals: true, Summary: "measure latency and consistency per N/R/W setting", Run: runBench},
	{Name: "put", Summary: "write a value: put KEY VALUE (or --file F)", Run: runPut},
	{Name: "get", Summary: "read a key; several siblings are listed", Run: runGet},
	{Name: "delete", Summary: "delete a key (reads its context first unless --context)", Run: runDelete},
	{Name: "ls", Summary: "list keys: ls [PREFIX] (every key live throughout is listed)", Run: runLs},
	{Name: "members", Summary: "list cluster members with liveness and ring membership", Run: runMembers},
	{Name: "ring", Summary: "show partition ownership", Run: runRing},
	{Name: "status", Summary: "summarise a node's state", Run: runStatus},
	{Name: "repair", Summary: "run anti-entropy now on a node (all its partitions, or one)", Run: runRepair},
	{Name: "backup", Summary: "copy every key of a cluster, siblings and history included, to a file", Run: runBackup},
	{Name: "leave", Summary: "take a node off the ring, handing its data over first", Run: runLeave},
	{Name: "remove", Summary: "take a member that is down for good off the ring", Run: runRemove},
	{Name: "restore", Summary: "merge a backup file into a cluster (any size or ring)", Run: runRestore},
	{Name: "transfers", Summary: "show a node's side of the ring change in course", Run: runTransfers},
	{Name: "health", Summary: "check the local node for a container health check: exit 0 ready, 1 not", Run: runHealth},
	{Name: "tls", Summary: "tls init: make a CA and a node certificate to try TLS", Run: runTLS},
	{Name: "version", Summary: "print the version, commit and Go version of this binary", Run: runVersion},
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// env is what a command may touch of the process, so tests run commands
// in-process with their own streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// stdoutTTY reports a terminal on stdout: get then ends a value that
	// lacks one with a newline, so the prompt does not run into it.
	stdoutTTY bool
	getenv    func(string) string
	// ctx is cancelled by the first SIGINT or SIGTERM, unless the command
	// has OwnSignals.
	ctx context.Context
	// sigs receives SIGINT and SIGTERM for commands with OwnSignals (the
	// agent exits at once on the second).
	sigs <-chan os.Signal
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, ctx: ctx, sigs: sigs}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		e.stdoutTTY = true
	}
	name := ""
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	if c := lookup(name); c == nil || !c.OwnSignals {
		// Client commands: the first signal cancels the request.
		go func() {
			<-sigs
			cancel()
		}()
	}
	code := run(e, os.Args[1:])
	cancel()
	os.Exit(code)
}

// run dispatches args (without the program name) and returns the exit code.
func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitBadInput
	}
	switch args[0] {
	case "--version", "-version", "-V":
		printVersion(e.stdout)
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return c.Run(e, []string{"-h"})
			}
			fmt.Fprintf(e.stderr, "quorumkv: unknown command %q\n", args[1])
			return exitBadInput
		}
		usage(e.stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "quorumkv: unknown command %q (run 'quorumkv help')\n", args[0])
		return exitBadInput
	}
	return c.Run(e, args[1:])
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("quorumkv: a leaderless, Dynamo-style replicated key-value store.\n\nUsage: quorumkv COMMAND [ARGS] [FLAGS]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.Name, c.Summary)
	}
	b.WriteString(`  help     this text; 'quorumkv help COMMAND' or 'quorumkv COMMAND --help' for one command

Client commands talk to the node(s) in --addr (default $QUORUMKV_ADDR, else
127.0.0.1:8080; a comma-separated list is used in turn, skipping nodes that
refuse connections or do not answer their /healthz within a second). The
nodes' warnings (siblings, durability reduced) go to stderr.

Exit codes:
  0  ok; get: found (one value, or several siblings listed)
  1  unexpected error
  2  bad usage or input (the node answered 4xx: bad parameter, too large, ...)
  3  not found (get, delete)
  4  unavailable: quorum not met, no node reachable, node shutting down (503)
  5  bench: consistency violated (an acknowledged write lost or resurrected)
  6  put --create: the key has a live value (nothing written)
`)
	io.WriteString(w, b.String())
}

// newFlagSet returns a FlagSet that reports errors instead of exiting. Its
// Usage (-h, --help, help COMMAND) prints a synopsis, a description and
// the flags to e.stdout: help asked for is output, not an error. Parse
// errors are one line on e.stderr (see parseArgs).
func newFlagSet(e *env, name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: quorumkv %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		out := fs.Output()
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	return fs
}

// parseArgs parses flags wherever they appear among the positional
// arguments (quorumkv put KEY VALUE --w 3), as the standard flag package
// stops at the first positional one. Arguments after "--" are positional,
// and so is a negative number that is no flag's name (put k -5), where
// it is not the value of the flag before it. It returns the positional
// arguments, or an exit code when parsing failed (one line on the
// FlagSet's output, pointing to --help) or help was asked for (printed by
// fs.Usage).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var flagArgs, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
			continue
		case len(a) < 2 || a[0] != '-' || isNumber(a) && fs.Lookup(strings.TrimLeft(a, "-")) == nil:
			pos = append(pos, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(flagArgs)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return nil, exitOK, false
	case err != nil:
		fmt.Fprintf(out, "quorumkv %s: %v (see 'quorumkv %s --help')\n", fs.Name(), err, fs.Name())
		return nil, exitBadInput, false
	}
	// Whatever flag left unparsed (nothing, as every non-flag went to pos)
	// stays positional.
	return append(fs.Args(), pos...), 0, true
}

// parseFlagsOnly is parseArgs for a command that takes flags only: a
// positional argument is refused (exitBadInput).
func parseFlagsOnly(e *env, fs *flag.FlagSet, args []string) (int, bool) {
	pos, code, ok := parseArgs(fs, args)
	if ok && len(pos) != 0 {
		return fail(e, exitBadInput, "%s takes no arguments, got %q", fs.Name(), pos), false
	}
	return code, ok
}

// isNumber reports a numeric argument such as -5 or -2.5e3.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageError prints a one-line usage error pointing to the command's help
// and returns exitBadInput.
func usageError(e *env, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "quorumkv %s: %s (see 'quorumkv %s --help')\n", fs.Name(), fmt.Sprintf(format, args...), fs.Name())
	return exitBadInput
}

// absPath is path made absolute, or path itself when that fails: for
// messages saying where a file was written.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// fail prints a one-line error and returns code.
func fail(e *env, code int, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "quorumkv: "+format+"\n", args...)
	return code
}
