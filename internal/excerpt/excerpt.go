// Package excerpt bounds what an error message or a log line quotes of
// input it does not control (a client's argument, a header, a key, a
// peer's error text), so that a huge bad input does not make a huge
// message.
package excerpt

// Of returns s whole when it has at most n bytes, else its first n bytes
// followed by "...". The cut is by bytes: quote the result with %q where
// it may split a UTF-8 sequence.
func Of[T ~string | ~[]byte](s T, n int) string {
	if len(s) <= n {
		return string(s)
	}
	return string(s[:n]) + "..."
}
