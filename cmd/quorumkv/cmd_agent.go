package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/transport"
)

func init() {
	register(&command{Name: "agent", OwnSignals: true, Order: 1, Summary: "run a peer", Run: runAgent})
}

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
	{name: "join", usage: "comma-separated gossip addresses of peers to join; retried until one answers"},
	{name: "resp", usage: "Redis-protocol (RESP) listen address, passed to the node (default: off)"},
	{name: "secret", usage: "cluster secret: authenticates RPC and encrypts gossip; prefer QUORUMKV_SECRET, as flags show in ps"},
	{name: "sync", usage: "fsync every write before acknowledging it (true/false, default false)", isBool: true},
	{name: "n", usage: "default N of requests that give none (default 3)"},
	{name: "r", usage: "default R (default 2)"},
	{name: "w", usage: "default W (default 2)"},
	{name: "timeout", usage: "default request timeout (default 5s; 2s with --profile local)"},
	{name: "profile", usage: "timing profile: lan (default) or local (one machine: fast failure detection, short retries)"},
	{name: "log-level", usage: "debug, info (default), warn or error"},
	{name: "log-format", usage: "text (default) or json"},
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
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return fail(e, exitBadInput, "agent takes no arguments, got %q", pos)
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
	nd, err := node.New(cfg)
	if err != nil {
		logger.Error("start failed", "err", err)
		return fail(e, exitInternal, "start: %v", err)
	}
	sig := <-e.sigs
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
		return cfg, lo, fmt.Errorf("profile %q: want lan or local", p)
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
	if v := vals["join"]; v != "" {
		for _, j := range strings.Split(v, ",") {
			if j = strings.TrimSpace(j); j != "" {
				cfg.Join = append(cfg.Join, j)
			}
		}
	}
	cfg.Secret = vals["secret"]
	if v, ok := vals["sync"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, lo, fmt.Errorf("sync %q: want true or false", v)
		}
		cfg.Sync = b
	}
	for name, dst := range map[string]*int{"n": &cfg.Defaults.N, "r": &cfg.Defaults.R, "w": &cfg.Defaults.W} {
		if v, ok := vals[name]; ok {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 {
				return cfg, lo, fmt.Errorf("%s %q: want a positive number", name, v)
			}
			*dst = i
		}
	}
	if v, ok := vals["timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, lo, fmt.Errorf("timeout %q: want a positive duration such as 2s", v)
		}
		cfg.Defaults.Timeout = d
	}
	if v := vals["inject-delay"]; v != "" {
		d, err := bench.ParseDelay(v)
		if err != nil {
			return cfg, lo, fmt.Errorf("inject-delay: %v", err)
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
		return cfg, lo, fmt.Errorf("log level %q: want debug, info, warn or error", v)
	}
	switch v := vals["log-format"]; v {
	case "", "text":
	case "json":
		lo.json = true
	default:
		return cfg, lo, fmt.Errorf("log format %q: want text or json", v)
	}
	return cfg, lo, nil
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
