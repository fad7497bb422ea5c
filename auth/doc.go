// Package auth authenticates clients of the HTTP and RESP fronts and
// decides what each may do.
//
// Principals come from a token file (Load), one per line:
//
//	# NAME ROLE TOKEN
//	ops    admin  sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//	app    write  s3cr3t-token-of-the-app
//	grafana read  sha256:...
//
// A role includes the ones below it: admin > write > read. A TOKEN is the
// secret itself or "sha256:" and the hex SHA-256 of it (HashToken), so the
// file need not hold secrets. The parser is strict and bounded (MaxLines,
// MaxLineLen, MaxTokenLen, MaxPrincipals) and names the line of every error.
//
// An Authenticator holds the parsed set. Authenticate compares the SHA-256
// of the presented token with every entry's, in constant time with respect
// to their contents and with no early exit. Authorize checks a role against
// an Action. Reload re-reads the file and swaps the set atomically (a bad
// file keeps the old set); every method is safe for concurrent use, and a
// nil *Authenticator means authentication is off.
//
// HTTP wraps a handler (Authorization: Bearer TOKEN; 401 or 403 as
// api.Error JSON) and puts the Principal in the request context
// (PrincipalFrom) for audit logs. ParseRESP parses AUTH and HELLO as Redis
// clients send them; the Reply constants are Redis's exact error replies.
//
// The package does no logging; Load and Reload return warnings (plaintext
// tokens in a world-readable file, short tokens) for the caller to log.
package auth
