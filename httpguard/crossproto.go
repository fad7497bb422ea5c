package httpguard

import "bytes"

// IsHTTP reports whether line, the first line a client sent to the RESP
// port (or any inline command line), is HTTP rather than RESP: a request
// line ("GET / HTTP/1.1", "POST /x HTTP/1.0", the HTTP/2 preface
// "PRI * HTTP/2.0"), a "Host:" header, or a line starting with POST, the
// two commands Redis treats as "possible SECURITY ATTACK". A browser can
// be made to send an HTTP request to any port; its body's lines would
// otherwise run as inline commands (cross-protocol scripting). The RESP
// front closes such a connection without answering. A trailing CR or LF is
// ignored. RESP arrays ("*...") never match; an inline command of three
// words ending in HTTP/1.1 (or another version) is taken for a request
// line, which no quorumkv command is.
func IsHTTP(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("host:")) {
		return true
	}
	f := bytes.Fields(line)
	if len(f) == 0 {
		return false
	}
	if bytes.EqualFold(f[0], []byte("post")) {
		return true
	}
	return len(f) == 3 && isMethod(f[0]) && isVersion(f[2])
}

// isMethod: an HTTP method is a token (RFC 9110); every method in use is
// upper-case letters, and RESP command names are matched case-insensitively,
// so any run of letters (and '-', '_') is taken for one.
func isMethod(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return len(b) > 0
}

// isVersion: "HTTP/" and a version such as 1.1, 1.0, 2.0, 2, 3.
func isVersion(b []byte) bool {
	v, ok := bytes.CutPrefix(b, []byte("HTTP/"))
	if !ok || len(v) == 0 || len(v) > 3 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return v[0] != '.'
}
