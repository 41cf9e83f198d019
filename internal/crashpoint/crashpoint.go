// Package crashpoint lets crash tests kill the process at named points of
// the commit path, the way a power cut or an OOM kill would: with SIGKILL,
// no deferred functions, no flushing.
//
// A test starts `spoor serve` with SPOOR_CRASHPOINT=name or name:N; the
// process kills itself the Nth time (default 1st) it reaches that point.
// Without the variable a crash point costs one atomic load.
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// The named points, in the order a batch passes them.
const (
	// MidBatch: leaves are being added to the batch, nothing is committed.
	MidBatch = "mid-batch"
	// DuringSigning: the checkpoint is signed, the batch not yet committed.
	DuringSigning = "during-signing"
	// AfterAhead: the envelopes of a large batch are ingested into the
	// store ahead of the batch (ledger.Batch.SetAhead), the rest of the
	// batch is not committed.
	AfterAhead = "after-ahead-write"
	// AfterCommit: the batch is durable, no JetStream message is acked yet.
	AfterCommit = "after-commit-before-ack"
	// MidAck: some of a batch's messages are acked, others not.
	MidAck = "mid-ack"
)

var (
	armed  string
	target int64
	hits   atomic.Int64
)

func init() {
	v := os.Getenv("SPOOR_CRASHPOINT")
	if v == "" {
		return
	}
	name, n, ok := strings.Cut(v, ":")
	armed, target = name, 1
	if ok {
		if t, err := strconv.ParseInt(n, 10, 64); err == nil && t > 0 {
			target = t
		}
	}
}

// Hit kills the process if the armed crash point is name and this is its
// target hit.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	if hits.Add(1) == target {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never return: the signal is on its way
	}
}
