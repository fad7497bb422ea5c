package resp

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
)

// optSet is a set of the options a RESP command accepts after its fixed
// arguments: quorum parameters as on the HTTP API's query string, and
// CONTEXT for the sibling-aware writes.
type optSet uint16

const (
	optN optSet = 1 << iota
	optR
	optW
	optPR
	optPW
	optDW
	optTimeout
	optContext
	optPZ
)

// The option sets of each kind of command.
const (
	readOpts  = optN | optR | optPR | optTimeout
	writeOpts = optN | optW | optPW | optDW | optPZ | optTimeout
	// setOpts: SET overwrites what a read at R sees, so it takes the
	// read's R and PR too.
	setOpts = writeOpts | optR | optPR
	// deleteOpts: a plain DEL reads (for its context and its answer)
	// before it writes.
	deleteOpts = readOpts | writeOpts
	quorumOpts = readOpts | writeOpts
)

var optNames = []struct {
	name string
	opt  optSet
}{
	{"n", optN}, {"r", optR}, {"w", optW}, {"pr", optPR}, {"pw", optPW}, {"dw", optDW},
	{"timeout", optTimeout}, {"context", optContext}, {"pz", optPZ},
}

// maxTimeout bounds TIMEOUT, as the HTTP API bounds timeout=.
const maxTimeout = 5 * time.Minute

// redisOnlyOpts are options of Redis's own SET that a command does not
// take (SET's own are parsed first, by parseSetArgs); naming them gets a
// clearer error than "syntax error".
var redisOnlyOpts = map[string]string{
	"ex": "expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL)", "px": "expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL)",
	"exat": "expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL)", "pxat": "expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL)",
	"keepttl": "expiry here (SET takes EX, PX, EXAT, PXAT, KEEPTTL)",
	"nx":      "create-only writes here (SET takes NX)", "xx": "SET ... XX", "get": "SET ... GET",
}

// syntaxError is a malformed command line: unknown, repeated or
// incomplete options, wrong arity. It answers "-ERR syntax error: ...".
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return "syntax error: " + e.msg }

func syntax(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...)}
}

// parsedOptions are the options parsed from one command line.
type parsedOptions struct {
	// p holds the quorum parameters given; fields not given are zero.
	p quorum.Params
	// context is the CONTEXT token, if given.
	context    string
	hasContext bool
}

// parseOptions parses "NAME value" pairs (names case-insensitive)
// against the allowed set. Counts may be numbers or one/quorum/all, resolved
// against the N given here, else defaultN; values are read by
// quorum.ParseParams, as the HTTP API's query string is (TIMEOUT is
// milliseconds or a Go duration: "500", "500ms", "2s"). Value errors are
// *quorum.ParamError, so they read as the HTTP API's bad_parameter; the
// rest are *syntaxError.
// has reports whether name (lower case) is one of the options in s.
func (s optSet) has(name string) bool {
	for _, on := range optNames {
		if on.name == name {
			return s&on.opt != 0
		}
	}
	return false
}

func parseOptions(args [][]byte, allowed optSet, defaultN int) (parsedOptions, error) {
	var o parsedOptions
	if len(args)%2 != 0 {
		name := strings.ToLower(string(args[len(args)-1]))
		if what, ok := redisOnlyOpts[name]; ok {
			return o, syntax("quorumkv does not support %s (option %s)", what, strings.ToUpper(name))
		}
		if !allowed.has(name) {
			return o, syntax("unknown option %q (this command takes %s)", args[len(args)-1], allowed)
		}
		return o, syntax("option %q needs a value", args[len(args)-1])
	}
	if len(args) == 0 {
		return o, nil
	}
	var (
		seen optSet
		vals [9]string // by option bit
	)
	for i := 0; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		var opt optSet
		for _, on := range optNames {
			if on.name == name {
				opt = on.opt
			}
		}
		if opt == 0 || allowed&opt == 0 {
			if what, ok := redisOnlyOpts[name]; ok {
				return o, syntax("quorumkv does not support %s (option %s)", what, strings.ToUpper(name))
			}
			return o, syntax("unknown option %q (this command takes %s)", args[i], allowed)
		}
		if seen&opt != 0 {
			return o, syntax("option %s given twice", strings.ToUpper(name))
		}
		seen |= opt
		vals[bits.TrailingZeros16(uint16(opt))] = string(args[i+1])
	}
	get := func(opt optSet) (string, bool) {
		return vals[bits.TrailingZeros16(uint16(opt))], seen&opt != 0
	}
	var err error
	o.p, err = quorum.ParseParams(func(name string) (string, bool) {
		for _, on := range optNames {
			if on.name == name {
				return get(on.opt)
			}
		}
		return "", false
	}, defaultN)
	if err != nil {
		return o, err
	}
	if s, ok := get(optContext); ok {
		o.context, o.hasContext = s, true
	}
	return o, nil
}

// String lists the options in o, upper-case, for error messages.
func (o optSet) String() string {
	var names []string
	for _, on := range optNames {
		if o&on.opt != 0 {
			names = append(names, strings.ToUpper(on.name))
		}
	}
	if len(names) == 0 {
		return "no options"
	}
	return strings.Join(names, ", ")
}

// mergeParams gives the fields of req (a command's own options) precedence
// over conn (the connection's QUORUM settings); what both leave zero the
// coordinator fills from the node's defaults. When the command gives N, the
// counts taken from conn are capped at it, as quorum.Params.WithDefaults
// caps the node's defaults, so "GET k N 1" works under QUORUM R 2.
func mergeParams(req, conn quorum.Params) quorum.Params {
	if conn == (quorum.Params{}) {
		return req
	}
	explicitN := req.N != 0
	if !explicitN {
		req.N = conn.N
	}
	for _, f := range []struct {
		dst *int
		v   int
	}{
		{&req.R, conn.R}, {&req.W, conn.W}, {&req.PR, conn.PR}, {&req.PW, conn.PW}, {&req.DW, conn.DW},
	} {
		if *f.dst == 0 {
			*f.dst = f.v
			if explicitN && *f.dst > req.N {
				*f.dst = req.N
			}
		}
	}
	if req.Timeout == 0 {
		req.Timeout = conn.Timeout
	}
	return req
}
