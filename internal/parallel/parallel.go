// Package parallel spreads independent calls over the machine's cores: the
// ledger's per-event preparation and the verifier's signature checks.
package parallel

import (
	"runtime"
	"sync"
)

// For calls fn(0) ... fn(n-1), each exactly once, on up to workers
// goroutines (0 or less: GOMAXPROCS), but no more than one per perWorker
// calls, so that cheap calls are not outweighed by the goroutines. With
// fewer than two workers it calls them in order on the caller's goroutine.
// Goroutine w takes w, w+workers, ...: calls should cost about the same.
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
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				fn(i)
			}
		})
	}
	wg.Wait()
}
