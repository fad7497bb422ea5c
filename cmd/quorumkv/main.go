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
	"sort"
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

// command is one subcommand. A file cmd_x.go adds its commands with
// register in an init function; main.go needs no change for a new one.
type command struct {
	// Name is the word after quorumkv.
	Name string
	// Summary is one line for `quorumkv help`.
	Summary string
	// Run executes the command with the arguments after its name and
	// returns the process exit code (one of the exit* constants). It
	// prints usage itself for -h.
	Run func(e *env, args []string) int
	// Order sorts the help listing (lower first, then by name).
	Order int
	// OwnSignals makes the command read SIGINT and SIGTERM from env.sigs
	// itself (agent, dev). Otherwise the first signal cancels env.ctx.
	OwnSignals bool
}

var commands = map[string]*command{}

// register adds c to the dispatch table. It panics on a duplicate name: two
// files claiming one command is a build mistake, caught by any test run.
func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("quorumkv: command registered twice: " + c.Name)
	}
	commands[c.Name] = c
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
	if c := commands[name]; c == nil || !c.OwnSignals {
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
			if c := commands[args[1]]; c != nil {
				return c.Run(e, []string{"-h"})
			}
			fmt.Fprintf(e.stderr, "quorumkv: unknown command %q\n", args[1])
			return exitBadInput
		}
		usage(e.stdout)
		return exitOK
	}
	c := commands[args[0]]
	if c == nil {
		fmt.Fprintf(e.stderr, "quorumkv: unknown command %q (run 'quorumkv help')\n", args[0])
		return exitBadInput
	}
	return c.Run(e, args[1:])
}

func usage(w io.Writer) {
	cs := make([]*command, 0, len(commands))
	for _, c := range commands {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Order != cs[j].Order {
			return cs[i].Order < cs[j].Order
		}
		return cs[i].Name < cs[j].Name
	})
	var b strings.Builder
	b.WriteString("quorumkv: a leaderless, Dynamo-style replicated key-value store.\n\nUsage: quorumkv COMMAND [ARGS] [FLAGS]\n\nCommands:\n")
	for _, c := range cs {
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
