package main

import (
	"bytes"
	"flag"
	"github.com/quorumkv/quorumkv/ring"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

// runCmd runs the CLI in-process with captured streams.
func runCmd(t *testing.T, environ map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, ctx: t.Context(),
		getenv: func(k string) string { return environ[k] }}
	code := run(e, args)
	return code, out.String(), errb.String()
}

func TestHelpAndDispatch(t *testing.T) {
	code, out, _ := runCmd(t, nil, "", "help")
	if code != exitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, name := range []string{"agent", "dev", "put", "get", "delete", "members", "ring", "status", "Exit codes"} {
		if !strings.Contains(out, name) {
			t.Errorf("help lacks %q:\n%s", name, out)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for help asked for (exit 0)
	}{
		{nil, exitBadInput, "Usage"},
		{[]string{"frobnicate"}, exitBadInput, "unknown command"},
		{[]string{"help", "frobnicate"}, exitBadInput, "unknown command"},
		{[]string{"help", "put"}, exitOK, "Usage: quorumkv put"},
		{[]string{"get", "-h"}, exitOK, "Usage: quorumkv get"},
		{[]string{"agent", "--help"}, exitOK, "QUORUMKV_NODE_ID"},
		{[]string{"dev", "-h"}, exitOK, "-base-port"},
		{[]string{"get"}, exitBadInput, "one KEY"},
		{[]string{"get", "a", "b"}, exitBadInput, "one KEY"},
		{[]string{"put", "k"}, exitBadInput, "KEY VALUE"},
		{[]string{"get", "k", "--w", "2"}, exitBadInput, "not defined: -w"},
		{[]string{"put", "k", "v", "--r", "2"}, exitBadInput, "apply to put only with --overwrite"},
		{[]string{"put", "k", "v", "--ttl", "soon"}, exitBadInput, "--ttl: time to live \"soon\""},
		{[]string{"put", "k", "v", "--ttl", "-2d"}, exitBadInput, "--ttl"},
		{[]string{"put", "k", "v", "--local"}, exitBadInput, "not defined: -local"},
		{[]string{"delete", "k", "--r", "2", "--context", "x"}, exitBadInput, "only without --context"},
		{[]string{"members", "extra"}, exitBadInput, "no arguments"},
		{[]string{"dev", "--nodes", "0"}, exitBadInput, "--nodes 0"},
		{[]string{"get", "k", "--addr", "ftp://x:1"}, exitBadInput, "scheme"},
		{[]string{"get", "k", "--timeout", "-1s"}, exitBadInput, "--timeout -1s: cannot be negative"},
		{[]string{"version", "extra"}, exitBadInput, "no arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, nil, "", tc.args...)
			got := errOut
			if tc.code == exitOK {
				got = out
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d (want %d), stdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
		})
	}
}

// Issue 19, item 8: help asked for goes to stdout (it is the output), and a
// bad flag is one line on stderr pointing to --help, not the whole usage.
func TestHelpToStdoutBadFlagOneLine(t *testing.T) {
	for _, args := range [][]string{{"put", "-h"}, {"help", "get"}, {"agent", "--help"}, {"bench", "-h"}} {
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		code, out, errOut := runCmd(t, nil, "", args...)
		if code != exitOK || !strings.HasPrefix(out, "Usage: quorumkv "+name) || errOut != "" {
			t.Errorf("%q: exit %d, stdout %.60q, stderr %q; want the usage on stdout only", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"put", "--bogus", "k", "v"}, {"get", "k", "--r"}, {"agent", "--nope"}, {"status", "-x"}, {"get", "a", "b"}} {
		code, out, errOut := runCmd(t, nil, "", args...)
		if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--help") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line pointing to --help", args, code, out, errOut)
		}
	}
}

// Issue 19, item 7: with neither --addr nor QUORUMKV_ADDR, a failure to
// reach the default address says so and how to set it.
func TestDefaultAddressHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	old := defaultAddr
	defaultAddr = closed
	defer func() { defaultAddr = old }()
	code, _, errOut := runCmd(t, nil, "", "get", "k")
	if code != exitUnavailable || !strings.Contains(errOut, "QUORUMKV_ADDR is not set, so the default "+closed+" was tried") {
		t.Fatalf("get with no address given: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCmd(t, map[string]string{"QUORUMKV_ADDR": closed}, "", "get", "k")
	if code != exitUnavailable || strings.Contains(errOut, "QUORUMKV_ADDR is not set") {
		t.Fatalf("get with QUORUMKV_ADDR set: exit %d, %s", code, errOut)
	}
}

// Issue 19, item 8: quorumkv version and --version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCmd(t, nil, "", args...)
		if code != exitOK || !strings.HasPrefix(out, "quorumkv ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
}

// Issue 19, item 8: sizes take binary (KiB) and decimal (KB) units; a bare
// K, M or G is refused as ambiguous.
func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""}, {"1073741824", 1 << 30, ""}, {"512MiB", 512 << 20, ""}, {"1GiB", 1 << 30, ""}, {"2 KiB", 2048, ""},
		{"64MB", 64e6, ""}, {"64mb", 64e6, ""}, {"1KB", 1000, ""}, {"1TB", 1e12, ""}, {"1TiB", 1 << 40, ""}, {"10B", 10, ""},
		{"64M", 0, "ambiguous"}, {"1k", 0, "ambiguous"}, {"3G", 0, "ambiguous"},
		{"-1", 0, "want a size"}, {"x", 0, "want a size"}, {"1PiB", 0, "want a size"}, {"MiB", 0, "want a size"},
		{"99999999999999GiB", 0, "want a size"},
	} {
		got, err := parseBytes(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestCommandNamesUnique: two commands of one name would leave the second
// unreachable, and help cannot be one (run answers it first).
func TestCommandNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.Name] || c.Name == "help" || c.Run == nil {
			t.Errorf("command %q: listed twice, named help, or without Run", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		w    string
		v    bool
	}{
		{[]string{"k", "v", "--w", "3"}, []string{"k", "v"}, "3", false},
		{[]string{"--w=3", "k", "-v", "val"}, []string{"k", "val"}, "3", true},
		{[]string{"k", "--", "-5", "--w"}, []string{"k", "-5", "--w"}, "", false},
		{[]string{"k", "-5"}, []string{"k", "-5"}, "", false},
		{[]string{"k", "-2.5", "--w", "2"}, []string{"k", "-2.5"}, "2", false},
		{[]string{"--w", "-1", "k"}, []string{"k"}, "-1", false}, // a flag's value, even when it looks negative
		{[]string{"k", "-", "--w", "all"}, []string{"k", "-"}, "all", false},
		{nil, nil, "", false},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		w := fs.String("w", "", "")
		v := fs.Bool("v", false, "")
		pos, _, ok := parseArgs(fs, tc.args)
		if !ok || !reflect.DeepEqual(pos, tc.pos) || *w != tc.w || *v != tc.v {
			t.Errorf("parseArgs(%q) = %q ok=%v w=%q v=%v; want %q w=%q v=%v", tc.args, pos, ok, *w, *v, tc.pos, tc.w, tc.v)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, code, ok := parseArgs(fs, []string{"k", "--nope"}); ok || code != exitBadInput {
		t.Errorf("unknown flag: ok=%v code=%d", ok, code)
	}
}

func TestAgentSettingsPrecedence(t *testing.T) {
	file, err := parseConfigFile(strings.NewReader(`
# a comment
node-id = file-id
data-dir = "/data/with space"
http = 127.0.0.1:1
rpc = 127.0.0.1:2
n = 5
`))
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{"QUORUMKV_HTTP": "127.0.0.1:10", "QUORUMKV_RPC": "127.0.0.1:20", "QUORUMKV_SYNC": "true", "QUORUMKV_ADDR": "ignored"}
	flags := map[string]string{"http": "127.0.0.1:100"}
	got := resolveSettings(flags, func(k string) string { return environ[k] }, file)
	want := map[string]string{
		"node-id":  "file-id",          // file only
		"data-dir": "/data/with space", // quoted in the file
		"http":     "127.0.0.1:100",    // flag beats env and file
		"rpc":      "127.0.0.1:20",     // env beats file
		"sync":     "true",             // env only
		"n":        "5",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved %v\nwant     %v", got, want)
	}
	cfg, lo, err := agentConfig(got)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != "file-id" || cfg.HTTPAddr != "127.0.0.1:100" || cfg.RPCAddr != "127.0.0.1:20" || !cfg.Sync ||
		cfg.Defaults.N != 5 || cfg.Defaults.R != 2 || cfg.GossipAddr != "127.0.0.1:7947" || lo.level != slog.LevelInfo {
		t.Fatalf("config %+v", cfg)
	}
}

func TestAgentConfigErrors(t *testing.T) {
	base := map[string]string{"node-id": "n1", "data-dir": "/d"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "<delete>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		vals map[string]string
		want string
	}{
		{with("node-id", "<delete>"), "--node-id is required"},
		{with("data-dir", "<delete>"), "--data-dir is required"},
		{with("profile", "wan"), "profile"},
		{with("sync", "maybe"), "sync"},
		{with("accept-v1-peers", "maybe"), "--accept-v1-peers \"maybe\": want true or false"},
		{with("n", "0"), "n \"0\""},
		{with("r", "x"), "r \"x\""},
		{with("timeout", "5"), "timeout"},
		{with("log-level", "loud"), "--log-level"},
		{with("log-format", "xml"), "--log-format"},
		{with("hint-interval", "0"), "hint-interval"},
		{with("hint-max-age", "-1h"), "hint-max-age"},
		{with("tombstone-grace", "7days"), "tombstone-grace"},
		{with("max-downtime", "1.5d"), "max-downtime"},
		{with("ae-interval", "soon"), "ae-interval"},
		{with("hint-rate", "-5"), "hint-rate"},
		{with("ae-keys-per-second", "fast"), "ae-keys-per-second"},
		{with("hint-max-bytes", "1PiB"), "--hint-max-bytes"},
		{with("cache-size", "-1"), "cache-size"},
		{with("cache-size", "64M"), "--cache-size \"64M\": unit \"M\" is ambiguous"},
		{with("hint-min-rate", "30000"), "--hint-min-rate 30000 cannot exceed --hint-rate 20000 (default)"},
		{with("tombstone-grace", "1h"), "--hint-max-age 3d (default) must be more than 0 and at most half of --tombstone-grace 1h"},
		{with("max-downtime", "1d"), "--max-downtime 1d must be at least --tombstone-grace 7d (default)"},
		{with("r", "4"), "default quorum (--n 3, --r 4, --w 2): r=4: cannot exceed n=3"},
		{with("hint-max-bytes", "99999999999999GiB"), "hint-max-bytes"},
		{with("join-mode", "lazy"), `--join-mode "lazy": want auto (admitted at once) or staged`},
		{with("read-fanout", "some"), `--read-fanout "some": want all or quorum`},
		{with("join-mode", ""), `--join-mode "": want auto`},
		{with("max-http-conns", "-1"), "max-http-conns"},
		{with("max-resp-conns", "many"), "max-resp-conns"},
		{with("resp-idle-timeout", "0"), "resp-idle-timeout"},
		{with("min-free-disk", "lots"), "min-free-disk"},
		{with("partitions", "1000"), "--partitions \"1000\": want a power of two"},
		{with("partitions", "0"), "--partitions"},
		{with("ring", "hash"), "--ring \"hash\": want claim or tokens"},
		{with("zone", strings.Repeat("z", 65)), "zone"},
		{with("transfer-rate", "fast"), "--transfer-rate \"fast\""},
		{with("transfer-rate", "4GiB"), "--transfer-rate"},
		{with("transfer-partitions", "0"), "transfer partitions 0: want 1 to 64"},
		{with("transfer-min-rate", "64MiB"), "transfer min rate 67108864 exceeds the rate 33554432"},
	}
	for _, tc := range tests {
		if _, _, err := agentConfig(tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("agentConfig(%v) = %v, want an error with %q", tc.vals, err, tc.want)
		}
	}
	cfg, _, err := agentConfig(with("profile", "local"))
	if err != nil || cfg.Defaults.Timeout != 2*time.Second {
		t.Errorf("local profile: %v %v", cfg.Defaults.Timeout, err)
	}
	cfg, _, err = agentConfig(with("partitions", "256"))
	if err != nil || cfg.Ring.Partitions != 256 || cfg.Ring.Mode != ring.ModeClaim {
		t.Errorf("--partitions 256: %+v %v", cfg.Ring, err)
	}
	withRing := with("ring", "tokens")
	withRing["zone"] = "az1"
	if cfg, _, err = agentConfig(withRing); err != nil || cfg.Ring.Mode != ring.ModeTokens || cfg.Ring.Partitions != 256 || cfg.Zone != "az1" {
		t.Errorf("--ring tokens --zone az1: %+v %q %v", cfg.Ring, cfg.Zone, err)
	}
	if cfg, _, err = agentConfig(with("read-fanout", "quorum")); err != nil || !cfg.ReadQuorumOnly {
		t.Errorf("--read-fanout quorum: %v %v", cfg.ReadQuorumOnly, err)
	}
	if cfg, _, err = agentConfig(with("read-fanout", "all")); err != nil || cfg.ReadQuorumOnly {
		t.Errorf("--read-fanout all: %v %v", cfg.ReadQuorumOnly, err)
	}
	if cfg, _, err = agentConfig(with("join-mode", "staged")); err != nil || cfg.JoinMode != "staged" {
		t.Errorf("--join-mode staged: %q %v", cfg.JoinMode, err)
	}
	cfg, _, err = agentConfig(with("join", " 127.0.0.1:1, ,127.0.0.1:2"))
	if err != nil || !reflect.DeepEqual(cfg.Join, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("join: %q %v", cfg.Join, err)
	}
	tuned := with("hint-max-bytes", "512MiB")
	for k, v := range map[string]string{"hint-interval": "100ms", "hint-rate": "0", "hint-min-rate": "0", "hint-max-age": "2d",
		"ae-interval": "0", "ae-keys-per-second": "500", "ae-min-keys-per-second": "50", "tombstone-grace": "4d", "max-downtime": "120h", "cache-size": "8MiB"} {
		tuned[k] = v
	}
	cfg, _, err = agentConfig(tuned)
	h, a := cfg.Hints, cfg.AntiEntropy
	if err != nil || h.MaxBytesPerTarget != 512<<20 || h.Interval != 100*time.Millisecond || h.RatePerSecond != 0 || h.MinRatePerSecond != 0 ||
		h.MaxAge != 48*time.Hour || a.Interval != 0 || a.KeysPerSecond != 500 || a.MinKeysPerSecond != 50 ||
		a.TombstoneGrace != 96*time.Hour || a.MaxDowntime != 120*time.Hour || cfg.CacheSize != 8<<20 {
		t.Errorf("tuning settings: %+v %+v %v", h, a, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("tuned config: %v", err)
	}
	limited := with("max-http-conns", "100")
	for k, v := range map[string]string{"max-resp-conns": "200", "max-conns-per-source": "10", "resp-idle-timeout": "30s", "min-free-disk": "1GiB"} {
		limited[k] = v
	}
	cfg, _, err = agentConfig(limited)
	if l := cfg.Limits; err != nil || l.HTTPConns != 100 || l.RESPConns != 200 || l.ConnsPerSource != 10 || l.RESPTimeouts.Idle != 30*time.Second ||
		l.RESPTimeouts.Command != connlimit.BodyPace || l.MinFreeDisk != 1<<30 {
		t.Errorf("limit settings: %+v %v", l, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("limited config: %v", err)
	}
	// Invalid values that only the node's Validate catches exit 2 as well.
	code, _, errOut := runCmd(t, nil, "", "agent", "--node-id", "n1", "--data-dir", t.TempDir(), "--hint-max-age", "5d", "--tombstone-grace", "7d")
	if code != exitBadInput || !strings.Contains(errOut, "--hint-max-age 5d must be more than 0 and at most half of --tombstone-grace 7d") {
		t.Errorf("grace shorter than twice the hint age: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCmd(t, nil, "", "agent", "--node-id", "bad id!", "--data-dir", t.TempDir())
	if code != exitBadInput || !strings.Contains(errOut, "node id") {
		t.Errorf("bad node id: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCmd(t, map[string]string{"QUORUMKV_NODE_ID": "n1", "QUORUMKV_DATA_DIR": t.TempDir()}, "", "agent", "--http", "nohost")
	if code != exitBadInput || !strings.Contains(errOut, "http address") {
		t.Errorf("bad http address: exit %d, %s", code, errOut)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"node-id n1", "line 1: want name = value"},
		{"\nnodeid = n1", "line 2: unknown setting"},
		{"n = 1\nn = 2", "given twice"},
		{`secret = "unterminated\"`, "line 1"},
	} {
		if _, err := parseConfigFile(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfigFile(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	code, _, errOut := runCmd(t, nil, "", "agent", "--config", "/nonexistent/quorumkv.conf")
	if code != exitBadInput || !strings.Contains(errOut, "config file") {
		t.Errorf("missing config file: exit %d, %s", code, errOut)
	}
}

// aliveCluster starts an in-process cluster of three nodes, waits until
// every node sees every node alive, and returns it with the nodes' HTTP
// addresses (host:port).
func aliveCluster(t *testing.T) (*nodetest.Cluster, []string) {
	t.Helper()
	cl := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	cl.WaitAllAlive(10 * time.Second)
	var addrs []string
	for i := range cl.Len() {
		addrs = append(addrs, strings.TrimPrefix(cl.URL(i), "http://"))
	}
	return cl, addrs
}

// TestClientCommands drives put/get/delete/members/ring/status against an
// in-process cluster and checks outputs and exit codes.
func TestClientCommands(t *testing.T) {
	cl, addrs := aliveCluster(t)
	environ := map[string]string{"QUORUMKV_ADDR": strings.Join(addrs, ",")}
	q := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, environ, stdin, args...)
	}

	code, out, errOut := q("", "get", "greeting")
	if code != exitNotFound || out != "" || !strings.Contains(errOut, "not found") {
		t.Fatalf("get of a new key: %d %q %q", code, out, errOut)
	}
	code, out, _ = q("", "put", "greeting", "hello", "--w", "3", "--content-type", "text/plain")
	ctx1 := strings.TrimSpace(out)
	if code != exitOK || ctx1 == "" {
		t.Fatalf("put: %d %q", code, out)
	}
	for _, a := range addrs {
		code, out, errOut = q("", "get", "greeting", "--r", "one", "--addr", a, "-v")
		if code != exitOK || out != "hello" || !strings.Contains(errOut, "context: "+ctx1) {
			t.Fatalf("get via %s: %d %q %q", a, code, out, errOut)
		}
	}
	// A second blind put: siblings, listed one per line, exit 0.
	code, _, errOut = q("", "put", "greeting", "bon\njour", "--w", "all")
	if code != exitOK || !strings.Contains(errOut, "2 siblings") {
		t.Fatalf("second put: %d %q", code, errOut)
	}
	code, out, _ = q("", "get", "greeting", "--r", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 4 || lines[0] != "2 siblings:" || !strings.HasPrefix(lines[3], "context: ") {
		t.Fatalf("siblings listing: %d\n%s", code, out)
	}
	if !strings.Contains(out, `value="hello"`) || !strings.Contains(out, `value="bon\njour"`) || !strings.Contains(out, "dot=n") {
		t.Fatalf("siblings listing lacks values or dots:\n%s", out)
	}
	sibCtx := strings.TrimPrefix(lines[3], "context: ")
	if code, out, _ := q("", "get", "greeting", "--r", "3", "--context-only"); code != exitOK || out != sibCtx+"\n" {
		t.Fatalf("get --context-only: %d %q, want %q", code, out, sibCtx)
	}
	// Resolve from stdin with the listed context.
	code, _, _ = q("hi there", "put", "greeting", "--file", "-", "--context", sibCtx, "--w", "3", "-q")
	if code != exitOK {
		t.Fatalf("resolving put: %d", code)
	}
	code, out, _ = q("", "get", "greeting", "--json", "--r", "3")
	if code != exitOK || !strings.Contains(out, `"found": true`) || strings.Count(out, `"dot"`) != 1 {
		t.Fatalf("get --json after resolving: %d\n%s", code, out)
	}
	code, out, _ = q("", "get", "greeting", "--local", "--addr", addrs[2])
	if code != exitOK || out != "hi there" {
		t.Fatalf("local get: %d %q", code, out)
	}
	// delete reads the context itself.
	if code, _, errOut = q("", "delete", "greeting", "--w", "3"); code != exitOK {
		t.Fatalf("delete: %d %s", code, errOut)
	}
	if code, _, _ = q("", "get", "greeting"); code != exitNotFound {
		t.Fatalf("get after delete: %d", code)
	}
	if code, _, _ = q("", "delete", "greeting"); code != exitNotFound {
		t.Fatalf("delete of a deleted key: %d", code)
	}

	// Bad input: the node's 400 becomes exit 2 with its message.
	for _, args := range [][]string{
		{"get", "k", "--r", "4", "--n", "3"},
		{"get", "k", "--n", "0"},
		{"get", "k", "--r", "abc"},
		{"put", "k", "v", "--context", "garbage"},
		{"put", strings.Repeat("k", 1025), "v"},
	} {
		code, _, errOut := q("", args...)
		if code != exitBadInput || !strings.Contains(errOut, "400") {
			t.Errorf("%q: exit %d, %s", args[:3], code, errOut)
		}
	}

	code, out, _ = q("", "members")
	if code != exitOK || strings.Count(out, "alive") != 3 || !strings.Contains(out, " *") {
		t.Fatalf("members: %d\n%s", code, out)
	}
	code, out, _ = q("", "ring", "--partitions", "--n", "2")
	if code != exitOK || !strings.Contains(out, "256 partitions") || !strings.Contains(out, "PARTITIONS") {
		t.Fatalf("ring: %d\n%s", code, out)
	}
	code, out, _ = q("", "ring", "--json")
	if code != exitOK || !strings.Contains(out, `"owners"`) {
		t.Fatalf("ring --json: %d", code)
	}
	code, out, _ = q("", "status")
	if code != exitOK || !strings.Contains(out, "3 member(s)") || !strings.Contains(out, "defaults") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	code, out, _ = q("", "status", "--json")
	if code != exitOK || !strings.HasPrefix(out, "{") {
		t.Fatalf("status --json: %d %q", code, out)
	}
	code, out, _ = q("", "transfers", "--addr", addrs[0])
	if code != exitOK || !strings.Contains(out, "no ring change in course") {
		t.Fatalf("transfers: %d\n%s", code, out)
	}
	code, out, _ = q("", "transfers", "--addr", addrs[0], "--json")
	if code != exitOK || !strings.Contains(out, `"node"`) {
		t.Fatalf("transfers --json: %d %q", code, out)
	}
	if code, _, errOut := q("", "transfers", "extra"); code != exitBadInput || !strings.Contains(errOut, "no arguments") {
		t.Fatalf("transfers with an argument: %d %q", code, errOut)
	}

	// ls: every key with the prefix, one per line; odd keys quoted.
	for _, k := range []string{"list/a", "list/b", "list/c\nd", "other"} {
		if code, _, errOut = q("", "put", k, "v"); code != exitOK {
			t.Fatalf("put %q: %d %s", k, code, errOut)
		}
	}
	code, out, _ = q("", "ls", "list/")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	if code != exitOK || !slices.Equal(lines, []string{`"list/c\nd"`, "list/a", "list/b"}) {
		t.Fatalf("ls list/: %d %q", code, out)
	}
	if code, out, _ = q("", "ls", "--max", "2"); code != exitOK || strings.Count(out, "\n") != 2 {
		t.Fatalf("ls --max 2: %d %q", code, out)
	}
	if code, _, _ = q("", "put", "list/a", "v2", "--create"); code != exitExists {
		t.Fatalf("put --create of an existing key: %d", code)
	}
	if code, _, _ = q("", "put", "list/new", "v", "--create", "--r", "3"); code != exitOK {
		t.Fatalf("put --create of a new key: %d", code)
	}
	if code, _, _ = q("", "ls", "a", "b"); code != exitBadInput {
		t.Fatalf("ls with two prefixes: %d", code)
	}
	if code, _, errOut = q("", "ls", "--after", "nonsense"); code != exitBadInput || !strings.Contains(errOut, "cursor") || strings.Contains(errOut, "interrupted") {
		t.Fatalf("ls --after nonsense: %d %q", code, errOut)
	}

	// A node down: r=3 cannot be met (exit 4 with the counts), r=2 can.
	cl.Kill(2)
	cl.Gossip.SetDead(cl.ID(2), true)
	if code, _, _ = q("", "put", "k2", "v", "--addr", addrs[0]); code != exitOK {
		t.Fatalf("put with a node down: %d", code)
	}
	code, _, errOut = q("", "get", "k2", "--r", "3", "--addr", addrs[0])
	if code != exitUnavailable || !strings.Contains(errOut, "of 3 required acks") {
		t.Fatalf("r=3 with a node down: %d %s", code, errOut)
	}
	if code, _, _ = q("", "get", "k2", "--r", "2", "--addr", addrs[0]); code != exitOK {
		t.Fatalf("r=2 with a node down: %d", code)
	}
	// Only the dead node's address: nothing reachable, exit 4.
	code, _, errOut = q("", "get", "k2", "--addr", addrs[2])
	if code != exitUnavailable || !strings.Contains(errOut, "no node reachable") {
		t.Fatalf("unreachable: %d %s", code, errOut)
	}
}

func TestPrintSiblingsAndRing(t *testing.T) {
	var b bytes.Buffer
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	printSiblings(&b, &client.Object{Context: "CTX", Siblings: []client.Sibling{
		{Value: []byte("a\x00b"), ContentType: "text/plain", Timestamp: ts, Dot: "not-a-dot"},
		{Deleted: true, Timestamp: ts},
	}})
	want := "2 siblings:\n" +
		"1\tdot=not-a-dot\ttime=2025-01-02T03:04:05Z\tlive\ttype=text/plain\tvalue=\"a\\x00b\"\n" +
		"2\tdot=-\ttime=2025-01-02T03:04:05Z\tdeleted\ttype=-\tvalue=-\n" +
		"context: CTX\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	r := &client.Ring{Node: "a", Partitions: 4, Tokens: 2, N: 2, Members: []string{"b", "a"}, Owners: []client.Partition{
		{Partition: 0, Primaries: []string{"a", "b"}}, {Partition: 1, Primaries: []string{"a", "b"}},
		{Partition: 2, Primaries: []string{"b", "a"}}, {Partition: 3, Primaries: []string{"a", "b"}},
	}}
	printRing(&b, r, true)
	var norm []string // each line's fields joined by one space
	for _, l := range strings.Split(b.String(), "\n") {
		norm = append(norm, strings.Join(strings.Fields(l), " "))
	}
	for _, w := range []string{"a 3 4 75.0%\nb 1 4 25.0%", "0-1 a,b\n2 b,a\n3 a,b\n"} {
		if !strings.Contains(strings.Join(norm, "\n"), w) {
			t.Errorf("ring output lacks %q:\n%s", w, b.String())
		}
	}
}

// The rolling-upgrade setting reaches the node's config, and the node
// refuses it without a secret, naming it.
func TestAgentAcceptV1Peers(t *testing.T) {
	vals := map[string]string{"node-id": "n1", "data-dir": "/d", "accept-v1-peers": "true"}
	cfg, _, err := agentConfig(vals)
	if err != nil || !cfg.AcceptV1Peers {
		t.Fatalf("config %v, AcceptV1Peers %v", err, cfg.AcceptV1Peers)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "accept-v1-peers needs a cluster secret") {
		t.Fatalf("Validate without a secret: %v", err)
	}
	vals["secret"] = "s3cret"
	if cfg, _, err = agentConfig(vals); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// --memory-limit sets the budget for requests in flight to a quarter of
// the limit, and refuses a value that is not a size or is too small.
func TestAgentMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)
	var cfg node.Config
	err := agentMemory("512MiB", &cfg, false, log)
	if b := cfg.Limits.Budget; err != nil || b.Limit() != 128<<20 {
		t.Fatalf("--memory-limit 512MiB: budget %v, err %v; want 128 MiB", b.Limit(), err)
	}
	// The Go runtime gets the limit less the mapped files' share (20%);
	// the store's memtables and caches are sized from the limit.
	if want := int64(512<<20) - 512<<20*membudget.MappedPercent/100; os.Getenv("GOMEMLIMIT") == "" && debug.SetMemoryLimit(-1) != want {
		t.Fatalf("GOMEMLIMIT %d, want %d", debug.SetMemoryLimit(-1), want)
	}
	if s := cfg.Limits.Store; s.MemTableSize != 16<<20 || s.BlockCacheSize != 16<<20 || cfg.CacheSize != 32<<20 {
		t.Fatalf("store sizes %+v, record cache %d; want 16 MiB memtables and block cache, 32 MiB record cache", s, cfg.CacheSize)
	}
	cfg.CacheSize = 100 << 20 // --cache-size given: kept
	if err := agentMemory("512MiB", &cfg, true, log); err != nil || cfg.CacheSize != 100<<20 {
		t.Fatalf("--cache-size given: record cache %d, err %v; want it kept", cfg.CacheSize, err)
	}
	for _, v := range []string{"lots", "1MiB", "-5"} {
		if err := agentMemory(v, &node.Config{}, false, log); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
			t.Errorf("--memory-limit %q: %v, want an error naming the flag", v, err)
		}
	}
	// off: no budget, default store sizes, GOMEMLIMIT left as it was.
	debug.SetMemoryLimit(math.MaxInt64)
	cfg = node.Config{}
	if err := agentMemory("off", &cfg, false, log); cfg.Limits != (node.Limits{}) || err != nil || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("--memory-limit off: limits %+v, err %v, GOMEMLIMIT %d; want none and GOMEMLIMIT untouched", cfg.Limits, err, debug.SetMemoryLimit(-1))
	}
}
