// Package devcluster runs a local quorumkv cluster as real agent processes
// on 127.0.0.1: the process management behind `quorumkv dev`,
// `quorumkv bench --cluster dev:N` and the e2e tests. It picks free ports
// (or fixed ones from a base port, refused when taken), starts every agent
// with its own data directory and log file, waits until each answers
// /healthz as itself (its node id and the pid of the process started, so a
// port held by another process is not mistaken for the agent) and every
// one sees every other alive, and stops them (SIGTERM, then SIGKILL after a
// timeout). For experiments and tests it kills (SIGKILL), terminates
// (SIGTERM, with the exit status), restarts (same ports, same data), pauses
// (SIGSTOP) and resumes (SIGCONT) single agents, starts agents one at a
// time in an order of the caller's (Prepare, StartAgent), and passes extra
// agent flags (such as --inject-delay) and environment to them.
//
// It does not build the binary, print addresses or handle signals: the
// caller owns the terminal. It does not remove its directory either (see
// MakeDir). Agents are started in their own process group, so a terminal's
// Ctrl-C reaches only the caller, and on Linux they get SIGTERM if the
// caller dies without stopping them.
//
// Concurrency: Start and Stop are for the owning goroutine. Kill, Restart,
// Pause, Resume, Agents and HTTPAddrs are safe to call from any goroutine,
// also while another of them runs, but not for the same agent at once.
// Stop cancels waits in progress.
//
//	c, err := devcluster.New(cfg) // cfg.Exe, cfg.Dir, cfg.Nodes = 3
//	defer c.Stop(context.Background())
//	if err := c.Start(ctx); err != nil { ... }
//	addrs := c.HTTPAddrs()
//	err = c.Kill(1) // later: c.Restart(1)
package devcluster
