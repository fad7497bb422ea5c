// Package ratelog limits log lines that a remote party can provoke at will:
// refused handshakes, junk gossip packets, refused connections, bad frames.
// Without a limit a flood of them fills the disk through the log.
//
// A Limiter lets through the first line of each (event, source) pair and
// then at most one per interval; each line it lets through carries
// "repeats=N" when N lines were held back since the previous one, so the
// log still says how much happened. Suppressed reports the lines held back
// in total, for a metric. The sources it remembers are bounded (MaxKeys):
// beyond them, new sources share one key per event, so a flood from many
// addresses still logs one line per event and interval.
//
// LogLine does the same for lines another library formats itself
// (memberlist's "Failed to decode ping request: ... from=10.0.0.7:7946"):
// LineKey keys them by their kind and the "from=" host, so junk gossip
// packets whose bytes all differ still count as one event per host.
//
// It is used by transport (handshakes, connections), connlimit (refused
// connections) and node (gossip). All methods are safe for concurrent use.
//
//	lim := ratelog.New(logger, ratelog.DefaultEvery)
//	lim.Warn("connection refused: per-source cap", ratelog.Source(nc.RemoteAddr()), "cap", 512)
package ratelog
