package ratelog

import (
	"context"
	"log/slog"
	"net"
	"strings"
)

// maxEventLen bounds the event key LineKey derives from a line.
const maxEventLen = 96

// LineKey derives the rate-limiting key of a line written by a library
// that formats its own messages (memberlist: "memberlist: Failed to
// decode ping request: <error> from=10.0.0.7:7946"). The source is the IP
// of the first "from=" address ("" if none). The event is the line up to
// the detail after its second ": " (the error text varies per packet),
// without the "from=" address, with numbers, hexadecimal words and quoted
// strings masked, at most 96 bytes: so a flood of junk packets from one
// host counts as one event however its bytes vary.
func LineKey(line string) (event, source string) {
	if i := strings.Index(line, "from="); i >= 0 {
		addr := line[i+len("from="):]
		if j := strings.IndexAny(addr, " \t\n"); j >= 0 {
			addr = addr[:j]
		}
		source = addr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			source = host
		} else if strings.HasPrefix(addr, "<") { // "from=<unknown address>"
			source = "?"
		}
		line = line[:i]
	}
	if i := strings.Index(line, ": "); i >= 0 {
		if j := strings.Index(line[i+2:], ": "); j >= 0 {
			line = line[:i+2+j]
		}
	}
	return mask(line), source
}

// mask replaces digits and hexadecimal words by '#' and quoted strings by
// '*', and cuts the result to maxEventLen.
func mask(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxEventLen; {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			b.WriteByte('*')
			i += j + 2
		case isHex(c):
			j := i
			digit := false
			for j < len(s) && isHex(s[j]) {
				digit = digit || s[j] >= '0' && s[j] <= '9'
				j++
			}
			if digit {
				b.WriteByte('#')
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	out := b.String()
	if len(out) > maxEventLen {
		out = out[:maxEventLen]
	}
	return strings.TrimSpace(out)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// LogLine logs a line written by another library (see LineKey) at level,
// rate-limited by the key LineKey derives from it; the line itself is the
// message, as written.
func (l *Limiter) LogLine(level slog.Level, line string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	event, source := LineKey(line)
	l.logAs(level, event, source, line, args)
}
