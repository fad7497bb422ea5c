package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
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
	// Secret is the cluster secret. Node-to-node RPC peers must prove it,
	// and gossip is encrypted with a key derived from it. "" disables both
	// (a warning is logged).
	Secret string

	// Ring fixes the partition count and tokens per member. It must be the
	// same on every node of a cluster, from its birth: a node whose ring
	// settings differ from a peer's refuses that peer's ring state.
	Ring ring.Config
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
	// per key bounds its bytes. 0: no count cap. Default 1000.
	MaxSiblings int
	// ReadRepairWait is how long a read waits, after answering, for slower
	// replicas before repairing the ones behind. Default 200ms.
	ReadRepairWait time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests at Close.
	// Default 10s.
	ShutdownTimeout time.Duration
	// JoinRetry is the interval between attempts to reach the Join peers
	// while this node knows no other. Default 2s.
	JoinRetry time.Duration

	// Hints configures hinted handoff.
	Hints HintConfig
	// AntiEntropy configures Merkle-tree anti-entropy.
	AntiEntropy AntiEntropyConfig

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
	// Now is the wall clock for value timestamps, hint ages and grace
	// periods. nil means time.Now.
	Now func() time.Time
}

// HintConfig configures hinted handoff.
type HintConfig struct {
	// Interval between delivery rounds: each round starts a delivery pass
	// for every target with hints that gossip sees alive and that is not
	// backing off, and expires hints past MaxAge. A peer seen alive again
	// starts a round at once. Must be positive. Default 1s (250ms in
	// DefaultLocalConfig).
	Interval time.Duration
	// Concurrency is how many hints are in flight to one target at once.
	// Must be at least 1. Default 16.
	Concurrency int
	// RatePerSecond caps hints delivered per second by this node, all
	// targets together, so delivery does not starve client traffic. 0 means
	// no cap (and no adaptation). Default 20000.
	RatePerSecond int
	// MinRatePerSecond, when positive, makes the rate adaptive between it
	// and RatePerSecond: delivery starts at MinRatePerSecond, speeds up
	// while hint merges answer about as fast as their recent minimum, and
	// halves when they take more than twice that (plus 1ms), which is when
	// delivery makes nodes queue and client requests wait (see
	// hintedhandoff.Pacer). It is also the slowest a drain can get. 0 means
	// a fixed rate of RatePerSecond. Must not exceed RatePerSecond.
	// Default 200.
	MinRatePerSecond int
	// MaxBytesPerTarget caps the bytes of hints kept for one target: once
	// reached, new hints for it are refused (the write is not acknowledged
	// by this fallback), logged at most once per target every 10s, counted
	// in quorumkv_hints_dropped_total{reason="bytes"}, and their partitions
	// marked for anti-entropy. The check is not atomic with concurrent
	// writes, so the cap may be overshot by the writes in flight. 0 means no
	// cap. Default 1 GiB.
	MaxBytesPerTarget int64
	// MaxAge expires hints first written longer ago than this (a merge
	// into a hint keeps its age): they are deleted, counted under
	// reason="age", and the partitions the target had hints in are marked
	// for anti-entropy. Expiry runs at most once per MaxAge/64 per target,
	// so a hint may outlive MaxAge by that much. 0 means no cap. Default 72h.
	MaxAge time.Duration
	// BackoffBase is the pause before retrying a target after its first
	// failed delivery pass; it doubles with each consecutive failure up to
	// BackoffMax, with jitter over the upper half. Seeing the peer alive
	// again resets it. 0 means 1s. Default 1s (100ms in DefaultLocalConfig).
	BackoffBase time.Duration
	// BackoffMax caps that pause. It bounds how late delivery starts when
	// gossip never reported the target down. 0 means 60s. Default 60s (2s in
	// DefaultLocalConfig).
	BackoffMax time.Duration
}

// AntiEntropyConfig configures Merkle-tree anti-entropy and the reaping of
// tombstones (docs/ARCHITECTURE.md, "Deletes that stay deleted").
type AntiEntropyConfig struct {
	// Interval is how often each partition this node replicates is compared
	// with one of its other replicas (they take turns). Exchanges run one at
	// a time, spread evenly over the interval: with 256 partitions and 1m,
	// one every 234ms, each one round trip when nothing differs. Shorter
	// finds divergence sooner for more tree walks. 0 disables the schedule
	// (exchanges still run on demand and for partitions marked for repair).
	// Default 1m (5s in DefaultLocalConfig).
	Interval time.Duration
	// KeysPerSecond caps the differing keys this node repairs per second,
	// all exchanges together, so a wiped node's refill does not starve
	// client traffic. 0 means no cap. Default 20000.
	KeysPerSecond int
	// MinKeysPerSecond is the floor of the repair rate: between it and
	// KeysPerSecond the rate adapts to the latency of the repair RPCs
	// (halving when they queue), so repairs take the capacity clients
	// leave. 0, or a floor at or above KeysPerSecond, means a fixed rate of
	// KeysPerSecond. Default 1000.
	MinKeysPerSecond int
	// TombstoneGrace is how long a tombstone is kept after this replica
	// first learned that every primary of its partition holds it; then it
	// is reaped (deleted from the store) if they still do. It must exceed
	// everything that can carry a value written before the delete: it must
	// be at least twice Hints.MaxAge. 0 disables reaping (tombstones are
	// kept forever). Default 7 days.
	TombstoneGrace time.Duration
	// MaxDowntime is how long a primary must have been dead, as this node
	// saw it in gossip, before this node may reap a tombstone without that
	// primary's confirmation (only while it sees a majority of the ring
	// alive). A node that comes back after being down longer than
	// MaxDowntime/2 by its own clock asks its peers whether they reaped
	// without it and, if so, drops its data and refills it through
	// anti-entropy. Must be at least TombstoneGrace when reaping is on.
	// Default 10 days.
	MaxDowntime time.Duration
	// LeafBits is log2 of the leaves of each partition's Merkle tree. Every
	// node of a cluster must use the same value (exchanges between
	// different shapes fail). More leaves send fewer keys per difference and
	// cost 8 bytes each per partition. 1 to 20. Default 10 (1024 leaves;
	// docs/bench/antientropy-node.md has the measurements).
	LeafBits int
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
		Hints: HintConfig{
			Interval:          time.Second,
			Concurrency:       16,
			RatePerSecond:     20000,
			MinRatePerSecond:  200,
			MaxBytesPerTarget: 1 << 30,
			MaxAge:            72 * time.Hour,
			BackoffBase:       time.Second,
			BackoffMax:        time.Minute,
		},
		AntiEntropy: AntiEntropyConfig{
			Interval:         time.Minute,
			KeysPerSecond:    20000,
			MinKeysPerSecond: 1000,
			TombstoneGrace:   7 * 24 * time.Hour,  // >= 2x Hints.MaxAge (72h)
			MaxDowntime:      10 * 24 * time.Hour, // a node away > 5 days checks before serving
			LeafBits:         10,                  // 1024 leaves: ~4 keys per leaf at 1M keys per 256 partitions
		},
	}
}

// DefaultLocalConfig is DefaultConfig with short intervals, for clusters on
// one machine (loopback) and tests: failures are detected in about a second.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.Defaults.Timeout = 2 * time.Second
	c.JoinRetry = 500 * time.Millisecond
	c.Hints.Interval = 250 * time.Millisecond
	c.Hints.BackoffBase = 100 * time.Millisecond
	c.Hints.BackoffMax = 2 * time.Second
	c.AntiEntropy.Interval = 5 * time.Second
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

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate reports the first problem with c. It never changes c.
func (c Config) Validate() error {
	if !nodeIDPattern.MatchString(c.NodeID) {
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
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join address %q: want host:port: %w", j, err)
		}
	}
	if err := c.Ring.Validate(); err != nil {
		return fmt.Errorf("ring: %w", err)
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
	if c.SiblingWarning < 0 || c.MaxSiblings < 0 {
		return fmt.Errorf("sibling warning %d and max siblings %d cannot be negative", c.SiblingWarning, c.MaxSiblings)
	}
	if c.MaxValueSize < 1 || c.MaxValueSize > 64<<20 {
		return fmt.Errorf("max value size %d: want 1 byte to 64 MiB", c.MaxValueSize)
	}
	if c.ReadRepairWait < 0 || c.ShutdownTimeout < 0 || c.JoinRetry <= 0 {
		return errors.New("read repair wait and shutdown timeout cannot be negative; join retry must be positive")
	}
	h := c.Hints
	if h.Interval <= 0 || h.Concurrency < 1 || h.RatePerSecond < 0 || h.MaxBytesPerTarget < 0 || h.MaxAge < 0 {
		return fmt.Errorf("hints: interval and concurrency must be positive, rate and caps non-negative")
	}
	if h.MinRatePerSecond < 0 || (h.RatePerSecond > 0 && h.MinRatePerSecond > h.RatePerSecond) {
		return fmt.Errorf("hints: min rate %d must be between 0 and the rate %d", h.MinRatePerSecond, h.RatePerSecond)
	}
	if h.BackoffBase < 0 || h.BackoffMax < 0 || (h.BackoffBase > 0 && h.BackoffMax > 0 && h.BackoffMax < h.BackoffBase) {
		return fmt.Errorf("hints: backoff base %v and max %v must be non-negative, max at least base", h.BackoffBase, h.BackoffMax)
	}
	a := c.AntiEntropy
	if a.MinKeysPerSecond < 0 {
		return fmt.Errorf("anti-entropy: min keys per second %d cannot be negative", a.MinKeysPerSecond)
	}
	if a.Interval < 0 || a.KeysPerSecond < 0 || a.TombstoneGrace < 0 || a.MaxDowntime < 0 {
		return fmt.Errorf("anti-entropy: interval, rate, grace and max downtime cannot be negative")
	}
	if a.LeafBits < 1 || a.LeafBits > 20 {
		return fmt.Errorf("anti-entropy: leaf bits %d: want 1 to 20", a.LeafBits)
	}
	if a.TombstoneGrace > 0 {
		if a.MaxDowntime < a.TombstoneGrace {
			return fmt.Errorf("anti-entropy: max downtime %v must be at least the tombstone grace %v", a.MaxDowntime, a.TombstoneGrace)
		}
		// A hint can carry a value written before a delete; it must expire
		// before any replica may reap the tombstone (ARCHITECTURE.md).
		if h.MaxAge <= 0 || h.MaxAge > a.TombstoneGrace/2 {
			return fmt.Errorf("anti-entropy: hints max age %v must be positive and at most half the tombstone grace %v", h.MaxAge, a.TombstoneGrace)
		}
	}
	return nil
}
