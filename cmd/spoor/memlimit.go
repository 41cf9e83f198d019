package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultMemoryLimitMiB is the soft limit on the Go runtime's memory for
// the long-running commands (serve, bench).
//
// A ledger process holds Pebble's block cache (256 MiB) and memtables (two
// of 64 MiB) outside the Go heap, and the embedded NATS server, the batches
// in flight and everything else inside it. Left to GOGC alone the heap may
// grow to twice what is live, and a million-event burst took the process to
// about 1,035-1,090 MiB. With this limit the collector runs more often as
// the heap nears 512 MiB, which kept the same burst under 1 GiB in all at
// no measurable cost in throughput (spoor bench --events 1000000). It is a
// soft limit: a heap that really needs more still gets it.
const defaultMemoryLimitMiB = 512

// addMemoryLimitFlag adds --memory-limit-mib to a command's flags.
func addMemoryLimitFlag(fl *pflag.FlagSet, mib *int) {
	fl.IntVar(mib, "memory-limit-mib", defaultMemoryLimitMiB,
		"soft limit on the Go runtime's memory in MiB (Pebble's cache and memtables come on top); 0: none. A GOMEMLIMIT in the environment wins unless this flag is given")
}

// applyMemoryLimit sets the runtime's soft memory limit from
// --memory-limit-mib, unless the flag was not given and GOMEMLIMIT was (the
// runtime has then applied that already).
func applyMemoryLimit(cmd *cobra.Command, mib int, log *slog.Logger) error {
	if mib < 0 {
		return fmt.Errorf("--memory-limit-mib must be 0 (none) or more, got %d", mib)
	}
	if !cmd.Flags().Changed("memory-limit-mib") && os.Getenv("GOMEMLIMIT") != "" {
		log.Debug("memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return nil
	}
	limit := int64(math.MaxInt64)
	if mib > 0 {
		limit = int64(mib) << 20
	}
	debug.SetMemoryLimit(limit)
	return nil
}
