package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/vclock"
)

// defaultAddr is where client commands go without --addr or QUORUMKV_ADDR
// (a variable so that tests can point it at a port nobody listens on).
var defaultAddr = "127.0.0.1:8080"

// cliFailover is how long a client command waits for a node's /healthz
// before it tries the next address (client.WithFailover): a paused node
// accepts connections and answers nothing.
const cliFailover = time.Second

// clientFlags are the flags every client command has.
type clientFlags struct {
	addr    string
	timeout time.Duration
	verbose bool
	fs      *flag.FlagSet
	// envAddr is $QUORUMKV_ADDR as the command started.
	envAddr string
	// token and cacert are --token and --cacert, else $QUORUMKV_TOKEN and
	// $QUORUMKV_CACERT (cli_security.go).
	token, cacert string
}

func (f *clientFlags) register(e *env, fs *flag.FlagSet) {
	f.fs, f.envAddr = fs, e.getenv("QUORUMKV_ADDR")
	def := f.envAddr
	if def == "" {
		def = defaultAddr
	}
	fs.StringVar(&f.addr, "addr", def, "node HTTP `address`(es), comma-separated (env QUORUMKV_ADDR)")
	fs.DurationVar(&f.timeout, "timeout", 0, "request timeout at the node, e.g. 500ms (default: the node's)")
	fs.BoolVar(&f.verbose, "verbose", false, "print the context, acks and answering node to stderr")
	fs.BoolVar(&f.verbose, "v", false, "short for --verbose")
	f.registerSecurity(e, fs)
}

// newClientFlagSet is newFlagSet for a command that asks a node, with the
// client flags (--addr, --timeout, --verbose) registered.
func newClientFlagSet(e *env, name, usage, description string) (*flag.FlagSet, *clientFlags) {
	fs := newFlagSet(e, name, usage, description)
	cf := &clientFlags{}
	cf.register(e, fs)
	return fs, cf
}

// open parses args into the flags, wants exactly npos positional
// arguments (else it fails with wrongArgs) and opens the client. When c is
// nil the command returns code; otherwise it closes c when done.
func (f *clientFlags) open(e *env, args []string, npos int, wrongArgs string) (pos []string, c *client.Client, code int) {
	pos, code, ok := parseArgs(f.fs, args)
	if !ok {
		return nil, nil, code
	}
	if len(pos) != npos && (npos >= 0 || len(pos) > -npos) { // npos < 0: at most -npos
		return nil, nil, fail(e, exitBadInput, "%s", wrongArgs)
	}
	c, err := f.client()
	if err != nil {
		return nil, nil, f.exitFor(e, err)
	}
	return pos, c, exitOK
}

// timeoutOr is --timeout, or d when it was not given: for requests whose
// node-side default does not fit (a leave or a repair runs for minutes).
func (f *clientFlags) timeoutOr(d time.Duration) time.Duration {
	if f.timeout > 0 {
		return f.timeout
	}
	return d
}

// check refuses flag values no request could use.
func (f *clientFlags) check() error {
	if f.timeout < 0 {
		return usageErr(fmt.Sprintf("--timeout %s: cannot be negative (0 or absent: the node's default)", f.timeout))
	}
	return nil
}

// usageErr is a command line no request could be made of (exit 2).
type usageErr string

func (u usageErr) Error() string { return string(u) }

func (f *clientFlags) client() (*client.Client, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return client.New(f.addrs(), client.WithMaxIdleConnsPerHost(4), client.WithFailover(cliFailover),
		client.WithToken(f.token), client.WithCAFile(f.cacert))
}

// addrs is the comma-separated --addr list, blanks dropped.
func (f *clientFlags) addrs() []string {
	var addrs []string
	for _, a := range strings.Split(f.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// defaulted reports that the command uses the built-in address: neither
// --addr nor QUORUMKV_ADDR was given.
func (f *clientFlags) defaulted() bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "addr" })
	return !set && f.envAddr == ""
}

// exitFor is exitFor, saying where the address came from when no node
// answered on the built-in default.
func (f *clientFlags) exitFor(e *env, err error) int {
	code := exitFor(e, err)
	if code == exitUnavailable && f.defaulted() && (isUnreachable(err) || errors.Is(err, client.ErrNoAnswer)) {
		fmt.Fprintf(e.stderr, "quorumkv: no --addr given and QUORUMKV_ADDR is not set, so the default %s was tried; "+
			"after 'quorumkv dev', paste the 'export QUORUMKV_ADDR=...' line it printed\n", defaultAddr)
	}
	return code
}

// quorumFlags are the per-request counts. They are strings so the node's
// words (one, quorum, all) work; the node checks them.
type quorumFlags struct {
	vals  map[string]*string
	order []string
}

func (q *quorumFlags) register(fs *flag.FlagSet, names ...string) {
	help := map[string]string{
		"n":  "replicas that take part (default: the node's N)",
		"r":  "replicas that must answer a read: a number, one, quorum or all",
		"w":  "replicas that must acknowledge the write: a number, one, quorum or all",
		"pr": "of the r answers, how many must come from primaries",
		"pw": "of the w acks, how many must come from primaries",
		"dw": "of the w acks, how many must be durable (fsync)",
		"pz": "distinct zones (agents' --zone) the w acks must come from",
	}
	q.vals = map[string]*string{}
	for _, n := range names {
		q.vals[n] = fs.String(n, "", help[n])
		q.order = append(q.order, n)
	}
}

func (q *quorumFlags) options() []client.RequestOption {
	var out []client.RequestOption
	for _, n := range q.order {
		if v := *q.vals[n]; v != "" {
			out = append(out, client.Param(n, v))
		}
	}
	return out
}

// exitFor maps an error to the exit code and prints it.
func exitFor(e *env, err error) int {
	var (
		ce *client.Error
		ue usageErr
	)
	switch {
	case errors.As(err, &ue):
		return fail(e, exitBadInput, "%s", ue)
	case errors.Is(err, client.ErrNotFound):
		return fail(e, exitNotFound, "not found")
	case errors.Is(err, client.ErrExists):
		return fail(e, exitExists, "exists: a read found a live value, nothing was written")
	case errors.Is(err, client.ErrQuorum) && errors.As(err, &ce):
		return fail(e, exitUnavailable, "%s", quorumMessage(ce))
	case errors.Is(err, client.ErrUnavailable):
		return fail(e, exitUnavailable, "%v", err)
	case errors.Is(err, client.ErrBadRequest):
		return fail(e, exitBadInput, "%v", err)
	case isUnreachable(err), errors.Is(err, client.ErrNoAnswer):
		return fail(e, exitUnavailable, "no node reachable: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(e, exitUnavailable, "no answer in time: %v", err)
	}
	return fail(e, exitInternal, "%v", err)
}

func quorumMessage(ce *client.Error) string {
	// The node's message already gives the counts and the first replica
	// error; build one from the fields only when it does not.
	if strings.Contains(ce.Msg, "required") {
		return fmt.Sprintf("%s [node %s]", ce.Msg, ce.Addr)
	}
	s := fmt.Sprintf("quorum not met: %d of %d required acks", ce.Acks, ce.Required)
	if ce.RequiredPrimary > 0 {
		s += fmt.Sprintf(", %d of %d from primaries", ce.PrimaryAcks, ce.RequiredPrimary)
	}
	if ce.RequiredDurable > 0 {
		s += fmt.Sprintf(", %d of %d durable", ce.DurableAcks, ce.RequiredDurable)
	}
	return s + fmt.Sprintf(" (%d replica(s) reachable) [node %s]", ce.Targets, ce.Addr)
}

// isUnreachable reports a connection that could not be made or was cut.
func isUnreachable(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func requestOpts(cf *clientFlags, q *quorumFlags) []client.RequestOption {
	opts := q.options()
	if cf.timeout > 0 {
		opts = append(opts, client.Timeout(cf.timeout))
	}
	return opts
}

// displayDot renders a dot token as node#epoch:counter when it decodes.
func displayDot(tok string) string {
	if d, err := vclock.DecodeDot(tok); err == nil {
		return d.String()
	}
	if tok == "" {
		return "-"
	}
	return tok
}

func runGet(e *env, args []string) int {
	fs := newFlagSet(e, "get", "KEY [flags]", `
Reads KEY and prints its value raw to stdout. When concurrent writes left
several siblings, prints "N siblings:" and one line per sibling (index, dot,
timestamp, live or deleted, content type, value quoted), then the context:
put with --context CONTEXT to resolve them. Exit 0 for one value or several,
3 when not found.`)
	var cf clientFlags
	var q quorumFlags
	cf.register(e, fs)
	q.register(fs, "n", "r", "pr")
	local := fs.Bool("local", false, "read this node's own copy, no quorum (use with one --addr)")
	asJSON := fs.Bool("json", false, "print {found, context, siblings} as JSON (values base64)")
	contextOnly := fs.Bool("context-only", false, "print only the key's context, for CTX=$(quorumkv get KEY --context-only) (a missing key's too)")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(e, fs, "get takes one KEY, got %d arguments", len(pos))
	}
	c, err := cf.client()
	if err != nil {
		return cf.exitFor(e, err)
	}
	defer c.Close()
	opts := requestOpts(&cf, &q)
	if *local {
		opts = append(opts, client.Local())
	}
	obj, err := c.Get(e.ctx, pos[0], opts...)
	if obj != nil {
		printWarnings(e, obj.Warnings)
	}
	if *contextOnly && obj != nil && (err == nil || errors.Is(err, client.ErrNotFound)) {
		// The context of a missing key covers its tombstones: writing
		// with it supersedes them. Exit 0 either way: the context is the
		// answer asked for.
		fmt.Fprintln(e.stdout, obj.Context)
		return exitOK
	}
	if *asJSON && obj != nil {
		printObjectJSON(e, obj)
	}
	if err != nil {
		if cf.verbose && obj != nil {
			fmt.Fprintf(e.stderr, "context: %s\n", obj.Context)
		}
		return cf.exitFor(e, err)
	}
	if cf.verbose {
		fmt.Fprintf(e.stderr, "context: %s\nacks: %d primary, %d fallback (node %s)\n",
			obj.Context, obj.Acks.Primary, obj.Acks.Fallback, obj.Addr)
		if obj.ExpiresIn > 0 {
			fmt.Fprintf(e.stderr, "expires in: %s\n", obj.ExpiresIn)
		}
	}
	if *asJSON {
		return exitOK
	}
	if len(obj.Siblings) == 1 {
		v := obj.Siblings[0].Value
		_, _ = e.stdout.Write(v)
		if e.stdoutTTY && (len(v) == 0 || v[len(v)-1] != '\n') {
			fmt.Fprintln(e.stdout)
		}
		return exitOK
	}
	printSiblings(e.stdout, obj)
	return exitOK
}

// printSiblings lists several siblings, one per line, values quoted so
// binary or multi-line values stay on their line.
func printSiblings(w io.Writer, obj *client.Object) {
	fmt.Fprintf(w, "%d siblings:\n", len(obj.Siblings))
	for i, s := range obj.Siblings {
		state := "live"
		if s.Deleted {
			state = "deleted"
		}
		ct := s.ContentType
		if ct == "" {
			ct = "-"
		}
		val := fmt.Sprintf("%q", s.Value)
		if s.Deleted {
			val = "-"
		}
		fmt.Fprintf(w, "%d\tdot=%s\ttime=%s\t%s\ttype=%s\tvalue=%s\n",
			i+1, displayDot(s.Dot), s.Timestamp.UTC().Format(time.RFC3339Nano), state, ct, val)
	}
	fmt.Fprintf(w, "context: %s\n", obj.Context)
}

func printObjectJSON(e *env, obj *client.Object) {
	type sib struct {
		Value       []byte    `json:"value"`
		ContentType string    `json:"content_type"`
		Timestamp   time.Time `json:"timestamp"`
		Deleted     bool      `json:"deleted"`
		Dot         string    `json:"dot"`
		// Expires is the sibling's deadline (absent: none; only listed
		// for several siblings, as the node answers them).
		Expires *time.Time `json:"expires,omitempty"`
	}
	out := struct {
		Found   bool   `json:"found"`
		Context string `json:"context"`
		// ExpiresIn is the time the value has left (absent: no TTL).
		ExpiresIn string `json:"expires_in,omitempty"`
		Siblings  []sib  `json:"siblings"`
	}{Found: obj.Found, Context: obj.Context, Siblings: []sib{}}
	if obj.ExpiresIn > 0 {
		out.ExpiresIn = obj.ExpiresIn.String()
	}
	for _, s := range obj.Siblings {
		js := sib{Value: s.Value, ContentType: s.ContentType, Timestamp: s.Timestamp, Deleted: s.Deleted, Dot: s.Dot}
		if !s.Expires.IsZero() {
			js.Expires = &s.Expires
		}
		out.Siblings = append(out.Siblings, js)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// maxFileValue bounds a value read from --file before the node sees it; the
// node's own limit (default 1 MiB) still applies.
const maxFileValue = 64 << 20

func runPut(e *env, args []string) int {
	fs := newFlagSet(e, "put", "KEY VALUE [flags]  |  put KEY --file FILE [flags]", `
Writes VALUE (or the contents of FILE; "-" reads stdin) under KEY and prints
the key's new causal context. Without --context the write is concurrent with
what the key holds: it becomes a sibling, and the node warns that the key
holds several. With the context of a read (get -v or the siblings listing)
it supersedes what that read saw. With --overwrite it supersedes what a read
at --r sees (a read the node makes first): "set KEY to VALUE", what Redis
SET does. With --ttl the value reads as absent once that time has passed
(on every node, give or take their clock skew). A VALUE starting with - is
taken as a value after KEY (put k -5), or after --.`)
	var cf clientFlags
	var q quorumFlags
	cf.register(e, fs)
	q.register(fs, "n", "r", "pr", "w", "pw", "dw", "pz")
	vctx := fs.String("context", "", "causal context from an earlier get or put")
	overwrite := fs.Bool("overwrite", false, "supersede what a read at --r sees instead of adding a sibling")
	create := fs.Bool("create", false, "write only if a read at --r finds no live value (exit 6 otherwise); racing creates through other nodes can still both succeed")
	ct := fs.String("content-type", "", "the value's MIME type")
	file := fs.String("file", "", "read the value from `FILE` (- for stdin)")
	ttlFlag := fs.String("ttl", "", "time to live: a `duration` such as 30s, 1h30m or whole days such as 2d")
	quiet := fs.Bool("quiet", false, "print nothing on success (warnings still go to stderr)")
	fs.BoolVar(quiet, "q", false, "short for --quiet")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if !*overwrite && !*create && (*q.vals["r"] != "" || *q.vals["pr"] != "") {
		return usageError(e, fs, "--r and --pr apply to put only with --overwrite or --create (the read it makes first)")
	}
	var ttl time.Duration
	if *ttlFlag != "" {
		var err error
		if ttl, err = api.ParseTTL(*ttlFlag); err != nil {
			return usageError(e, fs, "--ttl: %v", err)
		}
	}
	var value []byte
	switch {
	case *file != "" && len(pos) == 1:
		var r io.Reader = e.stdin
		if *file != "-" {
			f, err := os.Open(*file)
			if err != nil {
				return fail(e, exitBadInput, "%v", err)
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, maxFileValue+1))
		if err != nil {
			return fail(e, exitBadInput, "read %s: %v", *file, err)
		}
		if len(b) > maxFileValue {
			return fail(e, exitBadInput, "value from %s is over %d bytes", *file, maxFileValue)
		}
		value = b
	case *file == "" && len(pos) == 2:
		value = []byte(pos[1])
	default:
		return usageError(e, fs, "put takes KEY VALUE, or KEY with --file (a value starting with - goes after --: put KEY -- -x)")
	}
	c, err := cf.client()
	if err != nil {
		return cf.exitFor(e, err)
	}
	defer c.Close()
	opts := append(requestOpts(&cf, &q), client.Context(*vctx))
	if *ct != "" {
		opts = append(opts, client.ContentType(*ct))
	}
	if *overwrite {
		opts = append(opts, client.Overwrite())
	}
	if ttl > 0 {
		opts = append(opts, client.TTL(ttl))
	}
	if *create {
		opts = append(opts, client.CreateOnly())
	}
	wr, err := c.Put(e.ctx, pos[0], value, opts...)
	if err != nil {
		return cf.exitFor(e, err)
	}
	printWrite(e, &cf, wr)
	if !*quiet {
		fmt.Fprintln(e.stdout, wr.Context)
	}
	return exitOK
}

// printWrite prints the node's warnings about a write (siblings, reduced
// durability) and, with -v, what the answer said of it, on stderr.
func printWrite(e *env, cf *clientFlags, wr *client.WriteResult) {
	printWarnings(e, wr.Warnings)
	if cf.verbose {
		fmt.Fprintf(e.stderr, "dot: %s\ncoordinator: %s\nsiblings: %d\nacks: %d primary, %d fallback, %d durable (node %s)\n",
			displayDot(wr.Dot), wr.Coordinator, wr.Siblings, wr.Acks.Primary, wr.Acks.Fallback, wr.Acks.Durable, wr.Addr)
	}
}

// printWarnings writes the node's warnings (X-Quorumkv-Warning) to stderr.
func printWarnings(e *env, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "quorumkv: warning: %s\n", w)
	}
}

func runDelete(e *env, args []string) int {
	fs := newFlagSet(e, "delete", "KEY [flags]", `
Deletes KEY: writes a tombstone that supersedes what the context covers.
Without --context the node deletes what a read at --r sees (a read it makes
first); a key that read finds no live value of is left alone (exit 3).`)
	var cf clientFlags
	var q quorumFlags
	cf.register(e, fs)
	q.register(fs, "n", "r", "pr", "w", "pw", "dw", "pz")
	vctx := fs.String("context", "", "causal context from an earlier get or put")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(e, fs, "delete takes one KEY, got %d arguments", len(pos))
	}
	if *vctx != "" && (*q.vals["r"] != "" || *q.vals["pr"] != "") {
		return usageError(e, fs, "--r and --pr apply to delete only without --context (the read it makes first)")
	}
	c, err := cf.client()
	if err != nil {
		return cf.exitFor(e, err)
	}
	defer c.Close()
	wr, err := c.Delete(e.ctx, pos[0], append(requestOpts(&cf, &q), client.Context(*vctx))...)
	if err != nil {
		return cf.exitFor(e, err)
	}
	printWrite(e, &cf, wr)
	return exitOK
}
