package membudget

import (
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

const meminfo16G = "MemTotal:       16777216 kB\nMemFree:         1000 kB\n"

func TestReadMachine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     fstest.MapFS
		total     int64
		cgroup    int64
		cgroupAt  string
		wantError bool
	}{
		{
			name:  "no cgroup limit (v2 max)",
			files: fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo16G)}, "proc/self/cgroup": {Data: []byte("0::/user.slice/session-1.scope\n")}, "sys/fs/cgroup/user.slice/session-1.scope/memory.max": {Data: []byte("max\n")}},
			total: 16 << 30,
		},
		{
			name: "v2 limit on a parent binds the child",
			files: fstest.MapFS{
				"proc/meminfo":     {Data: []byte(meminfo16G)},
				"proc/self/cgroup": {Data: []byte("0::/kubepods/pod1/ctr\n")},
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": {Data: []byte("max\n")},
				"sys/fs/cgroup/kubepods/pod1/memory.max":     {Data: []byte("4294967296\n")},
				"sys/fs/cgroup/kubepods/memory.max":          {Data: []byte("8589934592\n")},
			},
			total: 16 << 30, cgroup: 4 << 30, cgroupAt: "/sys/fs/cgroup/kubepods/pod1/memory.max",
		},
		{
			name: "container namespace: the root file is the container's",
			files: fstest.MapFS{
				"proc/meminfo":             {Data: []byte(meminfo16G)},
				"proc/self/cgroup":         {Data: []byte("0::/\n")},
				"sys/fs/cgroup/memory.max": {Data: []byte("536870912\n")},
			},
			total: 16 << 30, cgroup: 512 << 20, cgroupAt: "/sys/fs/cgroup/memory.max",
		},
		{
			name: "hybrid: v2 without memory, v1 memory controller unlimited",
			files: fstest.MapFS{
				"proc/meminfo":     {Data: []byte(meminfo16G)},
				"proc/self/cgroup": {Data: []byte("4:memory:/process_api/abc\n1:cpu:/\n0::/\n")},
				"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                 {Data: []byte("9223372036854771712\n")},
			},
			total: 16 << 30,
		},
		{
			name: "v1 limit",
			files: fstest.MapFS{
				"proc/self/cgroup": {Data: []byte("7:cpuacct,memory:/docker/x\n")},
				"sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": {Data: []byte("2147483648\n")},
			},
			cgroup: 2 << 30, cgroupAt: "/sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes",
		},
		{
			name:  "nothing readable (another OS)",
			files: fstest.MapFS{},
		},
		{
			name:      "garbage limit",
			files:     fstest.MapFS{"proc/self/cgroup": {Data: []byte("0::/\n")}, "sys/fs/cgroup/memory.max": {Data: []byte("lots\n")}},
			wantError: true,
		},
		{
			name:      "garbage meminfo",
			files:     fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: many\n")}},
			wantError: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := readMachine(tc.files)
			if (err != nil) != tc.wantError {
				t.Fatalf("error %v, want error=%v", err, tc.wantError)
			}
			if m.MemTotal != tc.total || m.CgroupLimit != tc.cgroup || m.CgroupFile != tc.cgroupAt {
				t.Fatalf("got %+v, want total %d cgroup %d at %q", m, tc.total, tc.cgroup, tc.cgroupAt)
			}
		})
	}
}

// TestReadMachineHere reads this machine: it must not fail and must find
// some memory on Linux.
func TestReadMachineHere(t *testing.T) {
	m, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", m)
	if p, err := PlanFor(0, m); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("plan %+v", p)
	}
}

func TestPlanFor(t *testing.T) {
	for _, tc := range []struct {
		name              string
		flag              int64
		m                 Machine
		limit, budget     int64
		why, warn, errSub string
	}{
		{name: "half the machine", m: Machine{MemTotal: 16 << 30}, limit: 8 << 30, budget: 2 << 30, why: "50% of the machine"},
		{name: "90% of a smaller cgroup", m: Machine{MemTotal: 16 << 30, CgroupLimit: 4 << 30, CgroupFile: "/x"}, limit: 4 << 30 * 90 / 100, budget: (4 << 30 * 90 / 100) * 25 / 100, why: "90% of the cgroup limit 4 GiB (/x)"},
		{name: "half the machine below a large cgroup", m: Machine{MemTotal: 16 << 30, CgroupLimit: 15 << 30}, limit: 8 << 30, budget: 2 << 30, why: "50% of the machine"},
		{name: "cgroup only", m: Machine{CgroupLimit: 1 << 30}, limit: 1 << 30 * 90 / 100, budget: (1 << 30 * 90 / 100) * 25 / 100, why: "90% of the cgroup"},
		{name: "unknown machine", limit: 1 << 30, budget: 256 << 20, why: "unknown"},
		{name: "flag", flag: 2 << 30, m: Machine{MemTotal: 16 << 30}, limit: 2 << 30, budget: 512 << 20, why: "--memory-limit"},
		{name: "small flag gets the minimum budget", flag: 128 << 20, limit: 128 << 20, budget: MinBudget, why: "--memory-limit"},
		{name: "flag above the cgroup warns", flag: 8 << 30, m: Machine{MemTotal: 16 << 30, CgroupLimit: 4 << 30}, limit: 8 << 30, budget: 2 << 30, why: "--memory-limit", warn: "above the cgroup limit 4 GiB"},
		{name: "flag above the machine warns", flag: 32 << 30, m: Machine{MemTotal: 16 << 30}, limit: 32 << 30, budget: 8 << 30, why: "--memory-limit", warn: "above the machine's memory 16 GiB"},
		{name: "flag too small", flag: 64 << 20, errSub: "below the minimum"},
		{name: "negative flag", flag: -1, errSub: "must be >= 0"},
		{name: "absurd flag", flag: 1 << 62, errSub: "below 1 PiB"},
		{name: "tiny container", m: Machine{MemTotal: 16 << 30, CgroupLimit: 100 << 20}, errSub: "below the minimum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanFor(tc.flag, tc.m)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("error %v, want one containing %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MemoryLimit != tc.limit || p.Budget != tc.budget || !strings.Contains(p.Why, tc.why) {
				t.Fatalf("plan %+v, want limit %d budget %d why ~%q", p, tc.limit, tc.budget, tc.why)
			}
			if (tc.warn == "") != (p.Warning == "") || !strings.Contains(p.Warning, tc.warn) {
				t.Fatalf("warning %q, want ~%q", p.Warning, tc.warn)
			}
			// The split: the mapped files' share, the store and the
			// budget inside the Go runtime's limit, with at least a
			// quarter of it left for the runtime and the copies of
			// requests.
			if p.GoLimit+p.Mapped != p.MemoryLimit || p.Mapped < MinMapped || p.Mapped < p.MemoryLimit*MappedPercent/100 {
				t.Fatalf("plan %+v: GoLimit + Mapped != MemoryLimit, or Mapped too small", p)
			}
			if used := p.Store.Total() + p.Budget; used > p.GoLimit*3/4 {
				t.Fatalf("plan %+v: store %d + budget %d = %d of GoLimit %d", p, p.Store.Total(), p.Budget, used, p.GoLimit)
			}
		})
	}
}

func TestApplySetsGoMemLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Setenv("GOMEMLIMIT", "")
	p := Plan{MemoryLimit: 4 << 30, GoLimit: 3 << 30}
	if got, env := p.Apply(); got != 3<<30 || env {
		t.Fatalf("Apply = %d, %v", got, env)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("runtime limit %d, want %d", got, int64(3<<30))
	}
	// The environment wins: the runtime read it at start (here we set the
	// runtime's limit to what such a start would have given).
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	if got, env := p.Apply(); got != 1<<30 || !env {
		t.Fatalf("Apply with GOMEMLIMIT set = %d, %v; want the environment's limit", got, env)
	}
}
