package hintedhandoff

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/internal/metric"
)

// registerMetrics creates the hint metrics and registers them with reg
// (nil: nowhere).
func (d *Driver) registerMetrics(reg prometheus.Registerer) error {
	d.mStored = metric.Counter("quorumkv_hints_stored_total", "Hint writes (new or merged) stored by this node for down primaries.")
	d.mDelivered = metric.Counter("quorumkv_hints_delivered_total", "Hints acknowledged by their target (then deleted unless rewritten meanwhile).")
	d.mFailed = metric.Counter("quorumkv_hints_failed_total", "Hint delivery attempts that failed (the hint is kept and retried).")
	d.mDropped = metric.CounterVec("quorumkv_hints_dropped_total", "Hints refused or deleted by the per-target caps (bytes, age) or found corrupt; their partitions are marked for anti-entropy.", "reason")
	for _, r := range DropReasons {
		d.mDropped.WithLabelValues(r.String()) // export zeros
	}
	rateGauge := metric.GaugeFunc("quorumkv_hints_delivery_rate", "Current cap on hints delivered per second by this node (adaptive between the configured floor and cap; 0: no cap).", d.rate)
	return metric.Register(reg, "hint", d.mStored, d.mDelivered, d.mFailed, d.mDropped, collector{d}, rateGauge)
}

// collector exports the hints held per target at scrape time, from the
// store's in-memory index.
type collector struct{ d *Driver }

var (
	descHintsPending = prometheus.NewDesc("quorumkv_hints_pending",
		"Hints this node holds for a target, not yet delivered.", []string{"target"}, nil)
	descHintsPendingBytes = prometheus.NewDesc("quorumkv_hints_pending_bytes",
		"Bytes of the hints this node holds for a target (keys and headers included).", []string{"target"}, nil)
	descHintsOldest = prometheus.NewDesc("quorumkv_hints_oldest_age_seconds",
		"Age of the oldest hint this node holds for a target.", []string{"target"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHintsPending
	ch <- descHintsPendingBytes
	ch <- descHintsOldest
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.st
	now := c.d.now()
	for _, t := range st.HintTargets() {
		s := st.HintStats(t)
		ch <- prometheus.MustNewConstMetric(descHintsPending, prometheus.GaugeValue, float64(s.Count), t)
		ch <- prometheus.MustNewConstMetric(descHintsPendingBytes, prometheus.GaugeValue, float64(s.Bytes), t)
		age := 0.0
		if !s.Oldest.IsZero() {
			age = max(0, now.Sub(s.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descHintsOldest, prometheus.GaugeValue, age, t)
	}
}
