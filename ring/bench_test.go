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
