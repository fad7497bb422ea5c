package antientropy

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// aeCounters are totals since start, for /status (the metrics hold the
// same).
type aeCounters struct {
	exchanges, failed, compared, differing, repairedLocal, repairedRemote atomic.Uint64
	bytesSent, bytesReceived, confirmed, reaped                           atomic.Uint64
}

type aeMetrics struct {
	exchanges *prometheus.CounterVec
	compared  prometheus.Counter
	differing prometheus.Counter
	repaired  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	reaped    prometheus.Counter
	duration  prometheus.Histogram
}

// newAEMetrics creates the anti-entropy metrics and registers them with reg
// (nil: nowhere).
func newAEMetrics(reg prometheus.Registerer) (aeMetrics, error) {
	m := aeMetrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_exchanges_total", Help: "Anti-entropy exchanges this node started, by result (ok, failed).",
		}, []string{"result"}),
		compared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_compared_total", Help: "Keys whose digests were compared, both sides, in the leaves that differed.",
		}),
		differing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_differing_total", Help: "Keys found to differ between this node and a peer.",
		}),
		repaired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_repaired_total", Help: "Keys written by anti-entropy, by where (local, remote).",
		}, []string{"where"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_bytes_total", Help: "Anti-entropy RPC body bytes of the exchanges, reaping and handoff this node started, by direction (sent, received).",
		}, []string{"direction"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_tombstones_reaped_total", Help: "Tombstones deleted from the store after every primary held them for the grace period.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quorumkv_ae_exchange_duration_seconds", Help: "Duration of anti-entropy exchanges, repair included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}),
	}
	for _, r := range []string{"ok", "failed"} {
		m.exchanges.WithLabelValues(r)
	}
	for _, w := range []string{"local", "remote"} {
		m.repaired.WithLabelValues(w)
	}
	for _, d := range []string{"sent", "received"} {
		m.bytes.WithLabelValues(d)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.exchanges, m.compared, m.differing, m.repaired, m.bytes, m.reaped, m.duration} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("register anti-entropy metrics: %w", err)
		}
	}
	return m, nil
}
