package bench

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseQuorum(t *testing.T) {
	tests := []struct {
		in   string
		want Quorum
		err  error
	}{
		{"3/2/2", Quorum{3, 2, 2}, nil},
		{" 5/1/5 ", Quorum{5, 1, 5}, nil},
		{"1/1/1", Quorum{1, 1, 1}, nil},
		{"3/2", Quorum{}, ErrSyntax},
		{"3/2/2/1", Quorum{}, ErrSyntax},
		{"a/b/c", Quorum{}, ErrSyntax},
		{"3/-1/2", Quorum{}, ErrSyntax},
		{"3/0/2", Quorum{}, ErrInvalidConfig},
		{"3/4/2", Quorum{}, ErrInvalidConfig},
		{"3/2/4", Quorum{}, ErrInvalidConfig},
		{"65/1/1", Quorum{}, ErrInvalidConfig},
		{"", Quorum{}, ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseQuorum(tc.in)
			if !errors.Is(err, tc.err) || (tc.err != nil) != (err != nil) {
				t.Fatalf("ParseQuorum(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("ParseQuorum(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	qs, err := ParseQuorums("3/1/1,3/2/2,3/3/1")
	if err != nil || !reflect.DeepEqual(qs, []Quorum{{3, 1, 1}, {3, 2, 2}, {3, 3, 1}}) {
		t.Errorf("ParseQuorums = %v, %v", qs, err)
	}
	if _, err := ParseQuorums("3/1/1,"); err == nil {
		t.Error("trailing comma accepted")
	}
	if _, err := ParseQuorums(strings.Repeat("1/1/1,", MaxSettings) + "1/1/1"); !errors.Is(err, ErrSyntax) {
		t.Errorf("too many settings: %v", err)
	}
	if !(Quorum{3, 2, 2}).Strict() || (Quorum{3, 1, 2}).Strict() {
		t.Error("Strict wrong")
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("30s:pause:2, 10s:kill:1,20s:RESTART:1,35s:resume:2")
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{
		{10 * time.Second, FaultKill, 1},
		{20 * time.Second, FaultRestart, 1},
		{30 * time.Second, FaultPause, 2},
		{35 * time.Second, FaultResume, 2},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %v, want %v", s, want)
	}
	if s.String() != "10s:kill:1,20s:restart:1,30s:pause:2,35s:resume:2" {
		t.Errorf("String = %q", s.String())
	}
	if s, err := ParseSchedule(""); err != nil || s != nil {
		t.Errorf("empty: %v %v", s, err)
	}
	for _, bad := range []string{"10s:kill", "10s:explode:1", "x:kill:1", "-1s:kill:1", "1s:kill:-1", "1s:kill:99999999", "1s:kill:1,"} {
		if _, err := ParseSchedule(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseSchedule(%q) = %v, want ErrSyntax", bad, err)
		}
	}
}

func TestParseDelay(t *testing.T) {
	tests := []struct {
		in   string
		want Delay
		ok   bool
	}{
		{"", Delay{}, true},
		{"none", Delay{}, true},
		{"exp:2ms", Delay{Kind: DelayExp, Base: 2 * time.Millisecond}, true},
		{"fixed:1ms", Delay{Kind: DelayFixed, Base: time.Millisecond}, true},
		{"fixed:1ms+jitter:500us", Delay{Kind: DelayFixed, Base: time.Millisecond, Jitter: 500 * time.Microsecond}, true},
		{"FIXED:1ms+JITTER:500us", Delay{Kind: DelayFixed, Base: time.Millisecond, Jitter: 500 * time.Microsecond}, true},
		{"exp:", Delay{}, false},
		{"exp:-1ms", Delay{}, false},
		{"exp:2h", Delay{}, false},
		{"fixed:1ms+500us", Delay{}, false},
		{"gauss:1ms", Delay{}, false},
	}
	for _, tc := range tests {
		got, err := ParseDelay(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDelay(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseDelay(%q): %v does not wrap ErrSyntax", tc.in, err)
		}
	}
}

func TestDelaySample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n = 50_000
	mean := func(d Delay) (m float64, lo, hi time.Duration) {
		lo = time.Hour
		for range n {
			s := d.Sample(r)
			m += float64(s)
			lo, hi = min(lo, s), max(hi, s)
		}
		return m / n, lo, hi
	}
	m, lo, _ := mean(Delay{Kind: DelayExp, Base: 2 * time.Millisecond})
	if m < 1.9e6 || m > 2.1e6 || lo < 0 {
		t.Errorf("exp:2ms mean %v min %v", time.Duration(m), lo)
	}
	m, lo, hi := mean(Delay{Kind: DelayFixed, Base: time.Millisecond, Jitter: 500 * time.Microsecond})
	if m < 0.98e6 || m > 1.02e6 || lo < 500*time.Microsecond || hi > 1500*time.Microsecond {
		t.Errorf("fixed jitter: mean %v range [%v, %v]", time.Duration(m), lo, hi)
	}
	if _, lo, _ := mean(Delay{Kind: DelayFixed, Base: 0, Jitter: time.Millisecond}); lo < 0 {
		t.Errorf("negative sample %v", lo)
	}
	if (Delay{}).Sample(r) != 0 {
		t.Error("zero Delay sampled non-zero")
	}
}

func TestParseEnums(t *testing.T) {
	for in, want := range map[string]Workload{"a": WorkloadA, "YCSB-B": WorkloadB, "c": WorkloadC, "d": WorkloadD, "f": WorkloadF, "write": WorkloadWriteOnly, "writeonly": WorkloadWriteOnly} {
		if got, err := ParseWorkload(in); err != nil || got != want {
			t.Errorf("ParseWorkload(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseWorkload("e"); !errors.Is(err, ErrSyntax) {
		t.Errorf("workload e (scans) accepted: %v", err)
	}
	for in, want := range map[string]Distribution{"uniform": DistUniform, "Zipfian": DistZipfian, "latest": DistLatest, "": 0} {
		if got, err := ParseDistribution(in); err != nil || got != want {
			t.Errorf("ParseDistribution(%q) = %v, %v", in, got, err)
		}
	}
	for in, want := range map[string]CoordPolicy{"rr": CoordRoundRobin, "roundrobin": CoordRoundRobin, "random": CoordRandom} {
		if got, err := ParseCoordPolicy(in); err != nil || got != want {
			t.Errorf("ParseCoordPolicy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCoordPolicy("nearest"); !errors.Is(err, ErrSyntax) {
		t.Error("unknown policy accepted")
	}
}

func TestParseDeltas(t *testing.T) {
	got, err := ParseDeltas("0, 1ms,10ms,1s")
	if err != nil || !reflect.DeepEqual(got, []time.Duration{0, time.Millisecond, 10 * time.Millisecond, time.Second}) {
		t.Errorf("ParseDeltas = %v, %v", got, err)
	}
	for _, bad := range []string{"1ms,1ms", "2ms,1ms", "-1ms", "x", ""} {
		if _, err := ParseDeltas(bad); err == nil {
			t.Errorf("ParseDeltas(%q) accepted", bad)
		}
	}
}

// parseFailed reports whether a parser returned an error, and fails t if
// that error wraps none of the sentinels it may return.
func parseFailed(t *testing.T, err error, sentinels ...error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	t.Fatalf("error %v wraps none of %v", err, sentinels)
	return true
}

// Fuzz targets for every parser of user input: no panic, errors wrap a
// sentinel, and parse(format(parse(s))) == parse(s).

func FuzzParseQuorum(f *testing.F) {
	for _, s := range []string{"3/2/2", "1/1/1", "3/4/2", "a/b/c", "", "3/2", "64/64/64", "+3/2/2", "03/2/2",
		" 3/2/2 ", "3/2/2/1", "3/-1/2", "99999999999999999999/1/1", "65/1/1", "3/2/2,3/1/1", "３/2/2", "3 /2/2", "0/0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuorum(s)
		if parseFailed(t, err, ErrSyntax, ErrInvalidConfig) {
			return
		}
		q2, err := ParseQuorum(q.String())
		if err != nil || q2 != q {
			t.Fatalf("round trip %q -> %v -> %v, %v", s, q, q2, err)
		}
	})
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"10s:kill:1,20s:restart:1,30s:pause:2,35s:resume:2", "", "1ms:KILL:0", "1s:kill", "5s:pause:65536", "1h2m3s:resume:3,0s:kill:0",
		"10s:kill:1,10s:kill:1", "-1s:kill:1", "9999999h:kill:1", "1s:kill:-1", "1s:kill:1,", ",1s:kill:1", "1s::1", "1.5s:pause:0", "1s:kill:1:extra",
		strings.Repeat("1s:kill:0,", 200) + "1s:kill:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSchedule(s)
		if parseFailed(t, err, ErrSyntax) {
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("parsed schedule invalid: %v", err)
		}
		sc2, err := ParseSchedule(sc.String())
		if err != nil || !reflect.DeepEqual(sc, sc2) {
			t.Fatalf("round trip %q -> %v -> %v, %v", s, sc, sc2, err)
		}
	})
}

func FuzzParseDelay(f *testing.F) {
	for _, s := range []string{"exp:2ms", "fixed:1ms+jitter:500us", "fixed:1ms", "none", "", "exp:", "fixed:1ms+jitter:",
		"exp:0", "exp:-1ms", "fixed:1h", "exp:2ms+jitter:1ms", "FIXED:1MS", "exp:1e9h", "fixed:1ms+jitter:2ms", "fixed:1ms+jitter:1ms+jitter:1ms", "exp:2ms "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDelay(s)
		if parseFailed(t, err, ErrSyntax) {
			return
		}
		d2, err := ParseDelay(d.String())
		if err != nil || d2 != d {
			t.Fatalf("round trip %q -> %+v -> %+v, %v", s, d, d2, err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		if v := d.Sample(r); v < 0 || v > MaxDelay {
			t.Fatalf("sample %v out of range", v)
		}
	})
}

func FuzzParseDeltas(f *testing.F) {
	for _, s := range []string{"0,1ms,2ms,5ms", "", "0", "5ms,1ms", "1ms,1ms", "-1ms", "0,1h,1000h", "1ms,,2ms", "1ms,2", strings.Repeat("1ms,", 70) + "1ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := ParseDeltas(s)
		if parseFailed(t, err, ErrSyntax, ErrInvalidConfig) {
			return
		}
		if err := (CheckerConfig{Deltas: ds}).Validate(); err != nil {
			t.Fatalf("parsed deltas %v invalid: %v", ds, err)
		}
		parts := make([]string, len(ds))
		for i, d := range ds {
			parts[i] = d.String()
		}
		ds2, err := ParseDeltas(strings.Join(parts, ","))
		if err != nil || !slices.Equal(ds, ds2) {
			t.Fatalf("round trip %q -> %v -> %v, %v", s, ds, ds2, err)
		}
	})
}
