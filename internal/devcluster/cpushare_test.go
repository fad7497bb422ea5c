package devcluster

import (
	"runtime"
	"slices"
	"strconv"
	"testing"
)

func TestCPUShare(t *testing.T) {
	for _, tc := range []struct{ cores, nodes, want int }{
		{2, 3, 1}, {8, 3, 2}, {4, 2, 2}, {1, 1, 1}, {16, 32, 1}, {4, 0, 4},
	} {
		if got := cpuShare(tc.cores, tc.nodes); got != tc.want {
			t.Errorf("cpuShare(%d, %d) = %d, want %d", tc.cores, tc.nodes, got, tc.want)
		}
	}
	want := "GOMAXPROCS=" + strconv.Itoa(max(1, runtime.NumCPU()/3))
	if got := CPUShareEnv(3, []string{"PATH=/bin"}); !slices.Equal(got, []string{want}) {
		t.Errorf("CPUShareEnv(3) = %q, want %q", got, want)
	}
	if got := CPUShareEnv(3, []string{"GOMAXPROCS=7"}); got != nil {
		t.Errorf("with GOMAXPROCS set: %q, want nothing", got)
	}
}
