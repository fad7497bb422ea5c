package devcluster

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// MaxNodes caps Config.Nodes.
const MaxNodes = 32

// Errors. Start and the fault methods wrap them with the agent and the
// cause; match with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate.
	ErrInvalidConfig = errors.New("invalid dev cluster config")
	// ErrExited means an agent process exited while the cluster waited
	// for it (during Start or Restart).
	ErrExited = errors.New("agent exited")
	// ErrTimeout means an agent did not become healthy, or the agents did
	// not see each other alive, within the configured time.
	ErrTimeout = errors.New("timed out")
	// ErrState means a fault method does not apply to the agent now
	// (restarting a running agent, pausing a killed one) or the index is
	// out of range.
	ErrState = errors.New("agent not in a state for this")
	// ErrStopped is returned by every method once Stop was called.
	ErrStopped = errors.New("cluster stopped")
	// ErrPortInUse means a fixed port (BasePort) is already taken, or an
	// agent's address answered as another process.
	ErrPortInUse = errors.New("port already in use")
)

// Config describes a local cluster. Start from DefaultConfig; Validate
// checks it without changing it.
type Config struct {
	// Exe is the quorumkv binary every agent runs (`Exe agent ...`).
	// Required.
	Exe string
	// Nodes is the number of agents, in [1, MaxNodes]. Default 3. Agent i
	// (0-based) has id "n<i+1>".
	Nodes int
	// Dir holds each agent's data directory (Dir/n1) and log (Dir/n1.log).
	// Required; see MakeDir.
	Dir string
	// Secret is the cluster secret, passed to agents in QUORUMKV_SECRET
	// (not argv, which ps shows). Empty means a random one chosen by New.
	Secret string
	// BasePort, when not zero, fixes the ports: agent i uses HTTP
	// BasePort+i, RPC +100+i, gossip +200+i, RESP +300+i. Zero means free
	// ports found by binding port 0, retried on new ports when an agent
	// exits during start (a port taken meanwhile). Default 0.
	BasePort int
	// RESP gives every agent a RESP (Redis protocol) listener. Default false.
	RESP bool
	// AgentArgs are extra flags appended to every agent's command line,
	// e.g. {"--inject-delay", "exp:2ms"}. Default none.
	AgentArgs []string
	// Env are extra environment entries ("NAME=value") for every agent,
	// after the caller's own environment without its QUORUMKV_ variables
	// (so a developer's settings cannot change the agents). Default none.
	Env []string
	// AgentEnv, when set, gives extra environment entries for agent i (its
	// 0-based index), after Env: for a test that gives one agent another
	// secret, say. Default nil.
	AgentEnv func(i int) []string
	// StartTimeout bounds one agent's start: process start to /healthz.
	// Default 30s; zero is invalid.
	StartTimeout time.Duration
	// JoinTimeout bounds the wait until every running agent sees every
	// running agent alive, after Start and after Restart. Default 30s;
	// zero is invalid.
	JoinTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL (a
	// node drains for up to 10s). Default 15s; zero is invalid.
	StopTimeout time.Duration
	// StartTries is how many times an agent that exits during start is
	// started again on new ports (once with BasePort). Default 3; at
	// least 1.
	StartTries int
	// Log receives notes for the person at the terminal (retries, kills
	// after the stop timeout, the last log lines of an agent that died),
	// each line prefixed with Prefix. Nil discards them.
	Log io.Writer
	// Prefix starts every line written to Log and the marker line written
	// to each agent's log at its start, e.g. "quorumkv dev: ". Default "".
	Prefix string
	// LogTail is how many lines of a dead agent's log Start prints to Log.
	// Default 20; zero prints none.
	LogTail int
	// CAFile, when set, makes the cluster reach the agents by https,
	// trusting this PEM CA file: for agents given --tls-cert in AgentArgs
	// (secure.go). Default "": plain HTTP.
	CAFile string
	// Token, when set, is sent as a bearer token with the cluster's own
	// requests (/cluster/members needs a read token): for agents given
	// --tokens in AgentArgs. Default "".
	Token string
}

// DefaultConfig returns a 3-node cluster with free ports and the timings
// `quorumkv dev` has always used. Exe and Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Nodes:        3,
		StartTimeout: 30 * time.Second,
		JoinTimeout:  30 * time.Second,
		StopTimeout:  15 * time.Second,
		StartTries:   3,
		LogTail:      20,
	}
}

// Validate checks c; it does not change it.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, ErrInvalidConfig)...)
	}
	switch {
	case c.Exe == "":
		return bad("no agent binary (Exe)")
	case c.Dir == "":
		return bad("no directory (Dir)")
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return bad("nodes %d: want 1 to %d", c.Nodes, MaxNodes)
	case c.BasePort != 0 && (c.BasePort < 1024 || c.BasePort+300+c.Nodes > 65535):
		return bad("base port %d: want 1024 to %d", c.BasePort, 65535-300-c.Nodes)
	case c.StartTimeout <= 0 || c.JoinTimeout <= 0 || c.StopTimeout <= 0:
		return bad("start, join and stop timeouts must be positive")
	case c.StartTries < 1:
		return bad("start tries %d: want at least 1", c.StartTries)
	case c.LogTail < 0:
		return bad("log tail %d: cannot be negative", c.LogTail)
	}
	return nil
}

// CPUShareEnv returns the environment that gives each agent of a cluster of
// nodes its share of this machine's cores, GOMAXPROCS=max(1, cores/nodes),
// or nothing when environ already sets GOMAXPROCS (the user's choice
// stands). Agents that together schedule on more threads than the machine
// has cores pay for each goroutine hand-off with a thread wake-up that
// competes with the other agents' threads; on one thread it is a switch.
// On a 2-core machine, three agents at one each used 15% less CPU per
// SET and 21% less per GET than at two each (bench/peers.sh, one binary),
// and answered one client's SET in 0.30 instead of 0.35 ms
// (docs/BENCHMARKS.md, issue 16).
func CPUShareEnv(nodes int, environ []string) []string {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return nil
		}
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(cpuShare(runtime.NumCPU(), nodes))}
}

// cpuShare is cores divided among nodes, at least one each.
func cpuShare(cores, nodes int) int { return max(1, cores/max(1, nodes)) }
