package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram and report limits.
const (
	// HistogramMax is the largest latency a histogram resolves; slower
	// operations are recorded as HistogramMax and counted as clamped.
	HistogramMax = time.Minute
	// histSigFigs gives 0.1% value resolution: about 140 KiB per histogram.
	histSigFigs = 3
	// MaxCDFPoints caps the points kept per latency CDF in a Result.
	MaxCDFPoints = 512
	// MaxErrorKinds caps the distinct ErrorKind labels a run keeps; further
	// labels are counted as "other", so a classifier that returns raw error
	// strings cannot grow memory without bound.
	MaxErrorKinds = 32
)

// latency is an HdrHistogram of microseconds, 1 µs to HistogramMax.
type latency struct {
	h       *hdrhistogram.Histogram
	clamped int64
}

func newLatency() *latency {
	return &latency{h: hdrhistogram.New(1, HistogramMax.Microseconds(), histSigFigs)}
}

// record adds one latency. Negative values (a clock step cannot produce
// them with monotonic time, but a caller's synthetic times can) count as 0.
func (l *latency) record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	if us > HistogramMax.Microseconds() {
		us = HistogramMax.Microseconds()
		l.clamped++
	}
	// Cannot fail: us is within [0, HistogramMax] by construction.
	_ = l.h.RecordValue(us)
}

// LatencySummary describes one latency histogram.
type LatencySummary struct {
	Count   int64         `json:"count"`
	Mean    time.Duration `json:"mean_ns"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	P999    time.Duration `json:"p999_ns"`
	Max     time.Duration `json:"max_ns"`
	Clamped int64         `json:"clamped,omitempty"` // recorded as HistogramMax
	// CDF is the cumulative distribution, ascending, at most MaxCDFPoints:
	// Fraction of operations took at most Latency.
	CDF []CDFPoint `json:"cdf,omitempty"`
}

// CDFPoint is one point of a latency CDF.
type CDFPoint struct {
	Latency  time.Duration `json:"latency_ns"`
	Fraction float64       `json:"fraction"`
}

func micros(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

func (l *latency) summary() LatencySummary {
	h := l.h
	s := LatencySummary{Count: h.TotalCount(), Clamped: l.clamped}
	if s.Count == 0 {
		return s
	}
	s.Mean = time.Duration(h.Mean() * float64(time.Microsecond))
	s.P50 = micros(h.ValueAtQuantile(50))
	s.P90 = micros(h.ValueAtQuantile(90))
	s.P99 = micros(h.ValueAtQuantile(99))
	s.P999 = micros(h.ValueAtQuantile(99.9))
	s.Max = micros(h.Max())
	s.CDF = cdf(h)
	return s
}

// cdf samples the histogram's cumulative distribution: a point whenever
// the fraction rose by 1/256 or the latency by 25% since the last point,
// plus the last bucket, which keeps both the body and the tail visible on
// a log axis within MaxCDFPoints.
func cdf(h *hdrhistogram.Histogram) []CDFPoint {
	total := float64(h.TotalCount())
	var pts []CDFPoint
	var cum int64
	lastF, lastV := 0.0, int64(0)
	bars := h.Distribution()
	for i, b := range bars {
		if b.Count == 0 && i != len(bars)-1 {
			continue
		}
		cum += b.Count
		f := float64(cum) / total
		v := b.To
		if i == len(bars)-1 || f-lastF >= 1.0/256 || float64(v) >= 1.25*float64(lastV) {
			if len(pts) < MaxCDFPoints {
				pts = append(pts, CDFPoint{Latency: micros(v), Fraction: f})
			}
			lastF, lastV = f, v
		}
	}
	if n := len(pts); n > 0 {
		pts[n-1].Fraction = 1 // float rounding must not leave the curve short of 1
	}
	return pts
}
