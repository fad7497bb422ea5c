// Package percentile gives the percentiles of latency samples that tests
// and benchmarks collect (the bench tool itself uses HdrHistogram): one
// definition of "p99" for every test that prints or bounds one.
package percentile

import (
	"slices"
	"time"
)

// Of is the p-th percentile (0 to 100) of ds: the sample at index
// len(ds)*p/100 in sorted order, the largest for p=100, 0 for no samples.
// ds is not modified.
func Of(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
