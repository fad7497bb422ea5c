package ringchange

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/api"
)

// metrics are the transfers' counters, and a collector that lists each
// moving partition from the transfers' status at scrape time (so no series
// outlives its partition).
type metrics struct {
	bytes, keys prometheus.Counter
	status      func() api.Transfers // set by Register
}

func newMetrics() *metrics {
	return &metrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "quorumkv_transfer_bytes_total",
			Help: "RPC bytes (both ways) moved by this node's ring-change transfers as a pending owner."}),
		keys: prometheus.NewCounter(prometheus.CounterOpts{Name: "quorumkv_transfer_keys_total",
			Help: "Differing keys repaired by this node's ring-change transfers as a pending owner."}),
	}
}

func (m *metrics) add(keys, bytes int) {
	m.keys.Add(float64(keys))
	m.bytes.Add(float64(bytes))
}

var (
	descPartitions = prometheus.NewDesc("quorumkv_transfer_partitions", "Partitions this node gains in the ring change in course, by state (gained, received, moving).", []string{"state"}, nil)
	descLeft       = prometheus.NewDesc("quorumkv_transfer_bytes_left", "Estimated bytes this node's transfers still have to move (0 when unknown).", nil, nil)
	descRate       = prometheus.NewDesc("quorumkv_transfer_rate_bytes", "Recent rate of this node's transfers, bytes per second.", nil, nil)
	descETA        = prometheus.NewDesc("quorumkv_transfer_eta_seconds", "Estimated time left of this node's transfers (absent when unknown).", nil, nil)
	descThrottle   = prometheus.NewDesc("quorumkv_transfer_throttle_bytes", "Transfer rate cap in force now, bytes per second (adaptive; 0: no cap).", nil, nil)
	descPart       = prometheus.NewDesc("quorumkv_transfer_partition_bytes", "Per moving partition: bytes done and estimated left.", []string{"partition", "from", "to", "kind"}, nil)
	descPartRate   = prometheus.NewDesc("quorumkv_transfer_partition_rate_bytes", "Per moving partition: recent rate, bytes per second.", []string{"partition", "from", "to"}, nil)
	descPartETA    = prometheus.NewDesc("quorumkv_transfer_partition_eta_seconds", "Per moving partition: estimated time left.", []string{"partition", "from", "to"}, nil)
)

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.bytes.Describe(ch)
	m.keys.Describe(ch)
	for _, d := range []*prometheus.Desc{descPartitions, descLeft, descRate, descETA, descThrottle, descPart, descPartRate, descPartETA} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.bytes.Collect(ch)
	m.keys.Collect(ch)
	if m.status == nil {
		return
	}
	s := m.status()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(descPartitions, float64(s.Gains), "gained")
	g(descPartitions, float64(s.Received), "received")
	g(descPartitions, float64(len(s.Moving)), "moving")
	g(descLeft, float64(s.BytesLeft))
	g(descRate, s.Rate)
	g(descThrottle, s.Throttle.BytesPerSecond)
	if s.ETASeconds != nil {
		g(descETA, *s.ETASeconds)
	}
	for _, mv := range s.Moving {
		p := strconv.FormatUint(uint64(mv.Partition), 10)
		g(descPart, float64(mv.BytesDone), p, mv.From, mv.To, "done")
		g(descPart, float64(mv.BytesLeft), p, mv.From, mv.To, "left")
		g(descPartRate, mv.Rate, p, mv.From, mv.To)
		if mv.ETASeconds != nil {
			g(descPartETA, *mv.ETASeconds, p, mv.From, mv.To)
		}
	}
}

// Register registers the transfers' metrics with reg; a scrape reads the
// status through h.
func (c *Change) Register(reg prometheus.Registerer, h Host) error {
	c.metrics.status = func() api.Transfers { return c.Transfers(h) }
	return reg.Register(c.metrics)
}
