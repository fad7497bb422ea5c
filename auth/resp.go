package auth

import (
	"strconv"
	"strings"
)

// Replies of the RESP front, as Redis words them, without the leading '-'
// that the RESP encoding adds (redcon.AppendError adds it). Clients and
// tools match on the first word.
const (
	// ReplyNoAuth answers every command but AUTH, HELLO and QUIT before a
	// successful AUTH.
	ReplyNoAuth = "NOAUTH Authentication required."
	// ReplyWrongPass answers credentials no principal holds (and a user
	// name that is not the token's principal).
	ReplyWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	// ReplyHelloNoAuth answers HELLO without AUTH on a connection that has
	// not authenticated yet.
	ReplyHelloNoAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	// ReplyAuthNotConfigured answers "AUTH TOKEN" when authentication is
	// off, as Redis does without requirepass.
	ReplyAuthNotConfigured = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	// ReplyNoProto answers HELLO with a protocol version other than 2 or 3.
	ReplyNoProto = "NOPROTO unsupported protocol version"
	// ReplyProtoNotInteger answers HELLO whose version is not an integer.
	ReplyProtoNotInteger = "ERR Protocol version is not an integer or out of range"
	// ReplyAuthArity answers AUTH without arguments.
	ReplyAuthArity = "ERR wrong number of arguments for 'auth' command"
	// ReplySyntax answers AUTH with more than two arguments.
	ReplySyntax = "ERR syntax error"
)

// DefaultUser is the user name Redis clients send with a password alone
// ("HELLO 3 AUTH default TOKEN"): it names no principal, the token alone
// decides.
const DefaultUser = "default"

// RESPKind is the command ParseRESP parsed.
type RESPKind uint8

// RESP commands that carry credentials.
const (
	RESPAuth  RESPKind = iota + 1 // AUTH TOKEN | AUTH NAME TOKEN
	RESPHello                     // HELLO [protover [AUTH NAME TOKEN] [SETNAME name]]
)

// RESPCommand is a parsed AUTH or HELLO.
type RESPCommand struct {
	Kind RESPKind
	// Proto is HELLO's protocol version (2 or 3), 0 when not given.
	Proto int
	// HasAuth reports credentials: always for AUTH, for HELLO with its
	// AUTH option.
	HasAuth bool
	// User is the name given with the token ("" for AUTH TOKEN). Login
	// accepts it when it is DefaultUser or the token's principal.
	User string
	// Token is the token given, cut to MaxTokenLen+1 bytes (a longer one
	// cannot match any principal).
	Token string
	// SetName is HELLO's SETNAME argument, when HasSetName.
	SetName    string
	HasSetName bool
}

// RESPError is a command ParseRESP refuses; Reply is the error reply to
// send (without the leading '-').
type RESPError struct{ Reply string }

func (e *RESPError) Error() string { return e.Reply }

// AllowedBeforeAuth reports whether the RESP command named name (any case)
// may run on a connection that has not authenticated: AUTH and HELLO (to
// authenticate) and QUIT. Every other command answers ReplyNoAuth.
func AllowedBeforeAuth(name []byte) bool {
	switch strings.ToLower(string(name)) {
	case "auth", "hello", "quit":
		return true
	}
	return false
}

// ParseRESP parses the arguments of an AUTH or HELLO command (args[0] is
// the command name, any case), with Redis's rules and error replies:
//
//	AUTH TOKEN | AUTH NAME TOKEN
//	HELLO [protover [AUTH NAME TOKEN] [SETNAME clientname]]
//
// HELLO's version is checked before its options, as Redis does, so
// "HELLO 4 AUTH ..." answers NOPROTO. The result copies what it keeps; it
// never aliases args. It does no authentication: see Login.
func ParseRESP(args [][]byte) (RESPCommand, error) {
	if len(args) == 0 {
		return RESPCommand{}, &RESPError{Reply: "ERR empty command"}
	}
	switch strings.ToLower(string(args[0])) {
	case "auth":
		switch len(args) {
		case 1:
			return RESPCommand{}, &RESPError{Reply: ReplyAuthArity}
		case 2:
			return RESPCommand{Kind: RESPAuth, HasAuth: true, Token: cut(args[1], MaxTokenLen+1)}, nil
		case 3:
			return RESPCommand{Kind: RESPAuth, HasAuth: true, User: cut(args[1], MaxNameLen+1), Token: cut(args[2], MaxTokenLen+1)}, nil
		}
		return RESPCommand{}, &RESPError{Reply: ReplySyntax}
	case "hello":
		return parseHello(args)
	}
	return RESPCommand{}, &RESPError{Reply: "ERR not AUTH or HELLO: '" + sanitize(args[0]) + "'"}
}

func parseHello(args [][]byte) (RESPCommand, error) {
	c := RESPCommand{Kind: RESPHello}
	if len(args) < 2 {
		return c, nil
	}
	v, ok := parseRedisInt(args[1])
	if !ok {
		return RESPCommand{}, &RESPError{Reply: ReplyProtoNotInteger}
	}
	if v < 2 || v > 3 {
		return RESPCommand{}, &RESPError{Reply: ReplyNoProto}
	}
	c.Proto = int(v)
	for i := 2; i < len(args); i++ {
		more := len(args) - 1 - i
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "auth" && more >= 2:
			c.HasAuth, c.User, c.Token = true, cut(args[i+1], MaxNameLen+1), cut(args[i+2], MaxTokenLen+1)
			i += 2
		case opt == "setname" && more >= 1:
			c.HasSetName, c.SetName = true, string(args[i+1])
			i++
		default:
			return RESPCommand{}, &RESPError{Reply: "ERR Syntax error in HELLO option '" + sanitize(args[i]) + "'"}
		}
	}
	return c, nil
}

// Login checks the credentials of a command with HasAuth. It returns the
// principal, or the error reply to send (ReplyWrongPass; with
// authentication off, ReplyAuthNotConfigured for "AUTH TOKEN", while any
// user name and token are accepted, as Redis accepts them for its
// passwordless default user, so clients configured with a token still
// connect).
func (a *Authenticator) Login(c RESPCommand) (Principal, string) {
	if a == nil {
		if c.Kind == RESPAuth && c.User == "" {
			return Principal{}, ReplyAuthNotConfigured
		}
		return Principal{Name: c.User, Role: RoleAdmin}, ""
	}
	p, ok := a.Authenticate(c.Token)
	if !ok || (c.User != "" && c.User != DefaultUser && c.User != p.Name) {
		return Principal{}, ReplyWrongPass
	}
	return p, ""
}

// parseRedisInt parses a decimal integer as Redis's string2ll does: an
// optional '-', no '+', no leading zeros, no spaces.
func parseRedisInt(b []byte) (int64, bool) {
	s := b
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 19 || (s[0] == '0' && (len(s) > 1 || neg)) {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

// cut copies at most n bytes of b.
func cut(b []byte, n int) string { return string(b[:min(len(b), n)]) }

// sanitize makes an argument safe to quote in an error reply: printable
// ASCII only (a reply cannot hold CR or LF), at most 64 bytes.
func sanitize(b []byte) string {
	b = b[:min(len(b), 64)]
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// RESPAction classifies a RESP command by its COMMAND flags (node's
// command table): "write" commands need ActionWrite, "readonly" ones
// ActionRead, and the rest (PING, INFO, CLIENT, QUORUM, quorumkv's
// read-only CONFIG GET) ActionStatus.
func RESPAction(flags []string) Action {
	act := ActionStatus
	for _, f := range flags {
		switch f {
		case "write":
			return ActionWrite
		case "readonly":
			act = ActionRead
		}
	}
	return act
}

// ReplyNoPerm is Redis's reply to a command the principal's role may not
// run (cmd is sanitized: printable ASCII, at most 64 bytes).
func ReplyNoPerm(p Principal, cmd []byte) string {
	return "NOPERM User " + p.Name + " has no permissions to run the '" + sanitize(cmd) + "' command"
}
