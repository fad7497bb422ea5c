package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumkv/quorumkv/internal/metric"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
)

// metrics are one node's Prometheus metrics, in a registry of its own so
// that several nodes can run in one process (tests).
type metrics struct {
	reg                       *prometheus.Registry
	requests                  *prometheus.CounterVec
	latency                   *prometheus.HistogramVec
	quorumFailures            *prometheus.CounterVec
	siblingsPerRead           prometheus.Histogram
	readRepairs               *prometheus.CounterVec
	acksPrimary, acksFallback prometheus.Counter // write acks by kind, resolved once: no label lookup per write
	// firsthour (issue 19): writes that left siblings, writes over the
	// sibling warning threshold, requests run with N fitted to a small ring.
	siblingWrites, siblingWarnings, siblingsTrimmed, reducedN prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		requests: metric.CounterVec("quorumkv_requests_total", "Client requests by operation and HTTP status.", "op", "code"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quorumkv_request_duration_seconds",
			Help:    "Client request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100µs .. 13s
		}, []string{"op"}),
		quorumFailures: metric.CounterVec("quorumkv_quorum_failures_total", "Requests that failed their quorum.", "op"),
		siblingsPerRead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quorumkv_siblings_per_read", Help: "Live siblings returned per read.",
			Buckets: []float64{0, 1, 2, 3, 4, 6, 8, 16, 32},
		}),
		readRepairs:     metric.CounterVec("quorumkv_read_repairs_total", "Read repairs sent, by result.", "result"),
		siblingWrites:   metric.Counter("quorumkv_sibling_writes_total", "Client writes that left their key with two siblings or more."),
		siblingWarnings: metric.Counter("quorumkv_sibling_warnings_total", "Client writes that left their key at or over the sibling warning threshold."),
		siblingsTrimmed: metric.Counter("quorumkv_siblings_trimmed_total", "Siblings replica merges dropped to fit the merge cap (acknowledged writes of replicas that diverged past the sibling caps)."),
		reducedN:        metric.Counter("quorumkv_reduced_n_requests_total", "Requests that gave no n and ran with the ring's size, smaller than the default N."),
	}
	writeAcks := metric.CounterVec("quorumkv_write_acks_total", "Acknowledgements counted by successful writes, by kind of replica.", "kind")
	m.acksPrimary, m.acksFallback = writeAcks.WithLabelValues("primary"), writeAcks.WithLabelValues("fallback")
	m.reg.MustRegister(m.siblingWrites, m.siblingWarnings, m.siblingsTrimmed, m.reducedN)
	m.reg.MustRegister(m.requests, m.latency, m.quorumFailures, m.siblingsPerRead, m.readRepairs, writeAcks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(metric.GaugeFunc("quorumkv_ring_members", "Members on the ring (alive or not).", func() float64 {
		if r := n.Ring(); r != nil {
			return float64(r.Len())
		}
		return 0
	}))
	m.reg.MustRegister(metric.GaugeFunc("quorumkv_peers_alive", "Peers gossip sees alive or suspect, this node included.",
		func() float64 { return float64(n.liveOthers() + 1) }))
	return m
}

func (m *metrics) observeWriteResult(res *quorum.WriteResult) {
	m.acksPrimary.Add(float64(res.Acks.Primary))
	m.acksFallback.Add(float64(res.Acks.Fallback))
}

func (m *metrics) onReadRepair(_ ring.Target, err error) {
	if err != nil {
		m.readRepairs.WithLabelValues("failed").Inc()
		return
	}
	m.readRepairs.WithLabelValues("sent").Inc()
}
