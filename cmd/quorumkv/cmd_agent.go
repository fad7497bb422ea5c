package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// agentSetting is one agent setting. Its name is the flag, the config-file
// key and, upper-cased with - as _ and prefixed QUORUMKV_, the environment
// variable.
type agentSetting struct {
	name, usage string
	isBool      bool
}

var agentSettings = []agentSetting{
	{name: "node-id", usage: "this peer's id, 1-64 of [A-Za-z0-9._-]; must stay the same across restarts (required)"},
	{name: "data-dir", usage: "directory of the peer's store; created if missing (required)"},
	{name: "http", usage: "client API listen address (default 127.0.0.1:8080)"},
	{name: "rpc", usage: "node-to-node RPC listen address (default 127.0.0.1:7946)"},
	{name: "gossip", usage: "gossip (memberlist) listen address, TCP and UDP (default 127.0.0.1:7947)"},
	{name: "advertise", usage: "host (name or IP, no port) that peers and clients are told to use for every listener, each keeping its bound port; required when one binds a wildcard address (0.0.0.0, ::)"},
	{name: "join", usage: "comma-separated gossip host:port of peers to join; host names are resolved again on every attempt, every address of a name is tried; retried until another member answers"},
	{name: "resp", usage: "Redis-protocol (RESP) listen address, passed to the node (default: off)"},
	{name: "secret", usage: "cluster secret: authenticates RPC and encrypts gossip; prefer QUORUMKV_SECRET, as flags show in ps"},
	{name: "accept-v1-peers", usage: "ROLLING UPGRADE WINDOW ONLY: with --secret, also talk to peers of the release before encryption (node-to-node protocol version 1: frames UNENCRYPTED); nodes of this release still encrypt between them; turn it off once every node is upgraded (true/false, default false)", isBool: true},
	{name: "tokens", usage: "client token file: one \"NAME ROLE TOKEN\" line per principal, ROLE read, write or admin, TOKEN the token or sha256:HEX of it; HTTP and RESP then need a token (re-read on SIGHUP; default: no authentication)"},
	{name: "tls-cert", usage: "PEM certificate chain: serve HTTPS and RESP over TLS (with --tls-key; re-read on SIGHUP; quorumkv tls init makes one to try)"},
	{name: "tls-key", usage: "PEM private key of --tls-cert"},
	{name: "tls-client-ca", usage: "PEM CA certificates: clients must present a certificate signed by one of them (needs --tls-cert)"},
	{name: "http-allowed-hosts", usage: "comma-separated names clients reach the HTTP API by (kv.example.com, *.example.com, or * for any), besides loopback names, IP addresses and the listen and advertised hosts: a defence against DNS rebinding"},
	{name: "cors-origins", usage: "comma-separated web origins (https://app.example.com) whose pages may call the API from a browser (default: none)"},
	{name: "join-mode", usage: "how this node enters the ring when new to it: auto (at once; default) or staged (waits in quorumkv ring plan until quorumkv ring commit)"},
	{name: "remove-min-down", usage: "refuse quorumkv remove of a member seen alive less than this `duration` ago, unless --force (default 1m)"},
	{name: "insecure", usage: "start even when a listener binds beyond loopback without --secret (and, for --http and --resp, --tokens or --tls-client-ca): anyone who reaches it may read, write and remove (true/false, default false)", isBool: true},
	{name: "sync", usage: "fsync every write before acknowledging it (true/false, default false)", isBool: true},
	{name: "n", usage: "default N of requests that give none (default 3); a new cluster places N owners per partition, fixed at its birth"},
	{name: "partitions", usage: "partition count Q of a NEW cluster, a power of two; fixed at its birth and checked to agree across members (default 1024); a data directory keeps the count it was created with"},
	{name: "ring", usage: "placement of a NEW cluster: claim (an agreed, balanced, zone-aware assignment; default) or tokens (the token ring of clusters born before claim rings, Q=256 unless --partitions: give it to add an empty node to such a cluster); a data directory keeps the placement it was created with"},
	{name: "zone", usage: "this node's failure domain (rack, availability zone), at most 64 bytes: each partition's owners are placed in distinct zones (default: none)"},
	{name: "r", usage: "default R (default 2)"},
	{name: "read-fanout", usage: "whom a read asks: all (every one of the N replicas, and repairs each that is behind; default) or quorum (R of them, this node first, the others only when one fails or has not answered in 20ms: one remote read less per GET at N=3 R=2; read repair then reaches only the replicas read, anti-entropy the rest)"},
	{name: "w", usage: "default W (default 2)"},
	{name: "timeout", usage: "default request timeout (default 5s; 2s with --profile local)"},
	{name: "profile", usage: "timing profile: lan (default) or local (one machine: fast failure detection, short retries)"},
	{name: "log-level", usage: "debug, info (default), warn or error"},
	{name: "log-format", usage: "text (default) or json"},
	{name: "sibling-warning", usage: "sibling count from which a write's answer warns and the node logs the key; 0: off (default 25)"},
	{name: "max-siblings", usage: "most siblings a client write may leave on one key; more is refused (413) until a write with a context or an overwrite resolves them; 0: no count cap (default 1000)"},
	{name: "cache-size", usage: "memory for the cache of recent records, in bytes (suffixes KiB, MiB, GiB); 0: off (default a sixteenth of --memory-limit, 8 MiB to 1 GiB; 64MiB with --memory-limit off)"},
	{name: "hint-interval", usage: "pause between hint delivery rounds (default 1s; 250ms with --profile local)"},
	{name: "hint-rate", usage: "most hints delivered per second, all targets together; 0: no cap (default 20000)"},
	{name: "hint-min-rate", usage: "floor of the adaptive hint delivery rate; 0: a fixed rate of --hint-rate (default 200)"},
	{name: "hint-max-bytes", usage: "cap on the hints kept for one dead peer, in bytes (suffixes KiB, MiB, GiB); 0: no cap (default 1GiB)"},
	{name: "hint-max-age", usage: "hints older than this are dropped and their partitions left to anti-entropy, e.g. 72h or 3d; 0: never (default 72h)"},
	{name: "ae-interval", usage: "anti-entropy: compare each partition with a peer this often, e.g. 1m; 0: only on demand and for marked partitions (default 1m; 5s with --profile local)"},
	{name: "ae-keys-per-second", usage: "anti-entropy: most differing keys repaired per second; 0: no cap (default 20000)"},
	{name: "transfer-rate", usage: "ring-change transfers this node pulls as a new owner: most bytes per second, e.g. 32MiB; 0: no cap (default 32MiB)"},
	{name: "transfer-min-rate", usage: "floor of the adaptive transfer rate, which falls toward it when the transfers' batches slow down (client load); 0 or --transfer-rate: a fixed rate (default 2MiB)"},
	{name: "transfer-partitions", usage: "ring-change transfers: partitions pulled at once, 1 to 64 (default 2)"},
	{name: "ae-min-keys-per-second", usage: "anti-entropy: floor of the adaptive repair rate; 0: a fixed rate of --ae-keys-per-second (default 1000)"},
	{name: "tombstone-grace", usage: "keep a tombstone this long after every primary holds it, then reap it, e.g. 7d; 0: keep tombstones forever (default 7d; at least twice --hint-max-age)"},
	{name: "max-downtime", usage: "a peer dead longer than this may be reaped without; a node back after more than half of it checks with its peers before serving (default 10d; at least --tombstone-grace)"},
	{name: "max-http-conns", usage: "cap on open client API connections; more are closed at accept; 0: from the file descriptor limit (default: a third of three quarters of it, at most 4096)"},
	{name: "max-resp-conns", usage: "cap on open RESP connections; more get -ERR max number of clients reached; 0: from the file descriptor limit (default: two thirds of three quarters of it, at most 10000)"},
	{name: "max-conns-per-source", usage: "cap on one source's (IPv4 address or IPv6 /64) connections to each client port; 0: an eighth of the port's cap, at least 16 (default 0)"},
	{name: "memory-limit", usage: "the node's memory limit (suffixes KiB, MiB, GiB): its resident memory is kept under it. It is split: 30% (at least 40 MiB) for the memory-mapped files and the binary, the rest is the Go runtime's GOMEMLIMIT (unless that is set), which holds the store (memtables 1/16 up to 2 x 16 MiB, block cache 1/32, record cache 1/16 unless --cache-size is given) and a quarter of the limit as the budget for requests in flight, beyond which requests get 503 busy (RESP -BUSY); 0: 90% of the cgroup limit or 50% of the machine, whichever is lower. Under it the collector is paced: GOGC off and the soft limit at twice the 90th percentile of the live heap of the last 10 minutes plus 32 MiB (at least 1.25 times their largest plus 32 MiB), so the heap does not swing with the store's memtable flushes (not with GOGC or GOMEMLIMIT set); off: no accounting and the store's default sizes, to measure its cost only (default 0)"},
	{name: "min-free-disk", usage: "free space kept on the data directory's file system (suffixes KiB, MiB, GiB); below it the node refuses writes (507 disk_full) and serves reads, writable again by itself once space is freed; 0: the default (256MiB, or 1% of the file system if more)"},
	{name: "resp-idle-timeout", usage: "close a RESP connection that sends nothing for this long (default 5m)"},
	{name: "inject-delay", usage: "EXPERIMENTS ONLY: delay every node-to-node message (request and reply) by a draw of exp:MEAN, fixed:D or fixed:D+jitter:J, e.g. exp:2ms (default: none)"},
}

// envName is the environment variable of setting name.
func envName(name string) string {
	return "QUORUMKV_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

const agentDescription = `
Runs one quorumkv peer until SIGINT or SIGTERM, then shuts down gracefully
(drains requests, leaves gossip, closes the store); a second signal exits at
once. Logs go to stderr.

Every setting can also come from an environment variable QUORUMKV_<NAME>
(node-id: QUORUMKV_NODE_ID) or from a config file (--config FILE or
QUORUMKV_CONFIG) of "name = value" lines, names as the flags, # comments.
Precedence: flag, then environment, then config file, then default.`

func runAgent(e *env, args []string) int {
	fs := newFlagSet(e, "agent", "--node-id ID --data-dir DIR [--http ADDR --rpc ADDR --gossip ADDR] [--join ADDR,...] [flags]", agentDescription)
	for _, s := range agentSettings {
		if s.isBool {
			fs.Bool(s.name, false, s.usage)
		} else {
			fs.String(s.name, "", s.usage)
		}
	}
	configFile := fs.String("config", "", "config `file` of name = value lines (env QUORUMKV_CONFIG)")
	if code, ok := parseFlagsOnly(e, fs, args); !ok {
		return code
	}
	flags := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			flags[f.Name] = f.Value.String()
		}
	})
	path := *configFile
	if path == "" {
		path = e.getenv("QUORUMKV_CONFIG")
	}
	var file map[string]string
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fail(e, exitBadInput, "config file: %v", err)
		}
		file, err = parseConfigFile(f)
		f.Close()
		if err != nil {
			return fail(e, exitBadInput, "config file %s: %v", path, err)
		}
	}
	vals := resolveSettings(flags, e.getenv, file)
	cfg, logOpts, err := agentConfig(vals)
	if err != nil {
		return fail(e, exitBadInput, "%v", err)
	}
	logger := newLogger(e.stderr, logOpts)
	cfg.Logger = logger
	warns, err := agentSecurity(vals, &cfg)
	if err != nil {
		return fail(e, exitBadInput, "%v", err)
	}
	for _, w := range warns {
		logger.Warn("token file", "file", vals["tokens"], "warning", w)
	}
	if d := vals["inject-delay"]; d != "" && cfg.WrapTransport != nil {
		logger.Warn("INJECTED LATENCY: every node-to-node message is delayed on purpose; for experiments only, never in production",
			"inject_delay", d)
	}
	if err := cfg.Validate(); err != nil {
		return fail(e, exitBadInput, "%v", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fail(e, exitBadInput, "data dir: %v", err)
	}
	if addr := e.getenv(pprofEnv); addr != "" {
		stop, err := startPprof(addr, logger)
		if err != nil {
			return fail(e, exitBadInput, "%v", err)
		}
		defer stop()
	}
	_, cacheGiven := vals["cache-size"]
	if err := agentMemory(vals["memory-limit"], &cfg, cacheGiven, logger); err != nil {
		return fail(e, exitBadInput, "%v", err)
	}
	nd, err := node.New(cfg)
	if err != nil {
		logger.Error("start failed", "err", err)
		return fail(e, exitBadInput, "%s", startFailure(err))
	}
	warnInsecure(logger, cfg)
	if stop := agentPacer(vals["memory-limit"], e.getenv, logger); stop != nil {
		defer stop()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var sig os.Signal
	for sig == nil {
		select {
		case <-hup:
			reloadSecurity(logger, cfg.Security)
		case sig = <-e.sigs:
		}
	}
	logger.Info("shutting down (a second signal exits at once)", "signal", sig.String())
	done := make(chan error, 1)
	go func() { done <- nd.Close() }()
	select {
	case err := <-done:
		if err != nil {
			logger.Error("shutdown", "err", err)
			return exitInternal
		}
		return exitOK
	case sig := <-e.sigs:
		logger.Warn("second signal: exiting without a clean shutdown", "signal", sig.String())
		return exitInternal
	}
}

// agentMemory applies --memory-limit (v; "" is 0, automatic) to cfg: the
// plan from the machine's memory, GOMEMLIMIT, the store's memtables and
// caches (the record cache unless --cache-size was given) and the budget
// for requests in flight, with one log line saying how they were chosen.
//
// "off" runs without a budget, with the store's default sizes, and leaves
// GOMEMLIMIT alone: requests in flight are not accounted. It exists to
// measure what the accounting costs (bench/peers.sh ALT_FLAGS), not for
// production.
func agentMemory(v string, cfg *node.Config, cacheGiven bool, logger *slog.Logger) error {
	if v == "off" {
		logger.Warn("--memory-limit off: requests in flight are not accounted (no memory budget, no GOMEMLIMIT); a flood of large requests can exhaust the memory")
		return nil
	}
	var limit int64
	if v != "" {
		var err error
		if limit, err = parseBytes(v); err != nil {
			return fmt.Errorf("--memory-limit %q: %v", v, err)
		}
	}
	m, err := membudget.ReadMachine()
	if err != nil {
		logger.Warn("cannot read the machine's memory; the automatic memory limit may be off", "err", err)
	}
	plan, err := membudget.PlanFor(limit, m)
	if err != nil {
		return fmt.Errorf("--memory-limit: %v", err)
	}
	inEffect, fromEnv := plan.Apply()
	cfg.Limits.Store = plan.Store
	if !cacheGiven {
		cfg.CacheSize = plan.Store.CacheSize
	}
	logger.Info("memory limit", "limit", plan.MemoryLimit, "why", plan.Why, "request_budget", plan.Budget,
		"gomemlimit", inEffect, "gomemlimit_from_env", fromEnv, "mapped_files", plan.Mapped,
		"memtables", plan.Store.MemTableSize*int64(plan.Store.NumMemtables), "block_cache", plan.Store.BlockCacheSize, "record_cache", cfg.CacheSize)
	if plan.Warning != "" {
		logger.Warn(plan.Warning)
	}
	if cacheGiven && cfg.CacheSize > plan.Store.CacheSize {
		logger.Warn("--cache-size is above the record cache's share of --memory-limit: the node's memory may exceed the limit",
			"cache_size", cfg.CacheSize, "share", plan.Store.CacheSize)
	}
	cfg.Limits.Budget, err = membudget.New(plan.BudgetConfig())
	return err
}

// agentPacer starts the GC pacer (membudget.GCPacer) under the soft limit
// agentMemory set, unless --memory-limit is off or the operator set GOGC or
// GOMEMLIMIT (their settings win). It returns the function that stops it,
// or nil.
func agentPacer(v string, getenv func(string) string, logger *slog.Logger) (stop func()) {
	if v == "off" || getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return nil
	}
	p := membudget.NewPacer(debug.SetMemoryLimit(-1))
	logger.Info("gc pacer: the heap goal follows the 90th percentile and the largest live heap of a window (GOGC off)",
		"factor", p.Factor, "quantile", p.Quantile, "peak_factor", p.PeakFactor, "headroom", p.Headroom, "window", p.Window, "floor", p.Floor, "ceiling", p.Ceiling)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		p.Run(done)
	}()
	return func() {
		close(done)
		<-exited
	}
}

// startFailure says why node.New failed, naming the flag to change when
// one setting explains it. New has closed what it opened by then (the store
// cleanly), so the next start is a normal one.
func startFailure(err error) string {
	var se *node.StartError
	if !errors.As(err, &se) {
		return fmt.Sprintf("start failed: %v", err)
	}
	if se.InUse() {
		return fmt.Sprintf("--%s %s: address already in use: another process listens there (another agent or cluster?); stop it or choose another --%s",
			se.Setting, se.Value, se.Setting)
	}
	return fmt.Sprintf("--%s %s: %v", se.Setting, se.Value, se.Err)
}

// parseConfigFile reads "name = value" lines. Blank lines and lines starting
// with # are skipped; a value may be double-quoted. Unknown names are an
// error, so a typo does not silently fall back to a default.
func parseConfigFile(r io.Reader) (map[string]string, error) {
	known := map[string]bool{}
	for _, s := range agentSettings {
		known[s.name] = true
	}
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want name = value, got %q", line, t)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !known[k] {
			return nil, fmt.Errorf("line %d: unknown setting %q", line, k)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			v = uq
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %s given twice", line, k)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveSettings applies the precedence flag > environment > file. A
// setting absent from all three is absent from the result (its default
// applies).
func resolveSettings(flags map[string]string, getenv func(string) string, file map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range agentSettings {
		if v, ok := flags[s.name]; ok {
			out[s.name] = v
		} else if v := getenv(envName(s.name)); v != "" {
			out[s.name] = v
		} else if v, ok := file[s.name]; ok {
			out[s.name] = v
		}
	}
	return out
}

type logOptions struct {
	level slog.Level
	json  bool
}

// agentConfig turns resolved settings into a node config. It checks the
// settings' syntax; node.Config.Validate checks the rest.
func agentConfig(vals map[string]string) (node.Config, logOptions, error) {
	var lo logOptions
	var cfg node.Config
	switch p := vals["profile"]; p {
	case "", "lan":
		cfg = node.DefaultConfig()
	case "local":
		cfg = node.DefaultLocalConfig()
	default:
		return cfg, lo, fmt.Errorf("--profile %q: want lan or local", p)
	}
	cfg.NodeID = vals["node-id"]
	if cfg.NodeID == "" {
		return cfg, lo, errors.New("--node-id is required (or QUORUMKV_NODE_ID, or node-id in the config file)")
	}
	cfg.DataDir = vals["data-dir"]
	if cfg.DataDir == "" {
		return cfg, lo, errors.New("--data-dir is required (or QUORUMKV_DATA_DIR, or data-dir in the config file)")
	}
	for name, dst := range map[string]*string{"http": &cfg.HTTPAddr, "rpc": &cfg.RPCAddr, "gossip": &cfg.GossipAddr, "resp": &cfg.RESPAddr} {
		if v, ok := vals[name]; ok {
			*dst = v
		}
	}
	if err := agentAdvertise(vals, &cfg); err != nil {
		return cfg, lo, err
	}
	if v := vals["join"]; v != "" {
		for _, j := range strings.Split(v, ",") {
			if j = strings.TrimSpace(j); j != "" {
				cfg.Join = append(cfg.Join, j)
			}
		}
	}
	switch v := vals["ring"]; v {
	case "", "claim":
	case "tokens":
		cfg.Ring = ring.LegacyConfig()
	default:
		return cfg, lo, fmt.Errorf("--ring %q: want claim or tokens", v)
	}
	if v, ok := vals["partitions"]; ok {
		q, err := strconv.Atoi(v)
		if err != nil || q < 1 || q > ring.MaxPartitions || q&(q-1) != 0 {
			return cfg, lo, fmt.Errorf("--partitions %q: want a power of two from 1 to %d", v, ring.MaxPartitions)
		}
		cfg.Ring.Partitions = q
	}
	cfg.Zone = vals["zone"]
	if len(cfg.Zone) > ring.MaxZoneLen {
		return cfg, lo, fmt.Errorf("--zone: %d bytes, at most %d", len(cfg.Zone), ring.MaxZoneLen)
	}
	cfg.Secret = vals["secret"]
	if v, ok := vals["accept-v1-peers"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, lo, fmt.Errorf("--accept-v1-peers %q: want true or false", v)
		}
		cfg.AcceptV1Peers = b
	}
	if v, ok := vals["join-mode"]; ok {
		if err := ownership.CheckJoinMode(v); err != nil || v == "" {
			return cfg, lo, fmt.Errorf("--join-mode %q: want %s (admitted at once) or %s (waits in ring plan until ring commit)", v, ownership.JoinAuto, ownership.JoinStaged)
		}
		cfg.JoinMode = v
	}
	switch v := vals["read-fanout"]; v {
	case "", "all":
	case "quorum":
		cfg.ReadQuorumOnly = true
	default:
		return cfg, lo, fmt.Errorf("--read-fanout %q: want all or quorum", v)
	}
	if v, ok := vals["sync"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, lo, fmt.Errorf("--sync %q: want true or false", v)
		}
		cfg.Sync = b
	}
	for name, dst := range map[string]*int{"n": &cfg.Defaults.N, "r": &cfg.Defaults.R, "w": &cfg.Defaults.W} {
		if v, ok := vals[name]; ok {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 {
				return cfg, lo, fmt.Errorf("--%s %q: want a positive number", name, v)
			}
			*dst = i
		}
	}
	if v, ok := vals["timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, lo, fmt.Errorf("--timeout %q: want a positive duration such as 2s", v)
		}
		cfg.Defaults.Timeout = d
	}
	if err := agentTuning(vals, &cfg); err != nil {
		return cfg, lo, err
	}
	if err := checkAgentRules(vals, cfg); err != nil {
		return cfg, lo, err
	}
	if v := vals["inject-delay"]; v != "" {
		d, err := bench.ParseDelay(v)
		if err != nil {
			return cfg, lo, fmt.Errorf("--inject-delay: %v", err)
		}
		if d.Kind != 0 {
			cfg.WrapTransport = delayWrapper(d, cfg.NodeID)
		}
	}
	switch v := strings.ToLower(vals["log-level"]); v {
	case "", "info":
		lo.level = slog.LevelInfo
	case "debug":
		lo.level = slog.LevelDebug
	case "warn", "warning":
		lo.level = slog.LevelWarn
	case "error":
		lo.level = slog.LevelError
	default:
		return cfg, lo, fmt.Errorf("--log-level %q: want debug, info, warn or error", v)
	}
	switch v := vals["log-format"]; v {
	case "", "text":
	case "json":
		lo.json = true
	default:
		return cfg, lo, fmt.Errorf("--log-format %q: want text or json", v)
	}
	return cfg, lo, nil
}

// agentTuning applies the hinted handoff and anti-entropy settings. Each
// is checked for syntax and sign here; node.Config.Validate checks how they
// relate (a grace period at least twice the hint age, and so on).
func agentTuning(vals map[string]string, cfg *node.Config) error {
	durations := []struct {
		name string
		dst  *time.Duration
		zero bool // 0 is allowed (it turns the feature off)
	}{
		{"hint-interval", &cfg.Hints.Interval, false},
		{"hint-max-age", &cfg.Hints.MaxAge, true},
		{"ae-interval", &cfg.AntiEntropy.Interval, true},
		{"tombstone-grace", &cfg.AntiEntropy.TombstoneGrace, true},
		{"max-downtime", &cfg.AntiEntropy.MaxDowntime, true},
	}
	for _, d := range durations {
		v, ok := vals[d.name]
		if !ok {
			continue
		}
		got, err := parseLongDuration(v)
		if err != nil || got < 0 || (got == 0 && !d.zero) {
			want := "a positive duration such as 1s, 72h or 7d"
			if d.zero {
				want = "a duration such as 1m, 72h or 7d, or 0"
			}
			return fmt.Errorf("--%s %q: want %s", d.name, v, want)
		}
		*d.dst = got
	}
	counts := []struct {
		name string
		dst  *int
	}{
		{"sibling-warning", &cfg.SiblingWarning},
		{"max-siblings", &cfg.MaxSiblings},
		{"max-http-conns", &cfg.Limits.HTTPConns},
		{"max-resp-conns", &cfg.Limits.RESPConns},
		{"max-conns-per-source", &cfg.Limits.ConnsPerSource},
		{"hint-rate", &cfg.Hints.RatePerSecond},
		{"hint-min-rate", &cfg.Hints.MinRatePerSecond},
		{"ae-keys-per-second", &cfg.AntiEntropy.KeysPerSecond},
		{"ae-min-keys-per-second", &cfg.AntiEntropy.MinKeysPerSecond},
		{"transfer-partitions", &cfg.Transfers.Partitions},
	}
	for _, c := range counts {
		v, ok := vals[c.name]
		if !ok {
			continue
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return fmt.Errorf("--%s %q: want a number, 0 or more", c.name, v)
		}
		*c.dst = i
	}
	if v, ok := vals["resp-idle-timeout"]; ok {
		d, err := parseLongDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("--resp-idle-timeout %q: want a positive duration such as 5m", v)
		}
		cfg.Limits.RESPTimeouts = connlimit.DefaultRESPTimeouts()
		cfg.Limits.RESPTimeouts.Idle = d
	}
	if v, ok := vals["cache-size"]; ok {
		b, err := parseBytes(v)
		if err != nil {
			return fmt.Errorf("--cache-size %q: %v", v, err)
		}
		cfg.CacheSize = b
	}
	if v, ok := vals["min-free-disk"]; ok {
		b, err := parseBytes(v)
		if err != nil {
			return fmt.Errorf("--min-free-disk %q: %v", v, err)
		}
		cfg.Limits.MinFreeDisk = b
	}
	for name, dst := range map[string]*int{"transfer-rate": &cfg.Transfers.BytesPerSecond, "transfer-min-rate": &cfg.Transfers.MinBytesPerSecond} {
		if v, ok := vals[name]; ok {
			b, err := parseBytes(v)
			if err != nil || b > math.MaxInt32 {
				return fmt.Errorf("--%s %q: want a byte count below 2GiB", name, v)
			}
			*dst = int(b)
		}
	}
	if v, ok := vals["hint-max-bytes"]; ok {
		b, err := parseBytes(v)
		if err != nil {
			return fmt.Errorf("--hint-max-bytes %q: %v", v, err)
		}
		cfg.Hints.MaxBytesPerTarget = b
	}
	return nil
}

// checkAgentRules checks the rules between settings that node.Config.Validate
// checks too, in the words of the flags a person can change: the default
// quorum, hint and repair rates, and the tombstone grace against the hint
// age and the downtime allowance (docs/ARCHITECTURE.md says why).
func checkAgentRules(vals map[string]string, cfg node.Config) error {
	// flag names a setting with its value, "(default)" when not given.
	flag := func(name string, v any) string {
		if _, given := vals[name]; given {
			return fmt.Sprintf("--%s %v", name, v)
		}
		return fmt.Sprintf("--%s %v (default)", name, v)
	}
	var pe *quorum.ParamError
	if err := cfg.Defaults.Validate(cfg.MaxN, cfg.MaxN); errors.As(err, &pe) {
		return fmt.Errorf("default quorum (--n %d, --r %d, --w %d): %s", cfg.Defaults.N, cfg.Defaults.R, cfg.Defaults.W, pe.Msg)
	}
	h, a := cfg.Hints, cfg.AntiEntropy
	if h.RatePerSecond > 0 && h.MinRatePerSecond > h.RatePerSecond {
		return fmt.Errorf("%s cannot exceed %s", flag("hint-min-rate", h.MinRatePerSecond), flag("hint-rate", h.RatePerSecond))
	}
	if a.KeysPerSecond > 0 && a.MinKeysPerSecond > a.KeysPerSecond {
		return fmt.Errorf("%s cannot exceed %s", flag("ae-min-keys-per-second", a.MinKeysPerSecond), flag("ae-keys-per-second", a.KeysPerSecond))
	}
	if err := cfg.Transfers.Validate(); err != nil {
		return fmt.Errorf("--transfer-rate, --transfer-min-rate, --transfer-partitions: %v", err)
	}
	if a.TombstoneGrace <= 0 {
		return nil
	}
	grace := flag("tombstone-grace", fmtDays(a.TombstoneGrace))
	if a.MaxDowntime < a.TombstoneGrace {
		return fmt.Errorf("%s must be at least %s", flag("max-downtime", fmtDays(a.MaxDowntime)), grace)
	}
	if h.MaxAge <= 0 || h.MaxAge > a.TombstoneGrace/2 {
		return fmt.Errorf("%s must be more than 0 and at most half of %s, %s: a hint must expire before a tombstone may be reaped (or --tombstone-grace 0 keeps tombstones forever)",
			flag("hint-max-age", fmtDays(h.MaxAge)), grace, fmtDays(a.TombstoneGrace/2))
	}
	return nil
}

// fmtDays writes d as the flags take it: whole days as "7d", else Go's
// form without zero minutes and seconds ("84h", not "84h0m0s").
func fmtDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseLongDuration is time.ParseDuration plus a whole number of days
// ("7d"), the unit grace periods are thought in.
func parseLongDuration(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("days %q: want a whole number", d)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// byteUnits are the size suffixes parseBytes accepts: the IEC binary units
// and the SI decimal ones, each meaning what its standard says, matched
// without regard to case.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// parseBytes reads a byte count: digits with an optional unit, KiB, MiB,
// GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000). A bare K,
// M, G or T is refused as ambiguous rather than guessed.
func parseBytes(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range byteUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	if mult == 1 && t != "" {
		if c := t[len(t)-1]; strings.ContainsRune("kKmMgGtT", rune(c)) {
			u := strings.ToUpper(string(c))
			return 0, fmt.Errorf("unit %q is ambiguous: write %siB (powers of 1024) or %sB (powers of 1000)", string(c), u, u)
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, errors.New("want a size in bytes such as 1073741824, 512MiB, 1GiB or 500MB, 0 or more")
	}
	return n * mult, nil
}

func newLogger(w io.Writer, o logOptions) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.level}
	if o.json {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// delayWrapper returns a WrapTransport that delays node-to-node messages by
// draws of d, from a source seeded by the node id (reproducible per node).
func delayWrapper(d bench.Delay, nodeID string) func(transport.Transport) transport.Transport {
	h := fnv.New64a()
	h.Write([]byte(nodeID))
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x9e3779b97f4a7c15))
	draw := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return d.Sample(rng)
	}
	return func(tr transport.Transport) transport.Transport { return transport.NewDelayed(tr, draw) }
}
