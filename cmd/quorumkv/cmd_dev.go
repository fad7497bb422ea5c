package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcluster"
	"github.com/quorumkv/quorumkv/internal/syncio"
)

// devLogTail is how many log lines dev shows for an agent that died.
const devLogTail = 20

// devAgentArgs quiet idle dev agents: --profile local compares every
// partition with a peer every 5s and runs hint rounds every 250ms, about
// 1.7% of a core per idle agent; with these, about 0.6%
// (docs/BENCHMARKS.md). A restarted node still catches up at once: hint
// delivery starts when gossip sees it back, and an empty store marks every
// partition for an immediate exchange.
var devAgentArgs = []string{"--ae-interval", "1m", "--hint-interval", "1s"}

func runDev(e *env, args []string) int {
	fs := newFlagSet(e, "dev", "[--nodes 3] [--dir DIR] [flags]", `
Starts a local cluster of agent processes of this binary on 127.0.0.1, each
joining the first one's gossip address, waits until every node sees every
other alive, prints their addresses and example commands, then waits.
Ctrl-C (or SIGTERM) stops every agent: SIGTERM, then SIGKILL after 15s.

If an agent dies on its own (or kill -9 from another terminal), dev prints
its last log lines and keeps the others serving; it exits 1 only when no
agent is left running. While it runs, dev reads commands on its standard
input (a terminal in the foreground, or a pipe): kill NODE, restart NODE,
pause NODE, resume NODE, nodes, help. restart starts a dead node again on
its ports and data directory.

Data and logs go under --dir (default: a new temporary directory, removed on
exit unless --keep). Agents run with --profile local (failures detected in
about a second), --ae-interval 1m and --hint-interval 1s (idle agents stay
under 1% of a core).

--secure starts the cluster as a production one runs: HTTPS and RESP over
TLS (a CA and certificate made for this run by tls init, in DIR/tls), an
admin token required on every call (DIR/tokens holds its hash), and the
cluster secret (dev always sets one). It prints the exports to use them.`)
	nodes := fs.Int("nodes", 3, "number of agents")
	dir := fs.String("dir", "", "directory for data and logs (kept on exit; default: a temporary one)")
	keep := fs.Bool("keep", false, "keep the temporary directory on exit")
	secret := fs.String("secret", "", "cluster secret (default: random for this run)")
	base := fs.Int("base-port", 0, "fixed ports: node i (0-based) uses HTTP base+i, RPC base+100+i, gossip base+200+i, RESP base+300+i (default: free ports)")
	resp := fs.Bool("resp", true, "give every agent a RESP (Redis protocol) listener (--resp=false: none)")
	secure := fs.Bool("secure", false, "TLS on HTTP and RESP, and an admin token required (printed); see above")
	if code, ok := parseFlagsOnly(e, fs, args); !ok {
		return code
	}
	if *nodes < 1 || *nodes > devcluster.MaxNodes {
		return fail(e, exitBadInput, "--nodes %d: want 1 to %d", *nodes, devcluster.MaxNodes)
	}
	if *base != 0 && (*base < 1024 || *base+300+*nodes > 65535) {
		return fail(e, exitBadInput, "--base-port %d: want 1024 to %d", *base, 65535-300-*nodes)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(e, exitInternal, "find this binary: %v", err)
	}
	path, temp, err := devcluster.MakeDir(*dir)
	if err != nil {
		if *dir == "" {
			return fail(e, exitInternal, "temporary directory: %v", err)
		}
		return fail(e, exitBadInput, "--dir: %v", err)
	}
	cfg := devcluster.DefaultConfig()
	cfg.Exe, cfg.Nodes, cfg.Dir, cfg.Secret, cfg.BasePort, cfg.RESP = exe, *nodes, path, *secret, *base, *resp
	cfg.AgentArgs = append(cfg.AgentArgs, devAgentArgs...)
	cfg.Env = append(cfg.Env, devcluster.CPUShareEnv(*nodes, os.Environ())...)
	if *secure {
		if err := devSecure(&cfg); err != nil {
			return fail(e, exitInternal, "dev --secure: %v", err)
		}
	}
	// A cluster of fewer than three agents serves requests that give no n
	// with n = its size: the nodes fit N to a ring smaller than the
	// default, and say durability is reduced.
	// The console, the exit watcher and the cluster all write to stderr.
	de := *e
	de.stderr = syncio.NewWriter(e.stderr)
	cfg.Log, cfg.Prefix, cfg.LogTail = de.stderr, "quorumkv dev: ", devLogTail
	code := runDevCluster(&de, cfg)
	if *secure && temp && !*keep {
		fmt.Fprintln(e.stderr, "quorumkv dev: the token and certificates of this run are removed with its directory")
	}
	if temp && !*keep {
		if err := os.RemoveAll(path); err != nil {
			fmt.Fprintf(e.stderr, "quorumkv dev: remove %s: %v\n", path, err)
		}
	} else {
		fmt.Fprintf(e.stderr, "quorumkv dev: data and logs kept in %s\n", path)
	}
	return code
}

// devSignals turns the first SIGINT or SIGTERM into a cancelled context and
// the signal on first, and the second into a cancelled hard context (stop
// without waiting: SIGKILL every agent).
type devSignals struct {
	ctx, hard context.Context
	first     chan os.Signal
	done      chan struct{}
}

func watchSignals(e *env, what string) *devSignals {
	ctx, cancel := context.WithCancel(e.ctx)
	hard, hardCancel := context.WithCancel(context.Background())
	s := &devSignals{ctx: ctx, hard: hard, first: make(chan os.Signal, 1), done: make(chan struct{})}
	go func() {
		defer hardCancel()
		select {
		case sig := <-e.sigs:
			s.first <- sig
			cancel()
		case <-s.done:
			cancel()
			return
		}
		select {
		case <-e.sigs:
			fmt.Fprintf(e.stderr, "%s: second signal, killing every node\n", what)
		case <-s.done:
		}
	}()
	return s
}

// close stops the signal watcher.
func (s *devSignals) close() { close(s.done) }

func runDevCluster(e *env, cfg devcluster.Config) int {
	sigs := watchSignals(e, "quorumkv dev")
	defer sigs.close()
	c, err := devcluster.New(cfg)
	if err != nil {
		return fail(e, exitBadInput, "dev: %v", err)
	}
	defer func() {
		if n := c.Stop(sigs.hard); n > 0 {
			fmt.Fprintf(e.stderr, "quorumkv dev: %d node(s) stopped\n", n)
		}
	}()
	start := time.Now()
	if err := c.Start(sigs.ctx); err != nil {
		if sigs.ctx.Err() != nil {
			fmt.Fprintln(e.stderr, "quorumkv dev: interrupted, stopping")
			return exitOK
		}
		if errors.Is(err, devcluster.ErrPortInUse) {
			return fail(e, exitBadInput, "dev: %v; stop what holds it or choose another --base-port", err)
		}
		return fail(e, exitInternal, "dev: %v", err)
	}
	printReady(e, c, cfg, time.Since(start))
	// The console goroutine ends at EOF; a read of a terminal cannot be
	// interrupted, so otherwise it ends with the process, which exits right
	// after this returns. A command it runs after Stop is refused by the
	// cluster (ErrStopped), and a Restart racing Stop kills what it started.
	if e.stdin != nil {
		if f, ok := e.stdin.(*os.File); !ok || consoleReadable(f) {
			go devConsole(e.stdin, e.stderr, c)
		}
	}
	// Wait for a signal (exit 0) or for every agent to have died (exit 1).
	for {
		select {
		case sig := <-sigs.first:
			fmt.Fprintf(e.stderr, "quorumkv dev: %s: stopping %d node(s)\n", sig, len(c.Agents()))
			return exitOK
		case <-sigs.ctx.Done():
			// The first signal cancels ctx right after sending on first;
			// report it if that is why. Otherwise e.ctx ended (tests).
			select {
			case sig := <-sigs.first:
				fmt.Fprintf(e.stderr, "quorumkv dev: %s: stopping %d node(s)\n", sig, len(c.Agents()))
			default:
			}
			return exitOK
		case x := <-c.Exits():
			fmt.Fprintf(e.stderr, "quorumkv dev: %s (pid %d) exited unexpectedly: %v\n", x.Agent.ID, x.Agent.PID, x.Err)
			if t, err := c.Tail(x.Agent.Index, devLogTail); err != nil {
				fmt.Fprintf(e.stderr, "quorumkv dev: read %s: %v\n", x.Agent.LogPath, err)
			} else {
				fmt.Fprintf(e.stderr, "--- last %d line(s) of %s:\n%s\n---\n", strings.Count(t, "\n")+1, x.Agent.LogPath, t)
			}
			running := 0
			for _, a := range c.Agents() {
				if a.Running {
					running++
				}
			}
			if running == 0 {
				fmt.Fprintln(e.stderr, "quorumkv dev: no node is left running; exiting")
				return exitInternal
			}
			fmt.Fprintf(e.stderr, "quorumkv dev: %d other node(s) keep serving; type \"restart %s\" here to start %s again on its ports and data\n", running, x.Agent.ID, x.Agent.ID)
		}
	}
}

// cliName is how to invoke this binary in the printed examples.
func cliName(exe string) string {
	if strings.Contains(exe, "go-build") {
		return "go run ./cmd/quorumkv"
	}
	return "quorumkv"
}

func printReady(e *env, c *devcluster.Cluster, cfg devcluster.Config, took time.Duration) {
	w := e.stdout
	agents := c.Agents()
	fmt.Fprintf(w, "quorumkv dev: %d node(s) up and joined in %s\n\n", len(agents), took.Round(10*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tHTTP\tRPC\tGOSSIP\tRESP\t")
	var addrs []string
	for _, a := range agents {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", a.ID, a.PID, a.HTTP, a.RPC, a.Gossip, orDash(a.RESP))
		if cfg.CAFile != "" {
			addrs = append(addrs, c.Scheme()+"://"+a.HTTP)
		} else {
			addrs = append(addrs, a.HTTP) // as dev has always printed them
		}
	}
	tw.Flush()
	exe, _ := os.Executable()
	q := cliName(exe)
	first := c.Scheme() + "://" + agents[0].HTTP
	sec := devSecureHelp(cfg)
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nData and logs: %s", c.Dir())
	fmt.Fprintf(&b, "  (logs: %s)\n", filepath.Join(c.Dir(), "n*.log"))
	b.WriteString(sec.intro)
	fmt.Fprintf(&b, "\nTry, in another terminal:\n")
	fmt.Fprintf(&b, "  export QUORUMKV_ADDR=%s\n", strings.Join(addrs, ","))
	b.WriteString(sec.exports)
	fmt.Fprintf(&b, "  %s put greeting hello --w %d\n", q, min(3, len(agents)))
	fmt.Fprintf(&b, "  %s get greeting --r 1\n", q)
	fmt.Fprintf(&b, "  %s members\n", q)
	fmt.Fprintf(&b, "  curl -i %s%s/kv/greeting\n", sec.curl, first)
	fmt.Fprintf(&b, "  curl -s %s'%s/cluster/members'\n", sec.curl, first)
	if r := agents[0].RESP; r != "" {
		host, port, _ := net.SplitHostPort(r)
		fmt.Fprintf(&b, "  redis-cli %s-h %s -p %s set greeting hello   # the Redis protocol, on any node\n", sec.redis, host, port)
	}
	fmt.Fprintf(&b, "\nCtrl-C stops every node.\n")
	fmt.Fprintf(&b, "Type help here for commands that kill, restart, pause or resume a node.\n")
	w.Write(b.Bytes())
}
