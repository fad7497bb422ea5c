package resp

import (
	"errors"
	"time"

	"github.com/quorumkv/quorumkv/auth"
)

// Client authentication (issue 13): with Config.Auth, a connection starts
// unauthenticated and every command but AUTH, HELLO and QUIT answers
// NOAUTH until AUTH TOKEN, AUTH NAME TOKEN or HELLO 2 AUTH NAME TOKEN
// names a principal (HELLO 3 answers NOPROTO, and Redis clients then fall
// back to AUTH); each command then needs the role its COMMAND flags ask
// (auth.RESPAction): NOPERM otherwise. A connection whose first line is an
// HTTP request (a browser made to post to this port) is closed unanswered.

// errCrossProtocol is an HTTP request line, or Host header, sent to the
// RESP port (httpguard.IsHTTP).
var errCrossProtocol = errors.New("HTTP request sent to the RESP port")

// attackLogEvery is the least time between two cross-protocol log lines.
const attackLogEvery = 10 * time.Second

// authorize reports whether c's principal may run cmd, answering NOPERM
// if not. exec answered NOAUTH already to an unauthenticated connection's
// commands but AUTH, HELLO and QUIT.
func (c *conn) authorize(cmd *command, name []byte) bool {
	if !c.authed || c.s.cfg.Auth == nil {
		return true // AUTH, HELLO, QUIT
	}
	if err := c.s.cfg.Auth.Authorize(c.principal, auth.RESPAction(cmd.flags)); err != nil {
		c.errorf("%s", auth.ReplyNoPerm(c.principal, name))
		return false
	}
	return true
}

// login checks the credentials of a parsed AUTH or HELLO and makes the
// connection the principal's. It answers the error and returns false when
// they are wrong.
func (c *conn) login(rc auth.RESPCommand) bool {
	p, reply := c.s.cfg.Auth.Login(rc)
	if reply != "" {
		c.errorf("%s", reply)
		return false
	}
	c.principal, c.authed = p, true
	return true
}

// cmdAuth is AUTH TOKEN or AUTH NAME TOKEN.
func (c *conn) cmdAuth(args [][]byte) {
	rc, err := auth.ParseRESP(args)
	if err != nil {
		c.respError(err)
		return
	}
	if c.login(rc) {
		c.ok()
	}
}

// respError answers a ParseRESP refusal with Redis's exact reply.
func (c *conn) respError(err error) {
	var re *auth.RESPError
	if errors.As(err, &re) {
		c.errorf("%s", re.Reply)
		return
	}
	c.errorf("ERR %v", err)
}

// logCrossProtocol logs an HTTP request on the RESP port, at most once per
// attackLogEvery.
func (s *Server) logCrossProtocol(remote string) {
	now := time.Now().UnixNano()
	last := s.attackLog.Load()
	if now-last < int64(attackLogEvery) || !s.attackLog.CompareAndSwap(last, now) {
		return
	}
	s.cfg.Log.Warn("possible SECURITY ATTACK detected: an HTTP request was sent to the RESP port (a web page made a browser post to it?); connection closed",
		"remote", remote)
}
