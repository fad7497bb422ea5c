package connlimit

// Default connection caps when the file descriptor limit is large.
const (
	DefaultMaxHTTPConns = 4096
	// DefaultMaxRESPConns is the cap the RESP port had before it counted
	// per source.
	DefaultMaxRESPConns = 10000
	// minConns is the least a client port gets however few descriptors
	// there are.
	minConns = 64
)

// ConnCaps derives the client ports' connection caps from the process's
// file descriptor limit (RLIMIT_NOFILE; Go raises the soft limit to the
// hard one at start): a quarter of the descriptors, and at least 1024,
// stay for the store's files, gossip and node-to-node connections; HTTP
// gets a third of the rest and RESP two thirds, at most
// DefaultMaxHTTPConns and DefaultMaxRESPConns, at least 64 each. Exhausted
// descriptors stop every listener at once (HTTP, RESP and gossip), which
// is what the caps prevent.
func ConnCaps(nofile uint64) (httpMax, respMax int) {
	reserve := max(nofile/4, 1024)
	var avail uint64
	if nofile > reserve {
		avail = nofile - reserve
	}
	h := min(uint64(DefaultMaxHTTPConns), avail/3)
	r := min(uint64(DefaultMaxRESPConns), avail-avail/3)
	return max(int(h), minConns), max(int(r), minConns)
}
