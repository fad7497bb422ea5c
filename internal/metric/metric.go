// Package metric declares the Prometheus metrics of quorumkv's parts, one
// call per metric, and registers a part's set with an error that names the
// part, so that anti-entropy, hinted handoff and the node declare theirs the
// same way.
package metric

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter is a counter named name, described by help.
func Counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// CounterVec is a counter named name, described by help, partitioned by
// labels.
func CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// GaugeFunc is a gauge named name, described by help, whose value f gives
// at scrape time.
func GaugeFunc(name, help string, f func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}

// Register registers cs with reg; a nil reg registers nowhere. The error
// names what (the part whose metrics these are) and the collector refused.
func Register(reg prometheus.Registerer, what string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", what, err)
		}
	}
	return nil
}
