//go:build !unix

package benchkit

import "time"

// processCPU is not measured on this platform: CPU costs read as zero.
func processCPU() time.Duration { return 0 }
