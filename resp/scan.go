package resp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/listing"
)

// SCAN's COUNT (Redis's default, and the most one page asks for) and
// MATCH caps: matching costs the pattern's wildcard part times the key's
// length per key, so that part is kept short; the literal prefix before it
// is matched by the replicas, so it may be as long as a key.
const (
	scanDefaultCount = 10
	scanMaxPattern   = 4096
	scanMaxWild      = 256
)

// cmdScan is SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] with
// Redis's guarantee: every key that exists for the whole scan is returned
// at least once, none that was deleted before it began (package listing
// says how). The cursor is a number that holds no server state; 0 starts
// and ends a scan. COUNT is a hint: a page may hold fewer keys, even none.
// Every key is a string, so TYPE string lists them all and any other type
// none.
func (c *conn) cmdScan(args [][]byte) {
	from, err := listing.ParseCursor(string(args[1]))
	if err != nil || len(args[1]) == 0 {
		c.errorf("ERR invalid cursor")
		return
	}
	var (
		pattern []byte
		count   = scanDefaultCount
		typ     string
	)
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.errorf("ERR syntax error")
			return
		}
		switch strings.ToLower(string(args[i])) {
		case "match":
			pattern = args[i+1]
		case "count":
			n, err := strconv.Atoi(string(args[i+1]))
			if err != nil || n < 1 {
				c.errorf("ERR value is not an integer or out of range")
				return
			}
			count = min(n, httpapi.MaxListLimit)
		case "type":
			typ = strings.ToLower(string(args[i+1]))
		default:
			c.errorf("ERR syntax error")
			return
		}
	}
	l, ok := c.s.b.(httpapi.Lister)
	if !ok {
		c.errorf("ERR this node cannot list keys")
		return
	}
	if typ != "" && typ != "string" {
		c.array(2)
		c.bulkString("0")
		c.array(0)
		return
	}
	prefix, wild := listing.SplitPattern(pattern)
	if len(pattern) > scanMaxPattern || len(wild) > scanMaxWild {
		c.errorf("ERR MATCH pattern too long (at most %d bytes, %d from its first wildcard on)", scanMaxPattern, scanMaxWild)
		return
	}
	var match func([]byte) bool
	if pattern != nil && string(wild) != "*" {
		// Keys arrive filtered by prefix (the replicas skip the others).
		match = func(k []byte) bool { return bytes.HasPrefix(k, prefix) && listing.Match(wild, k[len(prefix):]) }
	}
	res, err := l.Scan(c.s.ctx, from, prefix, match, count)
	if err != nil {
		c.writeErr("scan", err)
		return
	}
	next := "0"
	if !res.Done {
		next = res.Next.String()
	}
	c.array(2)
	c.bulkString(next)
	c.array(len(res.Keys))
	for _, k := range res.Keys {
		c.bulk(k)
	}
}

// setFlags takes SET's valueless flags out of its options: NX (create
// only). XX, GET and KEEPTTL stay, for parseOptions to refuse by name.
func setFlags(args [][]byte) (rest [][]byte, nx bool, err error) {
	for _, a := range args {
		if strings.EqualFold(string(a), "nx") {
			if nx {
				return nil, false, syntax("option NX given twice")
			}
			nx = true
			continue
		}
		rest = append(rest, a)
	}
	return rest, nx, nil
}

// errNoCreate answers SET ... NX on a Backend that is no httpapi.Creator.
var errNoCreate = errors.New("this node cannot make create-only writes")
