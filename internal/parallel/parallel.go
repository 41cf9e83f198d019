// Package parallel spreads independent calls over goroutines: the ledger's
// per-event preparation and its store reads for an inzage answer, and the
// verifier's signature checks.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls fn(0) ... fn(n-1), each exactly once, on up to workers
// goroutines (0 or less: GOMAXPROCS), but no more than one per perWorker
// calls, so that cheap calls are not outweighed by the goroutines. With
// fewer than two workers it calls them in order on the caller's goroutine.
//
// Each goroutine takes the next call not yet taken, so calls of uneven
// cost (a read the block cache answers beside one that waits for the disk)
// keep every goroutine busy until the end. For calls that wait on I/O,
// more workers than cores keep more reads in flight.
func For(n, workers, perWorker int, fn func(i int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n/max(perWorker, 1))
	if workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
