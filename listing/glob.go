package listing

// Match reports whether s matches the Redis glob pattern (SCAN MATCH,
// KEYS): * any run of bytes, ? one byte, [abc], [^abc], [a-z] classes, and
// \ escaping the next byte. It works on bytes, as Redis does, and never
// panics on a malformed pattern (an unclosed class matches literally up to
// its end). Its cost is O(len(pattern) * len(s)): no exponential blow-up.
func Match(pattern, s []byte) bool {
	// Greedy matching with one backtrack point for the last star, which
	// is enough for globs (every star can absorb what a later one would).
	var px, sx int
	starP, starS := -1, -1
	for sx < len(s) || px < len(pattern) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					if ok, n := matchClass(pattern[px:], s[sx]); ok {
						px += n
						sx++
						continue
					}
				}
			case '\\':
				if px+1 < len(pattern) {
					if sx < len(s) && s[sx] == pattern[px+1] {
						px += 2
						sx++
						continue
					}
					break
				}
				fallthrough
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	return true
}

// matchClass matches c against the class that opens p ("[...]"); n is the
// class's length in p.
func matchClass(p []byte, c byte) (ok bool, n int) {
	i := 1
	neg := i < len(p) && p[i] == '^'
	if neg {
		i++
	}
	matched := false
	for ; i < len(p) && p[i] != ']'; i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			matched = matched || p[i] == c
		case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (c >= lo && c <= hi)
			i += 2
		default:
			matched = matched || p[i] == c
		}
	}
	// An unclosed class ends at the pattern's end, as in Redis.
	n = min(i+1, len(p))
	return matched != neg, n
}

// LiteralPrefix returns the bytes every match of pattern starts with (up
// to its first wildcard), so a scan can skip the others at the replicas.
func LiteralPrefix(pattern []byte) []byte {
	prefix, _ := SplitPattern(pattern)
	return prefix
}

// SplitPattern splits pattern at its first wildcard: key matches pattern
// exactly when it starts with prefix (unescaped) and the rest of it
// matches wild. Matching wild alone costs O(len(wild) * len(key)).
func SplitPattern(pattern []byte) (prefix, wild []byte) {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[':
			return prefix, pattern[i:]
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
		}
		prefix = append(prefix, pattern[i])
	}
	return prefix, nil
}
