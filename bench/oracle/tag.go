package oracle

// TagLen is the length of the tag every written value starts with:
// "qo1:" then the run, the key's hash and the write id in fixed-width
// lowercase hex (8, 8 and 12 digits).
const TagLen = 32

const (
	tagPrefix = "qo1:"
	maxTagID  = 1<<48 - 1
)

// keyHash is FNV-1a over the key: it ties a value to the key it was written
// to, so a value served under another key is noticed.
func keyHash(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

const hexDigits = "0123456789abcdef"

func appendHex(dst []byte, v uint64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return dst
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// appendTag writes the tag of write id of a key with hash kh in run.
func appendTag(dst []byte, run, kh uint32, id ID) []byte {
	dst = append(dst, tagPrefix...)
	dst = appendHex(dst, uint64(run), 8)
	dst = appendHex(dst, uint64(kh), 8)
	return appendHex(dst, uint64(id), 12)
}

// ParseTag decodes the tag at the start of a value: the run, the key hash
// and the write id. ok is false when data does not start with a
// well-formed tag (a value this package did not write).
func ParseTag(data []byte) (run, keyHash uint32, id ID, ok bool) {
	if len(data) < TagLen || string(data[:len(tagPrefix)]) != tagPrefix {
		return 0, 0, 0, false
	}
	r, ok1 := parseHex(data[4:12])
	h, ok2 := parseHex(data[12:20])
	i, ok3 := parseHex(data[20:32])
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, 0, false
	}
	return uint32(r), uint32(h), ID(i), true
}

// KeyHash is the key hash tags carry (FNV-1a, 32 bits).
func KeyHash(key string) uint32 { return keyHash(key) }
