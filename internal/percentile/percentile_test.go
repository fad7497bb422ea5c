package percentile

import (
	"testing"
	"time"
)

func TestOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // reversed: Of sorts a copy
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{0, 1}, {50, 51}, {99, 100}, {100, 100}} {
		if got := Of(ds, tc.p); got != tc.want {
			t.Errorf("Of(1..100, %d) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if ds[0] != 100 {
		t.Errorf("Of sorted its argument: ds[0] = %d", ds[0])
	}
	if got := Of(nil, 99); got != 0 {
		t.Errorf("Of(nil) = %d, want 0", got)
	}
	if got := Of([]time.Duration{7}, 99); got != 7 {
		t.Errorf("Of of one sample = %d, want 7", got)
	}
}
