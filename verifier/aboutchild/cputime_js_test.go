//go:build js

package aboutchild

import "time"

var processStart = time.Now()

// cpuTime is the wall time under js/wasm: the browser's WebAssembly runs Go
// on one thread, so wall time is CPU time there.
func cpuTime() time.Duration { return time.Since(processStart) }
