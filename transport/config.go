package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/quorumkv/quorumkv/membudget"
)

// Config configures a TCP transport. Start from DefaultConfig; the zero
// value of a duration or count is invalid rather than silently defaulted.
type Config struct {
	// NodeID is this node's id, sent in the handshake and passed to the
	// peer's handlers as from. Required, 1 to 255 bytes.
	NodeID string
	// ListenAddr is the host:port to listen on, e.g. "127.0.0.1:0" for a
	// free port (LocalAddr then reports the bound one). Required.
	ListenAddr string
	// AdvertiseAddr is the address peers should dial to reach this node,
	// when it differs from the bound address (NAT, 0.0.0.0). It is what
	// LocalAddr returns and what peers use to key this node in their
	// Stats. Empty means the bound address. At most 255 bytes.
	AdvertiseAddr string
	// Secret is the cluster secret. With it, both sides of every
	// connection prove they hold it (HMAC-SHA256 over both sides' fresh
	// nonces and ephemeral X25519 keys), and every frame after the
	// handshake is encrypted and authenticated with AES-256-GCM under keys
	// derived from the secret and that exchange (protocol version 2; see
	// the package doc for the threat model). Peers without the secret, or
	// of the release before encryption, are refused. Use a random secret
	// of at least 16 bytes: a recorded handshake lets an offline attacker
	// test guesses of the secret, as any keyed MAC does.
	//
	// Empty means no authentication and no encryption: the handshake still
	// runs (ids, version and frame limits are exchanged), any peer with an
	// empty secret is accepted, and frames travel in the clear (protocol
	// version 1, which the release before encryption also speaks). Whether
	// that is acceptable is the caller's decision.
	Secret []byte
	// AcceptV1Peers, with a Secret, also speaks protocol version 1 (the
	// release before encryption: the secret proven, frames in the clear)
	// to peers that speak nothing newer, for the window of a rolling
	// upgrade from that release. Peers of this release still speak
	// version 2 with each other, and no attacker can make them fall back
	// (see "Rolling upgrades" in the package doc). While a version 1
	// connection is open the transport says so in a warning when it opens
	// and every LegacyReminder after; turn the setting off once every
	// node runs this release. Default false; requires a Secret (without
	// one every connection speaks version 1 anyway).
	AcceptV1Peers bool
	// ConnsPerPeer is how many persistent connections are kept to each
	// peer. Calls go to the first one that is not busy (a large frame on
	// its way in either direction, more queued than one write takes, or
	// half its MaxInflight calls pending), so small calls share one
	// connection and its write and read syscalls, and one large frame
	// does not queue everything else behind it. Default 2; at least 1, at
	// most 64.
	ConnsPerPeer int
	// MaxFrame is the largest frame in bytes, counting the 14-byte header
	// but not the 4-byte length prefix, in either direction. Default
	// 16 MiB; at least 4 KiB, at most 1 GiB. Peers exchange their limits in
	// the handshake and each side sends at most the smaller one: a call
	// whose body does not fit fails with ErrFrameTooLarge before anything
	// is sent. A peer that sends a larger frame anyway has its connection
	// closed (with a log line); other connections are unaffected.
	MaxFrame int
	// MaxInflight bounds the calls pending on one connection (caller side)
	// and the handlers running for one connection (serving side). A call
	// beyond it waits for a free slot or for its ctx to end; a serving
	// connection beyond it stops reading until a handler returns. The
	// bytes those handlers hold are bounded separately, by
	// MaxConnInflightBytes and MaxInflightBytes. Default 512; at least 1.
	MaxInflight int
	// MaxConnInflightBytes bounds the bytes of incoming requests held on
	// one connection (from the moment a frame's header arrives until its
	// handler returns) plus the replies queued on it (until written). A
	// request beyond it waits, and the connection stops reading meanwhile
	// (TCP flow control pushes back on the sender). Bodies are reserved at
	// the length their header claims but allocated only as their bytes
	// arrive. Default 64 MiB; at least MaxFrame.
	MaxConnInflightBytes int
	// MaxInflightBytes bounds the same bytes over all connections of this
	// transport, so that many peers (or one peer with many connections)
	// cannot together hold more. Default 256 MiB; at least MaxFrame.
	MaxInflightBytes int
	// MaxHandshakes bounds the connections accepted but not yet through the
	// handshake, and MaxHandshakesPerSource those from one IP address. When
	// a new connection finds its source's share or every slot taken, the
	// oldest connection that has not yet sent its hello (from that source,
	// else from the source holding the most) is closed to make room; so a
	// flood of silent connections cannot keep a real peer out, which sends
	// its hello within a round trip of connecting. Defaults 64 and 8; at
	// least 1 each.
	MaxHandshakes          int
	MaxHandshakesPerSource int
	// DialTimeout bounds establishing the TCP connection to a peer. It is
	// separate from the calls' ctx because a dial is shared by the calls
	// waiting for it. Default 2s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the handshake on both sides; a peer that
	// connects and says nothing is dropped when it passes. Default 5s.
	HandshakeTimeout time.Duration
	// IOTimeout bounds one batch of writes to a connection, and reading
	// the rest of a frame once its first byte has arrived. A peer that
	// stops reading, or stalls in the middle of a frame, has its
	// connection closed when it passes. An idle connection is never timed
	// out (TCP keepalive watches it). Default 10s, which with 16 MiB frames
	// assumes at least about 2 MB/s per connection.
	IOTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect backoff. After a failed
	// dial or handshake the peer is left alone for a jittered delay that
	// starts at BackoffMin and doubles per failure up to BackoffMax; during
	// it, calls to the peer fail at once with ErrUnreachable instead of
	// piling up dials. A success resets it. Defaults 50ms and 5s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Logger receives connection-level events (handshake failures, bad
	// frames, handler panics). nil discards them.
	Logger *slog.Logger
	// Handler serves incoming requests. nil answers every request with a
	// RemoteError, which suits a node that only calls out.
	Handler Handler
	// Budget, if set, is the node's memory budget (shared with its client
	// fronts): the bytes of every incoming request are taken from it
	// before the body is read, and those of every reply are charged to it
	// until written, besides MaxConnInflightBytes and MaxInflightBytes. A
	// request that finds no room within the budget's wait is not read into
	// memory: its body is skipped and the caller gets ErrBusy. nil: only
	// the transport's own caps.
	Budget *membudget.Budget

	// legacyReminder overrides LegacyReminder (tests).
	legacyReminder time.Duration
}

// LegacyReminder is how often a transport with AcceptV1Peers repeats its
// warning while a version 1 connection is open.
const LegacyReminder = time.Minute

// DefaultConfig returns the settings for a LAN cluster. NodeID and
// ListenAddr are left for the caller.
func DefaultConfig() Config {
	return Config{
		ConnsPerPeer:           2,
		MaxFrame:               16 << 20,
		MaxInflight:            512,
		MaxConnInflightBytes:   64 << 20,
		MaxInflightBytes:       256 << 20,
		MaxHandshakes:          64,
		MaxHandshakesPerSource: 8,
		DialTimeout:            2 * time.Second,
		HandshakeTimeout:       5 * time.Second,
		IOTimeout:              10 * time.Second,
		BackoffMin:             50 * time.Millisecond,
		BackoffMax:             5 * time.Second,
	}
}

// Validate reports every field that is out of range. It changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" || len(c.NodeID) > maxIDLen {
		bad("NodeID must be 1 to %d bytes, got %d", maxIDLen, len(c.NodeID))
	}
	if c.ListenAddr == "" {
		bad("ListenAddr is required")
	}
	if len(c.AdvertiseAddr) > maxIDLen {
		bad("AdvertiseAddr must be at most %d bytes, got %d", maxIDLen, len(c.AdvertiseAddr))
	}
	if c.ConnsPerPeer < 1 || c.ConnsPerPeer > 64 {
		bad("ConnsPerPeer must be 1 to 64, got %d", c.ConnsPerPeer)
	}
	if c.MaxFrame < minFrame || c.MaxFrame > maxFrameLimit {
		bad("MaxFrame must be %d to %d bytes, got %d", minFrame, maxFrameLimit, c.MaxFrame)
	}
	if c.MaxInflight < 1 {
		bad("MaxInflight must be at least 1, got %d", c.MaxInflight)
	}
	if c.MaxConnInflightBytes < c.MaxFrame {
		bad("MaxConnInflightBytes must be at least MaxFrame (%d), got %d", c.MaxFrame, c.MaxConnInflightBytes)
	}
	if c.MaxInflightBytes < c.MaxFrame {
		bad("MaxInflightBytes must be at least MaxFrame (%d), got %d", c.MaxFrame, c.MaxInflightBytes)
	}
	if c.MaxHandshakes < 1 {
		bad("MaxHandshakes must be at least 1, got %d", c.MaxHandshakes)
	}
	if c.MaxHandshakesPerSource < 1 {
		bad("MaxHandshakesPerSource must be at least 1, got %d", c.MaxHandshakesPerSource)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"HandshakeTimeout", c.HandshakeTimeout},
		{"IOTimeout", c.IOTimeout},
		{"BackoffMin", c.BackoffMin},
	} {
		if d.v <= 0 {
			bad("%s must be positive, got %v", d.name, d.v)
		}
	}
	if c.AcceptV1Peers && len(c.Secret) == 0 {
		bad("AcceptV1Peers needs a Secret: without one every connection speaks version 1 anyway")
	}
	if c.BackoffMax < c.BackoffMin {
		bad("BackoffMax (%v) must be at least BackoffMin (%v)", c.BackoffMax, c.BackoffMin)
	}
	if len(errs) > 0 {
		return fmt.Errorf("transport config: %w", errors.Join(errs...))
	}
	return nil
}
