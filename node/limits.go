package node

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/internal/ratelog"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/store"
)

// Limits bound what clients may cost the node (issue 14; "Resource
// limits" in docs/ARCHITECTURE.md); the zero value is the defaults.
type Limits struct {
	// HTTPConns and RESPConns cap each client port's open connections (0:
	// connlimit.ConnCaps of the descriptor limit); excess ones are closed
	// at accept (RESP: after "-ERR max number of clients reached").
	HTTPConns, RESPConns int
	// ConnsPerSource caps one source's (IPv4 address, IPv6 /64) share of
	// each port; 0: connlimit.DefaultPerSource of the port's cap.
	ConnsPerSource int
	// HTTPTimeouts are the HTTP server's timeouts; zero:
	// connlimit.DefaultHTTPTimeouts.
	HTTPTimeouts connlimit.HTTPTimeouts
	// BodyPace is the minimum rate of an HTTP request body (slower: 408
	// too_slow; zero: connlimit.BodyPace), ReplyPace the one a GET's reply
	// must be read at (slower: cut; zero: connlimit.ReplyPace).
	BodyPace, ReplyPace connlimit.Pace
	// RESPTimeouts bound a RESP connection's reads (idle between
	// commands, pace and time of one); zero: connlimit.DefaultRESPTimeouts.
	RESPTimeouts connlimit.RESPTimeouts
	// MinFreeDisk is the data directory's free space that record and hint
	// writes never use (store.Options.MinFreeBytes): below it the node is
	// read-only (HTTP 507 disk_full, RESP "-ERR disk full", a failed ack to
	// a coordinator) until space is back. 0: the store's default.
	MinFreeDisk int64
	// Budget is the node's memory budget for requests in flight (the
	// agent's --memory-limit; nil: unaccounted); a request that finds no
	// room within its wait gets 503 busy (RESP -BUSY).
	Budget *membudget.Budget
	// Store sizes the store's memtables and block cache (the agent's
	// --memory-limit, membudget.Plan.Store); zero: the store's defaults.
	Store membudget.StoreMemory
}

// validate reports a bad field; zero fields are defaults.
func (l Limits) validate() error {
	if l.MinFreeDisk < 0 {
		return fmt.Errorf("min free disk %d: cannot be negative", l.MinFreeDisk)
	}
	if l.HTTPConns < 0 || l.RESPConns < 0 || l.ConnsPerSource < 0 {
		return fmt.Errorf("connection caps http %d, resp %d, per source %d: cannot be negative", l.HTTPConns, l.RESPConns, l.ConnsPerSource)
	}
	for name, p := range map[string]connlimit.Pace{"body": l.BodyPace, "reply": l.ReplyPace} {
		if p != (connlimit.Pace{}) {
			if err := p.Validate(); err != nil {
				return fmt.Errorf("%s pace: %w", name, err)
			}
		}
	}
	if l.RESPTimeouts != (connlimit.RESPTimeouts{}) {
		if err := l.RESPTimeouts.Validate(); err != nil {
			return fmt.Errorf("resp timeouts: %w", err)
		}
	}
	return nil
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	if l.HTTPConns == 0 || l.RESPConns == 0 {
		h, r := connlimit.DefaultMaxHTTPConns, connlimit.DefaultMaxRESPConns
		if nofile, err := connlimit.FileLimit(); err == nil {
			h, r = connlimit.ConnCaps(nofile)
		}
		if l.HTTPConns == 0 {
			l.HTTPConns = h
		}
		if l.RESPConns == 0 {
			l.RESPConns = r
		}
	}
	if l.HTTPTimeouts == (connlimit.HTTPTimeouts{}) {
		l.HTTPTimeouts = connlimit.DefaultHTTPTimeouts()
	}
	if l.BodyPace == (connlimit.Pace{}) {
		l.BodyPace = connlimit.BodyPace
	}
	if l.RESPTimeouts == (connlimit.RESPTimeouts{}) {
		l.RESPTimeouts = connlimit.DefaultRESPTimeouts()
	}
	return l
}

// capConns wraps a client listener in its connection caps and exports
// their counts. TLS, when set, wraps the result (outside the caps, so a
// refused connection costs no handshake).
func (n *Node) capConns(name string, ln net.Listener, maxConns int, refuse func(net.Conn, connlimit.Reason)) (net.Listener, error) {
	l, err := connlimit.NewListener(ln, connlimit.Config{
		Name: name, MaxConns: maxConns, MaxPerSource: min(n.limits.ConnsPerSource, maxConns),
		Log: n.ratelog, Refuse: refuse,
	})
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("%s connection caps: %w", name, err)
	}
	if n.caps == nil {
		n.caps = make(map[string]*connlimit.Listener)
	}
	n.caps[name] = l
	labels := prometheus.Labels{"port": name}
	gauge := func(metric, help string, f func(connlimit.ListenerStats) int) {
		n.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metric, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(l.Stats())) }))
	}
	counter := func(reason string, f func(connlimit.ListenerStats) uint64) {
		n.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "quorumkv_client_connections_refused_total", Help: "Client connections closed at accept, by port and cap.",
			ConstLabels: prometheus.Labels{"port": name, "reason": reason},
		}, func() float64 { return float64(f(l.Stats())) }))
	}
	gauge("quorumkv_client_connections_open", "Open client connections, by port.", func(s connlimit.ListenerStats) int { return s.Open })
	gauge("quorumkv_client_connections_max", "Cap on open client connections, by port.", func(s connlimit.ListenerStats) int { return s.MaxConns })
	counter("total", func(s connlimit.ListenerStats) uint64 { return s.RefusedTotal })
	counter("per_source", func(s connlimit.ListenerStats) uint64 { return s.RefusedPerSource })
	return l, nil
}

// newRatelog is the node's limiter of log lines hostile input can
// provoke (refused connections), with its held-back count as a metric.
func (n *Node) newRatelog() {
	n.ratelog = ratelog.New(n.log, 10*time.Second)
	n.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "quorumkv_log_lines_suppressed_total", Help: "Rate-limited log lines held back (refused connections, junk input).",
	}, func() float64 { return float64(n.ratelog.Suppressed()) }))
}

// storeStatus is /status's store section: the commit counters, and
// whether the store is read-only (a full disk) and why.
func (n *Node) storeStatus(st store.Stats) map[string]any {
	s := n.st.State()
	m := map[string]any{"batches": st.Batches, "writes": st.Writes, "syncs": st.Syncs, "corrupt": st.Corrupt,
		"read_only": s.ReadOnly, "disk_avail_bytes": s.AvailBytes, "disk_total_bytes": s.TotalBytes, "disk_reserve_bytes": s.ReserveBytes}
	if s.ReadOnly {
		m["read_only_reason"] = s.Reason
	}
	return m
}

// storeStateMetrics exports the store's write state: read-only (a full
// disk or a failed commit) and the free space against the reserve.
func (n *Node) storeStateMetrics() {
	gauge := func(name, help string, f func(s store.State) float64) {
		n.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(n.st.State()) }))
	}
	gauge("quorumkv_store_read_only", "1 while the store refuses writes (disk nearly full, or a failed commit); reads go on.",
		func(s store.State) float64 {
			if s.ReadOnly {
				return 1
			}
			return 0
		})
	gauge("quorumkv_store_disk_avail_bytes", "Space available on the data directory's file system at the last check.",
		func(s store.State) float64 { return float64(s.AvailBytes) })
	gauge("quorumkv_store_disk_reserve_bytes", "Free space the store keeps for its own work; below it writes are refused (--min-free-disk).",
		func(s store.State) float64 { return float64(s.ReserveBytes) })
	if s := n.st.State(); s.ReadOnly {
		n.log.Log(n.ctx, slog.LevelError, "store is read-only at start: serving reads, refusing writes", "reason", s.Reason)
	}
}

// budgetMetrics exports the memory budget's figures (none without one).
func (n *Node) budgetMetrics() {
	b := n.limits.Budget
	if b == nil {
		return
	}
	gauge := func(name, help string, f func(membudget.Stats) float64) {
		n.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(b.Stats()) }))
	}
	counter := func(name, help string, f func(membudget.Stats) uint64) {
		n.metrics.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(b.Stats())) }))
	}
	gauge("quorumkv_memory_budget_bytes", "The budget for requests in flight (--memory-limit).", func(s membudget.Stats) float64 { return float64(s.Limit) })
	gauge("quorumkv_memory_budget_in_use_bytes", "Bytes held by requests in flight.", func(s membudget.Stats) float64 { return float64(s.InUse) })
	gauge("quorumkv_memory_budget_peak_bytes", "Most bytes held by requests in flight at once.", func(s membudget.Stats) float64 { return float64(s.Peak) })
	gauge("quorumkv_memory_budget_waiting", "Requests waiting for room in the budget.", func(s membudget.Stats) float64 { return float64(s.Waiting) })
	counter("quorumkv_memory_budget_refused_total", "Requests refused busy: no room in the budget in time.", func(s membudget.Stats) uint64 { return s.Refused })
	counter("quorumkv_memory_budget_too_large_total", "Requests larger than the whole budget.", func(s membudget.Stats) uint64 { return s.TooLarge })
}
