package antientropy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

// BenchmarkAEObserve is the anti-entropy cost of one committed record
// write: the RecordObserver turning two set digests into key digests and
// updating the partition's tree under its lock.
func BenchmarkAEObserve(b *testing.B) {
	for _, keyLen := range []int{16, 64, 1024} {
		b.Run(fmt.Sprintf("keyLen=%d", keyLen), func(b *testing.B) {
			ts, err := NewTrees(256, 10)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			keys := make([]ring.Key, 4096)
			for i := range keys {
				k := make([]byte, keyLen)
				for j := range k {
					k[j] = byte(rng.Uint32())
				}
				h := xxhash.Sum64(k)
				keys[i] = ring.Key{Partition: uint32(h >> 56), Hash: h, Key: k}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[i&4095]
				ts.Observe(k, uint64(i), uint64(i+1))
				i++
			}
		})
	}
}

// benchReplica opens st as a replica of node "w".
func benchReplica(b *testing.B, st *store.Store) *replica.Replica {
	b.Helper()
	d, err := replica.OpenDir(st, "w")
	if err != nil {
		b.Fatal(err)
	}
	rep, err := replica.New(replica.Config{Self: "w", Store: st, Epochs: d.Epochs})
	if err != nil {
		b.Fatal(err)
	}
	return rep
}

// loadStore writes n records (16-byte keys, 100-byte values, one sibling
// each) into a badger store in dir, spread over 256 partitions.
func loadStore(b *testing.B, dir string, n int) *store.Store {
	b.Helper()
	o := store.DefaultOptions(dir)
	st, err := store.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	var wg sync.WaitGroup
	const workers = 64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				key := fmt.Appendf(nil, "key-%012d", i)
				h := xxhash.Sum64(key)
				s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "w", Epoch: 1}, vclock.Value{Data: val})
				rec, err := replica.EncodeRecord(1, s)
				if err != nil {
					b.Error(err)
					return
				}
				_, _, err = st.Update(context.Background(), ring.Key{Partition: uint32(h >> 56), Hash: h, Key: key}, false,
					func([]byte, bool) ([]byte, error) { return rec, nil })
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return st
}

// BenchmarkAEStartupBuild compares the two ways to have current trees at
// start with keys records on disk: a scan of the store (what the node
// does), and loading 256 persisted snapshots (MarshalBinary/DecodeTree),
// which a node could only trust after a clean shutdown.
func BenchmarkAEStartupBuild(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			st := loadStore(b, b.TempDir(), n)
			defer st.Close()
			rep := benchReplica(b, st)
			b.Run("source=scan", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ts, err := NewTrees(256, 10)
					if err != nil {
						b.Fatal(err)
					}
					got, err := ts.Build(rep)
					if err != nil || got != n {
						b.Fatalf("built %d keys, %v", got, err)
					}
				}
			})
			ts, err := NewTrees(256, 10)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ts.Build(rep); err != nil {
				b.Fatal(err)
			}
			snaps := make([][]byte, len(ts.trees))
			for p := range ts.trees {
				if snaps[p], err = ts.trees[p].MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("source=snapshots", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for p, s := range snaps {
						t, err := DecodeTree(s)
						if err != nil || t.Root() != ts.Root(uint32(p)) {
							b.Fatal("snapshot differs", err)
						}
					}
				}
			})
		})
	}
}

// codecPeer is an Peer over another tree and key list, through
// the wire codec, counting bytes both ways.
type codecPeer struct {
	t     *Tree
	keys  []KeyDigest
	bytes int
}

func (c *codecPeer) Hashes(_ context.Context, p uint32, level int, nodes []uint32) ([]uint64, error) {
	req, err := HashesRequest{Tree: c.t.Config(), Level: level, Nodes: nodes}.Encode()
	if err != nil {
		return nil, err
	}
	dreq, err := DecodeHashesRequest(req)
	if err != nil {
		return nil, err
	}
	resp, err := ServeHashes(c.t, dreq)
	if err != nil {
		return nil, err
	}
	out, err := resp.Encode()
	c.bytes += len(req) + len(out)
	return resp.Hashes, err
}

func (c *codecPeer) Keys(_ context.Context, p uint32, buckets []uint32) ([]KeyDigest, error) {
	req, err := KeysRequest{Tree: c.t.Config(), Buckets: buckets}.Encode()
	if err != nil {
		return nil, err
	}
	cfg := c.t.Config()
	resp, err := ServeKeys(cfg, KeysRequest{Tree: cfg, Buckets: buckets}, func(bs []uint32) ([]KeyDigest, error) {
		return bucketKeys(cfg, c.keys, bs), nil
	})
	if err != nil {
		return nil, err
	}
	out, err := resp.Encode()
	c.bytes += len(req) + len(out)
	return resp.Keys, err
}

func bucketKeys(cfg TreeConfig, keys []KeyDigest, buckets []uint32) []KeyDigest {
	want := map[uint32]bool{}
	for _, b := range buckets {
		want[b] = true
	}
	var out []KeyDigest
	for _, k := range keys {
		if want[cfg.Bucket(k.Hash)] {
			out = append(out, k)
		}
	}
	return out
}

// BenchmarkAELeafBits measures, for one partition of k keys in which one key
// differs (the usual case: with d below the partition count, each differing
// partition holds one difference), the bytes of the tree walk and key lists
// (not the sets), by LeafBits: 390 keys per partition is 100,000 keys on 256
// partitions, 3,906 is 1,000,000.
func BenchmarkAELeafBits(b *testing.B) {
	for _, k := range []int{390, 3906} {
		for _, lb := range []int{8, 10, 12} {
			b.Run(fmt.Sprintf("keysPerPartition=%d/leafBits=%d", k, lb), func(b *testing.B) {
				cfg := TreeConfig{PartitionBits: 8, Partition: 5, LeafBits: lb, FanoutBits: fanoutBits}
				local, _ := NewTree(cfg)
				remote, _ := NewTree(cfg)
				rng := rand.New(rand.NewPCG(uint64(k), uint64(lb)))
				var lk, rk []KeyDigest
				for i := range k {
					key := fmt.Appendf(nil, "key-%011d", i)
					h := uint64(5)<<56 | rng.Uint64()>>8
					d := Digest(h, key, 1)
					lk = append(lk, KeyDigest{Key: key, Hash: h, Digest: d})
					rd := d
					if i == 0 {
						rd = Digest(h, key, 2)
					}
					rk = append(rk, KeyDigest{Key: key, Hash: h, Digest: rd})
					_ = local.Update(h, 0, d)
					_ = remote.Update(h, 0, rd)
				}
				b.ReportAllocs()
				var bytes int
				for b.Loop() {
					peer := &codecPeer{t: remote, keys: rk}
					diff, err := Compare(context.Background(), 5, local, peer, func(bs []uint32) ([]KeyDigest, error) {
						return bucketKeys(cfg, lk, bs), nil
					})
					if err != nil || len(diff.Keys) != 1 {
						b.Fatalf("%d keys differ, %v", len(diff.Keys), err)
					}
					bytes = peer.bytes
				}
				b.ReportMetric(float64(bytes), "wire-B/diff")
				b.ReportMetric(float64(local.SizeBytes()*256), "trees-B/node")
			})
		}
	}
}
