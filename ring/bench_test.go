package ring

import (
	"fmt"
	"testing"
)

var sinkP uint32

func BenchmarkPartitionOf(b *testing.B) {
	r := mustNew(b, LegacyConfig(), names(10))
	for _, size := range []int{8, 64, 1024} {
		b.Run(fmt.Sprintf("key=%dB", size), func(b *testing.B) {
			key := make([]byte, size)
			for i := range key {
				key[i] = byte(i)
			}
			b.ReportAllocs()
			for b.Loop() {
				key[0]++
				sinkP = r.PartitionOf(key)
			}
		})
	}
}

func BenchmarkPreference(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		r := mustNew(b, LegacyConfig(), names(n))
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % uint32(r.Partitions())
				if len(r.Primaries(p, 3)) != 3 {
					b.Fatal("short preference list")
				}
			}
		})
	}
}

// BenchmarkTargets measures the request path with one member down (so about
// 3 in n partitions need a fallback) and liveness read from a map:
// AppendTargets into a reused buffer, and Targets with a fresh slice.
func BenchmarkTargets(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		r := mustNew(b, LegacyConfig(), names(n))
		dead := map[NodeID]bool{r.Preference(0)[1]: true}
		alive := func(id NodeID) bool { return !dead[id] }
		b.Run(fmt.Sprintf("append/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]Target, 0, 3)
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % uint32(r.Partitions())
				buf = r.AppendTargets(buf[:0], p, 3, alive)
			}
		})
		b.Run(fmt.Sprintf("fresh/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % uint32(r.Partitions())
				_ = r.Targets(p, 3, alive)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for _, tokens := range []int{32, 64, 128, 256} {
		for _, n := range []int{10, 100, 1000} {
			ms := names(n)
			cfg := Config{Partitions: LegacyPartitions, Tokens: tokens}
			b.Run(fmt.Sprintf("T=%d/members=%d", tokens, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := New(cfg, ms); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDiff measures planning the handoff of one joining member.
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		ms := names(n + 1)
		before := mustNew(b, LegacyConfig(), ms[:n])
		after := mustNew(b, LegacyConfig(), ms)
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Diff(before, after, 3)
			}
		})
	}
}

// zonedNames returns n canonical members spread over three zones.
func zonedNames(n int) []Member {
	ms := names(n)
	for i := range ms {
		ms[i].Zone = fmt.Sprint("zone-", i%3)
	}
	return ms
}

// BenchmarkPlan measures Plan from nothing (cluster birth) and for one
// joining member (a ring change), with members in three zones.
func BenchmarkPlan(b *testing.B) {
	for _, q := range []int{256, 1024, 4096} {
		for _, n := range []int{10, 50, 100} {
			cfg := Config{Mode: ModeClaim, Partitions: q, Replicas: 3}
			ms := zonedNames(n + 1)
			b.Run(fmt.Sprintf("birth/Q=%d/members=%d", q, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Plan(cfg, nil, ms[:n]); err != nil {
						b.Fatal(err)
					}
				}
			})
			prev, err := Plan(cfg, nil, ms[:n])
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("join/Q=%d/members=%d", q, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Plan(cfg, prev, ms); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFromAssignment measures building a ModeClaim ring (preference
// lists with zone-ordered fallbacks) from an agreed assignment.
func BenchmarkFromAssignment(b *testing.B) {
	for _, n := range []int{10, 100} {
		cfg := DefaultConfig()
		a, err := Plan(cfg, nil, zonedNames(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Q=1024/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FromAssignment(cfg, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClaimLookups measures the request path on a ModeClaim ring
// with zones: Primaries, and Targets with one member down (zone-aware
// fallbacks), as BenchmarkPreference and BenchmarkTargets do for tokens.
func BenchmarkClaimLookups(b *testing.B) {
	for _, n := range []int{10, 100} {
		r := mustNew(b, DefaultConfig(), zonedNames(n))
		q := uint32(r.Partitions())
		dead := map[NodeID]bool{r.Preference(0)[1]: true}
		alive := func(id NodeID) bool { return !dead[id] }
		b.Run(fmt.Sprintf("primaries/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % q
				if len(r.Primaries(p, 3)) != 3 {
					b.Fatal("short preference list")
				}
			}
		})
		b.Run(fmt.Sprintf("targets-append/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]Target, 0, 3)
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % q
				buf = r.AppendTargets(buf[:0], p, 3, alive)
			}
		})
		b.Run(fmt.Sprintf("targets-fresh/members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			p := uint32(0)
			for b.Loop() {
				p = (p + 1) % q
				_ = r.Targets(p, 3, alive)
			}
		})
	}
}

func BenchmarkAssignmentCodec(b *testing.B) {
	cfg := Config{Mode: ModeClaim, Partitions: 4096, Replicas: 3}
	a, err := Plan(cfg, nil, zonedNames(100))
	if err != nil {
		b.Fatal(err)
	}
	enc := a.Encode()
	b.Run("encode/Q=4096/members=100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = a.Encode()
		}
	})
	b.Run("decode/Q=4096/members=100", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeAssignment(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStats(b *testing.B) {
	r := mustNew(b, DefaultConfig(), zonedNames(100))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Stats(3)
	}
}
