package main

// The Merkle-log backend of `spoor serve`: --log pebble (the default: the
// tiles in the ledger's Pebble are the log) or --log trillian, which keeps
// the log's tree also in a Trillian PREORDERED_LOG tree that must agree
// before any checkpoint is signed and that serves the proofs (see
// ledger/merkle.go and docs/trillian.md).

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
)

// merkleFlags are --log, --trillian and --tree-id.
type merkleFlags struct {
	log      string
	trillian string
	treeID   int64
}

func (m *merkleFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&m.log, "log", "pebble", "Merkle log backend: pebble (the tiles in the ledger's own store) or trillian (also a Trillian PREORDERED_LOG tree, which must agree before each checkpoint is signed and serves the proofs; needs --trillian and --tree-id)")
	fl.StringVar(&m.trillian, "trillian", "", "with --log trillian: the Trillian log server's gRPC address (host:port)")
	fl.Int64Var(&m.treeID, "tree-id", 0, "with --log trillian: the id of the PREORDERED_LOG tree (createtree --tree_type=PREORDERED_LOG prints it); one tree per log")
}

// check validates the flags before anything is opened.
func (m *merkleFlags) check(replicated bool) error {
	switch m.log {
	case "pebble":
		if m.trillian != "" || m.treeID != 0 {
			return fmt.Errorf("--trillian and --tree-id need --log trillian")
		}
		return nil
	case "trillian":
		if m.trillian == "" || m.treeID == 0 {
			return fmt.Errorf("--log trillian needs --trillian ADDR and --tree-id ID")
		}
		if replicated {
			// A standby applies batches without integrating them, and a
			// batch the old active had sent to Trillian but not to the
			// stream would be ahead of the new active: not handled yet.
			return fmt.Errorf("--log trillian cannot yet be combined with --replicate or --standby")
		}
		return nil
	default:
		return fmt.Errorf("--log %q: want pebble or trillian", m.log)
	}
}

// dial connects the backend, or returns nil for --log pebble. The
// collectors are the backend's metrics (spoor_trillian_integrate_seconds
// and others), for the caller's registry.
func (m *merkleFlags) dial(ctx context.Context, log *slog.Logger) (ledger.MerkleBackend, []prometheus.Collector, func(), error) {
	if m.log != "trillian" {
		return nil, nil, func() {}, nil
	}
	b, err := trillianlog.Dial(ctx, m.trillian, m.treeID, trillianlog.Options{Logger: log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--log trillian: couldn't use tree %d on the Trillian log server at %s: %w", m.treeID, m.trillian, err)
	}
	log.Info("Merkle log on Trillian", "trillian", m.trillian, "tree_id", m.treeID)
	return b, b.Metrics(), func() { b.Close() }, nil
}
