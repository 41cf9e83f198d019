// Package monitor follows a Spoor log's checkpoints and raises an alarm when
// the log misbehaves: a fork, a rollback, a bad signature, tiles that do
// not match the log's own checkpoint, or a witness that holds a checkpoint
// signed by the log key which the log does not extend (witnesses.go).
//
// Data flow: each Check fetches the log's /checkpoint with a
// tlogclient.Client (pinned log and cosigner keys), compares it with the last
// verified checkpoint kept in a state file, proves a larger tree consistent
// from the log's public tiles, reads the leaf records the log added (and
// refuses an entry type newer than this version reads: readNewLeaves), and
// only then replaces the state file
// (internal/durable: write, fsync, rename). An alarm never replaces it.
// The monitor reads the log over HTTP only: it imports no ledger, NATS or
// Pebble, so anyone (the FG, a parent's organisation) can run it. Its
// Prometheus collectors are handed to the caller (Metrics), which registers
// them; cmd/spoor's "spoor monitor" holds the flags and the loop.
package monitor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// AlarmKind is what a verified sign of misbehaviour shows. Its values are
// also those of the metrics' kind label.
type AlarmKind string

// The alarm kinds.
const (
	Fork         AlarmKind = "fork"          // same size with another root, or not an extension
	Rollback     AlarmKind = "rollback"      // smaller size, or an older cosignature time for the same tree
	BadSignature AlarmKind = "bad-signature" // the checkpoint does not verify with the pinned keys
	BadTiles     AlarmKind = "bad-tiles"     // the tiles do not match the log's own signed checkpoint
	// WitnessFork: a witness holds a checkpoint signed by the log key that
	// the log's tree does not extend (witnesses.go).
	WitnessFork AlarmKind = "witness-fork"
)

// AlarmKinds lists every kind, in the order the metrics are set up.
var AlarmKinds = []AlarmKind{Fork, Rollback, BadSignature, BadTiles, WitnessFork}

// Alarm is a verified sign that the log misbehaves. Check returns it as
// its error; any other error means the check could not be done.
type Alarm struct {
	Kind AlarmKind
	// Witness names the witness of a WitnessFork alarm.
	Witness string
	Detail  string
}

func (a *Alarm) Error() string { return string(a.Kind) + ": " + a.Detail }

// Outcome is what one check saw.
type Outcome struct {
	// Checkpoint is the checkpoint now kept in the state file.
	Checkpoint *verifier.Checkpoint
	// First is true when the state file was created (trust on first use).
	First bool
	// GrewFrom is the previous verified size.
	GrewFrom uint64
}

// Config is a monitor's configuration.
type Config struct {
	// Client reads the log, with the pinned keys to check its checkpoints
	// against (required). A caller may point its URL elsewhere between
	// checks.
	Client *tlogclient.Client
	// StatePath is the file holding the last verified checkpoint
	// (required). On first use the log's current checkpoint is trusted and
	// written there.
	StatePath string
	// Logger gets the alarms (level ERROR) and the progress; nil discards.
	Logger *slog.Logger
	// Witnesses are the witnesses whose monitoring endpoints are read after
	// each verified checkpoint (witnesses.go); none means the log alone is
	// followed. Names must be unique.
	Witnesses []WitnessEndpoint
}

// Monitor checks a log's checkpoints against a state file. Its Check is
// not safe for concurrent use: one loop calls it.
type Monitor struct {
	client *tlogclient.Client
	state  string
	log    *slog.Logger
	m      *metrics

	witnesses []WitnessEndpoint
	// pending holds, per witness, a checkpoint larger than the log's
	// verified one, to prove once the log reaches it; proven the last pair
	// proved. In memory: a restarted monitor reads the witnesses anew.
	pending map[string]*verifier.Checkpoint
	proven  map[string]provenWitness
}

// New returns a monitor for cfg.
func New(cfg Config) (*Monitor, error) {
	if cfg.Client == nil || cfg.StatePath == "" {
		return nil, errors.New("monitor: a Client and a StatePath are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, w := range cfg.Witnesses {
		if w.Name == "" || w.URL == "" || seen[w.Name] {
			return nil, fmt.Errorf("monitor: witness %q: each witness needs a unique name and a URL", w.Name)
		}
		seen[w.Name] = true
	}
	return &Monitor{client: cfg.Client, state: cfg.StatePath, log: log, m: newMetrics(),
		witnesses: cfg.Witnesses, pending: map[string]*verifier.Checkpoint{}, proven: map[string]provenWitness{}}, nil
}

// Metrics returns the monitor's Prometheus collectors, for the caller to
// register.
func (mon *Monitor) Metrics() []prometheus.Collector {
	return []prometheus.Collector{mon.m.checks, mon.m.alarms, mon.m.alarm, mon.m.treeSize, mon.m.lastVerify, mon.m.witnessErrors}
}

// metrics are the monitor's Prometheus metrics.
type metrics struct {
	checks     *prometheus.CounterVec
	alarms     *prometheus.CounterVec
	alarm      *prometheus.GaugeVec
	treeSize   prometheus.Gauge
	lastVerify prometheus.Gauge
	// witnessErrors counts witnesses that could not be read or served a
	// checkpoint not of this log (not alarms: not the log's doing).
	witnessErrors prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_monitor_checks_total",
			Help: "Checks of the log's checkpoint, by result (ok, alarm, error)."}, []string{"result"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_monitor_alarms_total",
			Help: "Alarms raised, by kind (fork, rollback, bad-signature, bad-tiles, witness-fork)."}, []string{"kind"}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spoor_monitor_alarm",
			Help: "1 while the last check raised an alarm of this kind, else 0."}, []string{"kind"}),
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_monitor_verified_tree_size",
			Help: "Tree size of the last verified checkpoint."}),
		lastVerify: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_monitor_last_verified_timestamp_seconds",
			Help: "When a checkpoint last passed every check (Unix seconds)."}),
		witnessErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_monitor_witness_errors_total",
			Help: "Witness checkpoints that could not be read or were not signed by the log key."}),
	}
	for _, k := range AlarmKinds {
		m.alarm.WithLabelValues(string(k)).Set(0)
		m.alarms.WithLabelValues(string(k))
	}
	for _, r := range []string{"ok", "alarm", "error"} {
		m.checks.WithLabelValues(r)
	}
	return m
}

// Check fetches the log's checkpoint and checks it against the state
// file, logging and counting what it saw. It returns an *Alarm for a
// verified sign of misbehaviour, another error when the check could not be
// done.
func (mon *Monitor) Check(ctx context.Context) (*Outcome, error) {
	out, err := mon.checkOnce(ctx)
	var alarm *Alarm
	switch {
	case errors.As(err, &alarm):
		mon.m.checks.WithLabelValues("alarm").Inc()
		mon.m.alarms.WithLabelValues(string(alarm.Kind)).Inc()
		for _, k := range AlarmKinds {
			v := 0.0
			if k == alarm.Kind {
				v = 1
			}
			mon.m.alarm.WithLabelValues(string(k)).Set(v)
		}
		if alarm.Witness != "" {
			mon.log.Error("ALARM: the log misbehaves", "kind", string(alarm.Kind), "witness", alarm.Witness, "detail", alarm.Detail, "url", mon.client.URL)
		} else {
			mon.log.Error("ALARM: the log misbehaves", "kind", string(alarm.Kind), "detail", alarm.Detail, "url", mon.client.URL)
		}
	case err != nil:
		mon.m.checks.WithLabelValues("error").Inc()
	default:
		mon.m.checks.WithLabelValues("ok").Inc()
		for _, k := range AlarmKinds {
			mon.m.alarm.WithLabelValues(string(k)).Set(0)
		}
		mon.m.treeSize.Set(float64(out.Checkpoint.Size))
		mon.m.lastVerify.Set(float64(time.Now().Unix()))
		switch {
		case out.First:
			mon.log.Warn("no state yet: trusting the log's current checkpoint (trust on first use)",
				"tree_size", out.Checkpoint.Size, "root", shortRoot(out.Checkpoint.Hash), "state", mon.state)
		case out.Checkpoint.Size > out.GrewFrom:
			mon.log.Info("checkpoint verified: consistent with the last one", "tree_size", out.Checkpoint.Size,
				"previous_size", out.GrewFrom, "root", shortRoot(out.Checkpoint.Hash), "cosigned_at", out.Checkpoint.CosignedAt)
		default:
			mon.log.Debug("checkpoint unchanged", "tree_size", out.Checkpoint.Size, "cosigned_at", out.Checkpoint.CosignedAt)
		}
	}
	return out, err
}

func shortRoot(h [32]byte) string { return hex.EncodeToString(h[:8]) }

// checkOnce is one check, without logging or metrics.
func (mon *Monitor) checkOnce(ctx context.Context) (*Outcome, error) {
	cp, err := mon.client.Checkpoint(ctx)
	switch {
	case errors.Is(err, verifier.ErrBadSignature), errors.Is(err, verifier.ErrMissingCosignature),
		errors.Is(err, verifier.ErrWrongOrigin), errors.Is(err, verifier.ErrMalformedCheckpoint):
		return nil, &Alarm{Kind: BadSignature, Detail: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("couldn't fetch the checkpoint: %w", err)
	}
	old, err := mon.State()
	if err != nil {
		return nil, err
	}
	out := &Outcome{Checkpoint: cp, First: old == nil}
	if old != nil {
		if err := mon.compare(ctx, old, cp); err != nil {
			return nil, err
		}
		out.GrewFrom = old.Size
	}
	if err := mon.saveState(cp); err != nil {
		return nil, err
	}
	// The log's checkpoint is verified and kept; now whether every witness
	// holds a tree it extends.
	if err := mon.checkWitnesses(ctx, cp); err != nil {
		return out, err
	}
	return out, nil
}

// compare decides whether cp may follow old, the last verified
// checkpoint: an *Alarm when it may not, another error when the
// consistency proof could not be computed.
func (mon *Monitor) compare(ctx context.Context, old, cp *verifier.Checkpoint) error {
	switch {
	case cp.Size < old.Size:
		return &Alarm{Kind: Rollback, Detail: fmt.Sprintf("the log's tree size is %d, smaller than the %d verified before (root %s)",
			cp.Size, old.Size, shortRoot(old.Hash))}
	case cp.Size == old.Size && cp.Hash != old.Hash:
		return &Alarm{Kind: Fork, Detail: fmt.Sprintf("tree size %d has root %s, but %s was verified before for the same size",
			cp.Size, shortRoot(cp.Hash), shortRoot(old.Hash))}
	case cp.CosignedAt.Before(old.CosignedAt):
		return &Alarm{Kind: Rollback, Detail: fmt.Sprintf("the checkpoint of size %d is cosigned at %s, before the %s of the one verified before (a stale checkpoint replayed)",
			cp.Size, cp.CosignedAt.Format(time.RFC3339), old.CosignedAt.Format(time.RFC3339))}
	case cp.Size > old.Size:
		proof, err := mon.client.ProveConsistency(ctx, old.Size, cp.Tree())
		if err != nil {
			if strings.Contains(err.Error(), "inconsistent tile") {
				return &Alarm{Kind: BadTiles, Detail: fmt.Sprintf("the tiles served do not match the log's own checkpoint of size %d: %v", cp.Size, err)}
			}
			return fmt.Errorf("couldn't compute the consistency proof from the tiles: %w", err)
		}
		if err := verifier.VerifyConsistency(old.Size, cp.Size, old.Hash, cp.Hash, proof); err != nil {
			return &Alarm{Kind: Fork, Detail: fmt.Sprintf("the tree of size %d (root %s) does not extend the tree of size %d (root %s) verified before: %v",
				cp.Size, shortRoot(cp.Hash), old.Size, shortRoot(old.Hash), err)}
		}
		return mon.readNewLeaves(ctx, old.Size, cp)
	}
	return nil
}

// readNewLeaves reads the leaf records the log added after size from, each
// checked against cp's tree, and refuses a log that holds an entry type
// newer than this version reads: the monitor would otherwise vouch for
// entries whose meaning it cannot know. It returns that refusal as an
// ordinary error, not an Alarm: the log is not misbehaving, this monitor
// is too old. The state is then not replaced, so an upgraded monitor
// reads the same leaves again. (On first use nothing is read: the monitor
// trusts the current checkpoint, and reads what the log adds after it.)
func (mon *Monitor) readNewLeaves(ctx context.Context, from uint64, cp *verifier.Checkpoint) error {
	for _, err := range mon.client.LeafRecords(ctx, cp.Tree(), from, cp.Size) {
		var newer *verifier.UnknownEntryTypeError
		switch {
		case errors.As(err, &newer):
			return fmt.Errorf("monitor refused the log: %w", err)
		case errors.Is(err, verifier.ErrProof):
			return &Alarm{Kind: BadTiles, Detail: fmt.Sprintf("the entries served do not match the log's own checkpoint of size %d: %v", cp.Size, err)}
		case err != nil:
			return fmt.Errorf("couldn't read the leaf records the log added after size %d: %w", from, err)
		}
	}
	return nil
}

// State returns the last verified checkpoint, or nil when the state file
// does not exist yet.
func (mon *Monitor) State() (*verifier.Checkpoint, error) {
	b, err := os.ReadFile(mon.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the state file: %w", err)
	}
	cp, err := verifier.OpenCheckpoint(b, mon.client.Keys)
	if err != nil {
		return nil, fmt.Errorf("the state file %s does not hold a checkpoint of this log signed with the pinned keys "+
			"(another log's state, or damaged; move it away to start over): %w", mon.state, err)
	}
	return cp, nil
}

// saveState replaces the state file with cp's note (mode 0600), so that a
// crash leaves either the old or the new checkpoint.
func (mon *Monitor) saveState(cp *verifier.Checkpoint) error {
	if err := durable.WriteFile(mon.state, cp.Note, 0o600); err != nil {
		return fmt.Errorf("couldn't write the state file: %w", err)
	}
	return nil
}
