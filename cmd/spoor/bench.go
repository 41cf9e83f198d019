package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/internal/benchkit"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
)

type benchFlags struct {
	noIndex     bool
	events      int
	memLimit    int
	json        bool
	cpuprofile  string
	dir         string
	offered     int
	offeredSecs float64
	publishers  int
	batch       int
	// The Merkle backend of (b) and (c): --log, --trillian, --tree-id.
	log      string
	trillian string
	treeID   int64
	// The witnesses of (g): --witnesses, --quorum, --witness-interval.
	witnesses       int
	quorum          int
	witnessInterval time.Duration
}

func newBenchCmd(g *globalFlags) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench [--events N] [--json]",
		Short: "Measure this machine: stage ceilings, the full pipeline, the log core, inzage, audit, memory and disk",
		Long: `Measure Spoor on this machine, in one process on a scratch folder.

Synthetic events are generated and signed first (signing is the publishing
organisation's cost, not the ledger's). Then, in the same run:
  (a) each stage alone: JetStream publish and consume together, envelope
      open on every core (the median of three runs), Pebble Sync
      batches of the ledger's own keys,
      leaf hashing; the composed ceiling is cores / the sum of their CPU
      time per event, shown beside the lowest single-stage rate;
  (b) the full pipeline (publishers -> embedded NATS -> ingest -> ledger):
      sustained events/s and publish-to-checkpoint latency at full load
      and at a fixed offered load, each as a ratio to the ceilings; at
      full load each publisher sends batch messages of up to
      --publish-batch events of one party (the JetStream stage too, and
      it is measured with one event per message as well, for
      comparison); the offered load sends one event per message;
  (c) the log core alone (no NATS, no signatures), with new UUIDv7 ids
      as a live system makes them, and again with ids in random time
      order (a backlog of old events), for comparison;
  (d) inzage answer time for children with about 50 disclosures each;
  (e) the FG's audit: Merkle recomputation and the full check;
  (f) peak RSS, ledger bytes per event after compaction, the NATS store;
  (g) with --witnesses N: N Spoor witnesses as HTTP servers on loopback
      (their state written with fsync), a covenant version 2 whose witness
      policy needs --quorum of them, and the ledger's Witnesser beside it:
      the full load without witnesses, with, and without again (each on a
      fresh ledger; the one with as a ratio to the mean of the two
      without), then the fixed offered load on the compacted store, timed
      from publish to the checkpoint and to the first witnessed checkpoint
      that covers each event.

With --log trillian --trillian ADDR, (b) and (c) run with a Trillian
PREORDERED_LOG tree as the Merkle backend (each of their ledgers on a tree
of its own): every batch then also waits for Trillian to integrate it and
for the roots to agree before its checkpoint is signed.

The figures depend on the machine: quote them with it. A million events
need a few minutes and a few GB of scratch space.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.events, "events", 100000, "events published at full load (the targets are stated for 1000000)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.BoolVar(&f.noIndex, "no-subject-index", false, "run the ledgers without the subject index (as serve --no-subject-index), to compare")
	fl.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fl.StringVar(&f.dir, "dir", "", "scratch folder (default: a new temporary folder, removed afterwards)")
	fl.IntVar(&f.offered, "offered-rate", 5000, "the fixed offered load, events/s")
	fl.Float64Var(&f.offeredSecs, "offered-seconds", 10, "how long the offered load runs")
	fl.IntVar(&f.publishers, "publishers", 4, "concurrent publishers, each on its own NATS connection")
	fl.IntVar(&f.batch, "publish-batch", 64, "at full load, the most events a publisher sends in one batch message (1: one event per message; the offered load always sends one)")
	addMemoryLimitFlag(fl, &f.memLimit)
	fl.StringVar(&f.log, "log", "pebble", "Merkle log backend of the full pipeline (b) and the log core (c): pebble or trillian")
	fl.StringVar(&f.trillian, "trillian", "", "with --log trillian: the Trillian log server's gRPC address (host:port); the bench makes a PREORDERED_LOG tree for each ledger it opens and deletes it afterwards")
	fl.IntVar(&f.witnesses, "witnesses", 0, "run (g) with this many witnesses (0: leave it out)")
	fl.IntVar(&f.quorum, "quorum", 0, "with --witnesses: how many must cosign (0: a majority)")
	fl.DurationVar(&f.witnessInterval, "witness-interval", witnessing.DefaultInterval, "with --witnesses: the least time between two rounds of add-checkpoint requests (as serve's --witness-interval)")
	fl.Int64Var(&f.treeID, "tree-id", 0, "with --log trillian: an empty PREORDERED_LOG tree for the first ledger (the log core) instead of a new one")
	return cmd
}

func runBench(cmd *cobra.Command, g *globalFlags, f *benchFlags) error {
	if f.events < 1 {
		return fmt.Errorf("--events must be at least 1, got %d", f.events)
	}
	switch {
	case f.witnesses < 0:
		return fmt.Errorf("--witnesses must not be negative, got %d", f.witnesses)
	case f.witnesses == 0 && cmd.Flags().Changed("quorum"):
		return fmt.Errorf("--quorum needs --witnesses")
	case f.quorum < 0 || f.quorum > f.witnesses:
		return fmt.Errorf("--quorum %d: want 1 to --witnesses (%d)", f.quorum, f.witnesses)
	case f.witnesses > 0 && f.witnessInterval <= 0:
		return fmt.Errorf("--witness-interval must be positive, got %s", f.witnessInterval)
	}
	// The bench runs the ledger as serve does, with serve's memory limit.
	if err := applyMemoryLimit(cmd, f.memLimit, g.logger()); err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "spoor-bench-")
		if err != nil {
			return fmt.Errorf("couldn't make a scratch folder: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("couldn't make the scratch folder: %w", err)
	}
	if f.cpuprofile != "" {
		pf, err := os.Create(f.cpuprofile)
		if err != nil {
			return fmt.Errorf("couldn't create the CPU profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("couldn't start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cfg := benchkit.Config{
		Dir: dir, Events: f.events, OfferedRate: f.offered, OfferedSeconds: f.offeredSecs,
		Publishers: f.publishers, PublishBatch: f.batch, Progress: cmd.ErrOrStderr(), Logger: g.logger(),
		Witnesses: f.witnesses, Quorum: f.quorum, WitnessInterval: f.witnessInterval, NoSubjectIndex: f.noIndex,
	}
	if err := f.merkle(&cfg, g.logger()); err != nil {
		return err
	}
	rep, err := benchkit.Run(cmd.Context(), cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(out)
}

// merkle sets cfg's Merkle backend from --log, --trillian and --tree-id.
// Every ledger of the bench is fresh, so each needs an empty tree: the
// first gets --tree-id if given, the others a tree made (and afterwards
// deleted) through Trillian's admin API, as createtree makes one.
func (f *benchFlags) merkle(cfg *benchkit.Config, log *slog.Logger) error {
	switch f.log {
	case "pebble":
		if f.trillian != "" || f.treeID != 0 {
			return fmt.Errorf("--trillian and --tree-id need --log trillian")
		}
		return nil
	case "trillian":
	default:
		return fmt.Errorf("--log %q: want pebble or trillian", f.log)
	}
	if f.trillian == "" {
		return fmt.Errorf("--log trillian needs --trillian ADDR")
	}
	addr, given := f.trillian, f.treeID
	cfg.MerkleName = "trillian at " + addr
	cfg.Merkle = func(ctx context.Context) (ledger.MerkleBackend, func(), error) {
		id, made := given, false
		given = 0
		if id == 0 {
			var err error
			if id, err = trillianlog.CreateTree(ctx, addr, "spoor-bench"); err != nil {
				return nil, nil, err
			}
			made = true
		}
		b, err := trillianlog.Dial(ctx, addr, id, trillianlog.Options{Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't use tree %d on the Trillian log server at %s: %w", id, addr, err)
		}
		release := func() {
			b.Close()
			if made {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := trillianlog.DeleteTree(ctx, addr, id); err != nil {
					log.Warn("couldn't delete the bench's Trillian tree", "tree_id", id, "err", err)
				}
			}
		}
		return b, release, nil
	}
	return nil
}
