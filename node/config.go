package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/hintedhandoff"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
	"github.com/quorumkv/quorumkv/transport"
)

// Config configures one peer. Build it from DefaultConfig or
// DefaultLocalConfig and change what you need; New validates it.
type Config struct {
	// NodeID names this peer in the cluster: 1 to 64 characters from
	// [A-Za-z0-9._-]. It must stay the same across restarts: data written
	// under it, ring membership and hints all refer to it. Required.
	NodeID string
	// DataDir holds the badger store. "" keeps everything in memory (tests
	// only: nothing survives Close).
	DataDir string

	// HTTPAddr, RPCAddr and GossipAddr are the listen addresses of the client
	// API, the node-to-node RPC and memberlist. Use port 0 to pick a free
	// port (tests). RESPAddr enables the Redis-protocol listener when set.
	// An empty HTTPAddr (only without RESPAddr) opens no client port: the
	// embedder serves Handler itself.
	HTTPAddr, RPCAddr, GossipAddr, RESPAddr string
	// Advertise is the host (a name or an IP address, no port) that peers
	// and clients are told to use for every listener above; each keeps its
	// bound port. "" publishes the bound addresses as they are, which is
	// refused when a listener binds a wildcard address (0.0.0.0, ::, an
	// empty host): nobody can dial that. A name is published as is, so
	// peers resolve it on every dial and follow an address change; only
	// gossip, whose protocol carries IP addresses, resolves it once at
	// start (advertise.go).
	Advertise string
	// Join lists gossip addresses (host:port) of peers to join at start.
	// Hosts may be names: they are resolved again on every attempt, and a
	// name with several addresses (a Kubernetes headless service) has
	// every address tried. Attempts repeat every JoinRetry until another
	// member answers; later, the list is joined again now and then
	// (join.go), so clusters formed apart from the same seeds merge.
	Join []string
	// JoinMode is how this node enters the ring when it is new to it
	// (ownership.JoinAuto or "": at once; ownership.JoinStaged: it waits
	// in `ring plan` until `ring commit`).
	JoinMode string
	// Secret is the cluster secret. Node-to-node RPC peers must prove it,
	// and gossip is encrypted with a key derived from it. "" disables both
	// (a warning is logged).
	Secret string
	// AcceptV1Peers lets this node, which must have a Secret, also speak
	// node-to-node RPC protocol version 1 (secret proven, frames
	// UNENCRYPTED) with peers of the release before encryption, which
	// speak nothing newer: the window of a rolling upgrade from that
	// release (transport.Config.AcceptV1Peers). Nodes of this release
	// still speak version 2 with each other. While on, the node logs a
	// warning and /status lists the version 1 peers; turn it off, with a
	// rolling restart, once every node runs this release. Default false.
	AcceptV1Peers bool
	// Security holds the client ports' defences: tokens, TLS, browser
	// checks, protected mode (security.go).
	Security Security

	// Ring fixes the placement mode and partition count (and tokens per
	// member for the token ring) of a new cluster. It must be the same on
	// every node of a cluster, from its birth: a node whose ring settings
	// differ from a peer's refuses that peer's ring state. A data directory
	// keeps the settings it was born with (loadState). Default
	// ring.DefaultConfig(): ModeClaim, Q=1024.
	Ring ring.Config
	// Zone names this node's failure domain (rack, availability zone): a
	// ModeClaim ring places each partition's owners in distinct zones.
	Zone string
	// Defaults are the N/R/W/PR/PW/DW and timeout of requests that do not
	// give their own. Default 3/2/2, PR=PW=DW=0, 5s.
	Defaults quorum.Params
	// MaxN bounds the N a request may ask for. Default 7.
	MaxN int
	// MaxKeySize and MaxValueSize bound keys and values in bytes.
	// Defaults 1 KiB and 1 MiB.
	MaxKeySize, MaxValueSize int
	// Sync makes every store commit fsync before a write is acknowledged.
	// With Sync off (the default), an acknowledged write survives a crash of
	// the process but may be lost on a crash of the machine, unless the
	// request asked for dw>0.
	Sync bool
	// CacheSize bounds, in bytes, the store's cache of recently written
	// and read records, which spares replica merges and hot reads a badger
	// lookup (store.Options.CacheSize). 0 turns it off. Default 64 MiB.
	CacheSize int64
	// SiblingWarning is the sibling count from which a write's answer
	// warns, the node logs the key (rate-limited) and counts it in
	// quorumkv_sibling_warnings_total: a key whose writers do not send
	// contexts back. 0 turns the warning off. Default 25. (A second
	// sibling is always reported in the answer.)
	SiblingWarning int
	// MaxSiblings caps the siblings a client write may leave on one key:
	// a write that would make more is refused (HTTP 413, RESP TOOLARGE)
	// until a write with a context, or an overwrite, resolves them. It
	// bounds what every read of the key returns, as the 12 MiB size cap
	// per key bounds its bytes. 0: no count cap but the encoding's
	// (vclock.MaxSiblings, 4,096). Default 1000.
	MaxSiblings int
	// MergeSiblings is the most siblings a merge between replicas (hints,
	// read repair, anti-entropy, a write's replication) keeps on a key:
	// merges are never refused, a union past it keeps the newest and
	// drops the rest, counted in quorumkv_siblings_trimmed_total and
	// logged (siblings.Policy.Fit). 0: vclock.MaxSiblings (4,096); at
	// least MaxSiblings.
	MergeSiblings int
	// ReadRepairWait is how long a read waits, after answering, for slower
	// replicas before repairing the ones behind. Default 200ms.
	ReadRepairWait time.Duration
	// ReadQuorumOnly: a read asks R replicas, the others only on a
	// failure or a slow answer (quorum.Config.ReadQuorumOnly); read
	// repair then reaches only those read. Default false: all N.
	ReadQuorumOnly bool
	// ShutdownTimeout bounds the drain of in-flight requests at Close.
	// Default 10s.
	ShutdownTimeout time.Duration
	// JoinRetry is the interval between attempts to reach the Join peers
	// while this node knows no other. Default 2s.
	JoinRetry time.Duration

	// Limits bound client connections: caps per port and per source,
	// timeouts, minimum transfer rates. The zero value is the defaults.
	Limits Limits

	// Hints configures hinted handoff.
	Hints hintedhandoff.Config
	// AntiEntropy configures Merkle-tree anti-entropy.
	AntiEntropy antientropy.Config
	// Transfers throttles the ring-change transfers this node pulls as a
	// pending owner. Default (and the zero value) ownership.DefaultThrottle().
	Transfers ownership.Throttle

	// Gossip holds memberlist's settings. nil means
	// memberlist.DefaultLANConfig (DefaultLocalConfig uses
	// memberlist.DefaultLocalConfig). Name, bind address, delegates,
	// encryption key and logger are set by the node.
	Gossip *memberlist.Config

	// Logger receives structured logs. nil discards them.
	Logger *slog.Logger

	// Seams for tests; nil means the production implementation.

	// NewTransport builds the node-to-node transport serving h. nil means
	// TCP on RPCAddr with Secret.
	NewTransport func(h transport.Handler) (transport.Transport, error)
	// WrapTransport, if set, wraps the transport once it is built (for
	// example to inject latency on node-to-node messages in experiments).
	WrapTransport func(transport.Transport) transport.Transport
	// NewMembership builds the liveness and gossip layer. nil means
	// memberlist on GossipAddr.
	NewMembership func(d MembershipDelegate) (Membership, error)
	// Clock runs the node's timers and tickers (its own loops', hinted
	// handoff's and anti-entropy's) and measures their durations. nil
	// means clock.Real. A cluster inside a testing/synctest bubble needs
	// none: the bubble already fakes the process clock.
	Clock clock.Clock
	// Now is the wall clock for value timestamps, hint ages and grace
	// periods. nil means Clock.Now.
	Now func() time.Time
}

// DefaultConfig returns the settings for a LAN cluster of 3 to 50 nodes.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:   "127.0.0.1:8080",
		RPCAddr:    "127.0.0.1:7946",
		GossipAddr: "127.0.0.1:7947",
		Ring:       ring.DefaultConfig(),
		Defaults: quorum.Params{
			N: 3, R: 2, W: 2,
			Timeout: 5 * time.Second,
		},
		CacheSize:       64 << 20,
		SiblingWarning:  25,
		MaxSiblings:     1000,
		MaxN:            7,
		MaxKeySize:      1 << 10,
		MaxValueSize:    1 << 20,
		ReadRepairWait:  200 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		JoinRetry:       2 * time.Second,
		Hints:           hintedhandoff.DefaultConfig(),
		AntiEntropy:     antientropy.DefaultConfig(),
		Transfers:       ownership.DefaultThrottle(),
		Security:        Security{RemoveMinDown: time.Minute},
	}
}

// DefaultLocalConfig is DefaultConfig with short intervals, for clusters on
// one machine (loopback) and tests: failures are detected in about a second.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.Defaults.Timeout = 2 * time.Second
	c.JoinRetry = 500 * time.Millisecond
	c.Hints = hintedhandoff.DefaultLocalConfig()
	c.AntiEntropy = antientropy.DefaultLocalConfig()
	g := memberlist.DefaultLocalConfig()
	// Detect a killed peer within about a second instead of memberlist's
	// local default of several.
	g.ProbeInterval = 200 * time.Millisecond
	g.ProbeTimeout = 100 * time.Millisecond
	g.SuspicionMult = 2
	g.GossipInterval = 50 * time.Millisecond
	g.PushPullInterval = 5 * time.Second
	c.Gossip = g
	return c
}

// Validate reports the first problem with c. It never changes c.
func (c Config) Validate() error {
	if !ringstate.ValidID(c.NodeID) {
		return fmt.Errorf("node id %q: want 1 to 64 characters from [A-Za-z0-9._-]", c.NodeID)
	}
	for _, a := range c.listeners() {
		if a.addr == "" {
			return fmt.Errorf("%s address is empty", a.name)
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s address %q: %w", a.name, a.addr, err)
		}
	}
	if err := c.validateAdvertise(); err != nil {
		return err
	}
	if c.AcceptV1Peers && c.Secret == "" {
		return errors.New("accept-v1-peers needs a cluster secret: without one, nodes of every release already speak protocol version 1 with each other")
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join address %q: want host:port: %w", j, err)
		}
	}
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	if len(c.Zone) > ring.MaxZoneLen {
		return fmt.Errorf("zone %q: at most %d bytes", c.Zone, ring.MaxZoneLen)
	}
	if err := ownership.CheckJoinMode(c.JoinMode); err != nil {
		return err
	}
	d := c.Defaults
	if d.Timeout <= 0 {
		return errors.New("default timeout must be positive")
	}
	if c.MaxN < 1 {
		return fmt.Errorf("max n %d: must be at least 1", c.MaxN)
	}
	if err := d.Validate(c.MaxN, c.MaxN); err != nil {
		return fmt.Errorf("default quorum: %w", err)
	}
	if c.MaxKeySize < 1 || c.MaxKeySize > antientropy.MaxKeyLen {
		// Anti-entropy exchanges carry keys in bounded messages; a longer
		// key could never be repaired.
		return fmt.Errorf("max key size %d: want 1 to %d bytes", c.MaxKeySize, antientropy.MaxKeyLen)
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("cache size %d: cannot be negative", c.CacheSize)
	}
	if c.SiblingWarning < 0 || c.MaxSiblings < 0 || c.MergeSiblings < 0 {
		return fmt.Errorf("sibling warning %d, max siblings %d and merge siblings %d cannot be negative", c.SiblingWarning, c.MaxSiblings, c.MergeSiblings)
	}
	if err := c.siblingPolicy().Validate(); err != nil {
		return err
	}
	if c.MaxValueSize < 1 || c.MaxValueSize > 64<<20 {
		return fmt.Errorf("max value size %d: want 1 byte to 64 MiB", c.MaxValueSize)
	}
	if c.ReadRepairWait < 0 || c.ShutdownTimeout < 0 || c.JoinRetry <= 0 {
		return errors.New("read repair wait and shutdown timeout cannot be negative; join retry must be positive")
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	h := c.Hints
	if err := h.Validate(); err != nil {
		return fmt.Errorf("hints: %w", err)
	}
	if err := c.Transfers.Validate(); err != nil && c.Transfers != (ownership.Throttle{}) {
		return fmt.Errorf("transfers: %w", err)
	}
	a := c.AntiEntropy
	if err := a.Validate(); err != nil {
		return fmt.Errorf("anti-entropy: %w", err)
	}
	// A hint can carry a value written before a delete; it must expire
	// before any replica may reap the tombstone (ARCHITECTURE.md). The rule
	// spans two packages' configs, so it is checked here.
	if a.TombstoneGrace > 0 && (h.MaxAge <= 0 || h.MaxAge > a.TombstoneGrace/2) {
		return fmt.Errorf("anti-entropy: hints max age %v must be positive and at most half the tombstone grace %v", h.MaxAge, a.TombstoneGrace)
	}
	return nil
}
