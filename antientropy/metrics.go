package antientropy

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/internal/metric"
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
		exchanges: metric.CounterVec("quorumkv_ae_exchanges_total", "Anti-entropy exchanges this node started, by result (ok, failed).", "result"),
		compared:  metric.Counter("quorumkv_ae_keys_compared_total", "Keys whose digests were compared, both sides, in the leaves that differed."),
		differing: metric.Counter("quorumkv_ae_keys_differing_total", "Keys found to differ between this node and a peer."),
		repaired:  metric.CounterVec("quorumkv_ae_keys_repaired_total", "Keys written by anti-entropy, by where (local, remote).", "where"),
		bytes:     metric.CounterVec("quorumkv_ae_bytes_total", "Anti-entropy RPC body bytes of the exchanges, reaping and handoff this node started, by direction (sent, received).", "direction"),
		reaped:    metric.Counter("quorumkv_ae_tombstones_reaped_total", "Tombstones deleted from the store after every primary held them for the grace period."),
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
	return m, metric.Register(reg, "anti-entropy", m.exchanges, m.compared, m.differing, m.repaired, m.bytes, m.reaped, m.duration)
}
