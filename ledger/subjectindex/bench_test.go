package subjectindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// benchIndexes are built once per size: a map of n keys, one entry each.
var (
	benchMu      sync.Mutex
	benchIndexes = map[int]*benchIndex{}
)

type benchIndex struct {
	x    *Index
	st   *MemStore
	next uint64
}

func benchSetup(b *testing.B, n int) *benchIndex {
	benchMu.Lock()
	defer benchMu.Unlock()
	if bi := benchIndexes[n]; bi != nil {
		return bi
	}
	bi := &benchIndex{x: New(Config{Rand: newSeeded(9)}), st: NewMemStore()}
	ctx := context.Background()
	for start := 0; start < n; start += 100_000 {
		var bt Batch
		for i := start; i < min(n, start+100_000); i++ {
			bt.Append(mapKey(uint64(i)), bi.next)
			bi.next++
		}
		u, err := bi.x.Apply(ctx, bi.st, &bt)
		if err != nil {
			b.Fatal(err)
		}
		bi.st.Commit(u.Writes)
	}
	benchIndexes[n] = bi
	return bi
}

// BenchmarkApply measures the index's cost per integrated entry: batches
// of 256 entries, each appended to the list of a random existing key (a
// child already known to that party), applied and committed to memory.
// It reports CPU time per entry beside wall time (the process's, GC
// included). Reads and writes go to a Go map here; with Pebble its reads
// and the batch write come on top. Lists grow as the benchmark runs (each
// append rewrites its list), so longer runs report more bytes written.
func BenchmarkApply(b *testing.B) {
	const batch = 256
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			bi := benchSetup(b, n)
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			ctx := context.Background()
			writes, writeBytes := 0, 0
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				var bt Batch
				for range batch {
					bt.Append(mapKey(uint64(rng.IntN(n))), bi.next)
					bi.next++
				}
				u, err := bi.x.Apply(ctx, bi.st, &bt)
				if err != nil {
					b.Fatal(err)
				}
				bi.st.Commit(u.Writes)
				writes += len(u.Writes)
				for _, w := range u.Writes {
					writeBytes += len(w.Key) + len(w.Value)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*batch), "cpu-ns/entry")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
			b.ReportMetric(float64(writes)/float64(b.N*batch), "writes/entry")
			b.ReportMetric(float64(writeBytes)/float64(b.N*batch), "written-B/entry")
		})
	}
}

// BenchmarkProve measures a proof of a present key, and reports its size
// and the size of the list it proves.
func BenchmarkProve(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			bi := benchSetup(b, n)
			rng := rand.New(rand.NewPCG(uint64(n), 8))
			ctx := context.Background()
			size := 0
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				p, l, err := bi.x.Prove(ctx, bi.st, mapKey(uint64(rng.IntN(n))))
				if err != nil || l == nil {
					b.Fatal(err)
				}
				raw, _ := p.MarshalBinary()
				size += len(raw)
			}
			b.ReportMetric(float64(size)/float64(b.N), "proof-B")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/proof")
		})
	}
}

// TestIndexSizePerKey reports the stored bytes per key of a map of 100,000
// one-entry lists (run with -v to see them): the index's disk before
// compression, for the design note.
func TestIndexSizePerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a map of 100,000 keys")
	}
	x := New(Config{Rand: newSeeded(4)})
	st := NewMemStore()
	var bt Batch
	const n = 100_000
	for i := range uint64(n) {
		bt.Append(mapKey(i), i)
	}
	u, err := x.Apply(context.Background(), st, &bt)
	if err != nil {
		t.Fatal(err)
	}
	st.Commit(u.Writes)
	records, bytes := st.Size()
	t.Logf("%d keys: %d records, %d bytes (%.1f bytes per key, lists included)", n, records, bytes, float64(bytes)/n)
	// n lists, n leaves, n-1 splitting inner nodes, and the unary inner
	// nodes where keys share a run of bits (about 0.44 per key at random).
	if records < 3*n-1 || records > 4*n {
		t.Errorf("%d records for %d keys: want 3n-1 to 4n (a list, a leaf, about 1.44 inner nodes per key)", records, n)
	}
}
