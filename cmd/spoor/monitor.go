package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/verifier"
)

// exitMonitorAlarm is the exit status of a monitor that saw a fork, a
// rollback or a bad signature; 1 means it could not run.
const exitMonitorAlarm = 2

// The alarm kinds, also the values of the metrics' kind label.
const (
	alarmFork         = "fork"          // same size with another root, or not an extension
	alarmRollback     = "rollback"      // smaller size, or an older cosignature time for the same tree
	alarmBadSignature = "bad-signature" // the checkpoint does not verify with the pinned keys
	alarmBadTiles     = "bad-tiles"     // the tiles do not match the log's own signed checkpoint
)

var alarmKinds = []string{alarmFork, alarmRollback, alarmBadSignature, alarmBadTiles}

type monitorFlags struct {
	url      string
	vkey     string
	cosVkey  string
	state    string
	interval time.Duration
	once     bool
	metrics  string
	timeout  time.Duration
}

func newMonitorCmd(g *globalFlags) *cobra.Command {
	f := &monitorFlags{}
	cmd := &cobra.Command{
		Use:   "monitor --url URL --vkey KEY|@FILE --cosigner-vkey KEY|@FILE --state FILE",
		Short: "Follow a log's checkpoints and raise the alarm on a fork, a rollback or a bad signature",
		Long: `Follow a Spoor log's /checkpoint and check that each new checkpoint extends
the last one verified.

Each checkpoint must be signed by the pinned log key and cosigned by the pinned
cosigner key. A larger tree must be consistent with the last verified one: the
consistency proof is computed here from the log's public tiles, each tile
authenticated against the new checkpoint, and verified against the old root.
The last verified checkpoint is kept in --state FILE, which is replaced (write
and rename) only after a new checkpoint passed every check; on first use the
log's current checkpoint is trusted and written there.

An alarm (a fork: the same size with another root, or a tree that does not
extend the old one; a rollback: a smaller tree or an older cosignature time;
a bad signature; tiles that do not match the log's own checkpoint) is logged at
level ERROR, counted in the metrics, and ends the monitor with exit status 2.
With --metrics the monitor keeps running after an alarm, so that the alarm
stays visible to Prometheus (spoor_monitor_alarm{kind}), and exits with 2 when
stopped. The state is never replaced by a checkpoint that raised an alarm.
Network errors are retried at the next interval (with --once they exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMonitor(cmd.Context(), g.logger(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "the log's HTTP address (required)")
	fl.StringVar(&f.vkey, "vkey", "", "pinned log verifier key, KEY or @FILE (required)")
	fl.StringVar(&f.cosVkey, "cosigner-vkey", "", "pinned cosigner verifier key, KEY or @FILE (required)")
	fl.StringVar(&f.state, "state", "", "file holding the last verified checkpoint (required)")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "how often to fetch the checkpoint")
	fl.BoolVar(&f.once, "once", false, "check once and exit")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (for example 127.0.0.1:9464)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of one check")
	for _, n := range []string{"url", "vkey", "cosigner-vkey", "state"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// monitorMetrics are the monitor's Prometheus metrics.
type monitorMetrics struct {
	checks     *prometheus.CounterVec
	alarms     *prometheus.CounterVec
	alarm      *prometheus.GaugeVec
	treeSize   prometheus.Gauge
	lastVerify prometheus.Gauge
}

func newMonitorMetrics() *monitorMetrics {
	m := &monitorMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_monitor_checks_total",
			Help: "Checks of the log's checkpoint, by result (ok, alarm, error)."}, []string{"result"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_monitor_alarms_total",
			Help: "Alarms raised, by kind (fork, rollback, bad-signature, bad-tiles)."}, []string{"kind"}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spoor_monitor_alarm",
			Help: "1 while the last check raised an alarm of this kind, else 0."}, []string{"kind"}),
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_monitor_verified_tree_size",
			Help: "Tree size of the last verified checkpoint."}),
		lastVerify: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_monitor_last_verified_timestamp_seconds",
			Help: "When a checkpoint last passed every check (Unix seconds)."}),
	}
	for _, k := range alarmKinds {
		m.alarm.WithLabelValues(k).Set(0)
		m.alarms.WithLabelValues(k)
	}
	for _, r := range []string{"ok", "alarm", "error"} {
		m.checks.WithLabelValues(r)
	}
	return m
}

func (m *monitorMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.checks, m.alarms, m.alarm, m.treeSize, m.lastVerify}
}

// monitorAlarm is a verified sign that the log misbehaves.
type monitorAlarm struct {
	kind string
	msg  string
}

func (a *monitorAlarm) Error() string { return a.kind + ": " + a.msg }

// monitorOutcome is what one check saw.
type monitorOutcome struct {
	// cp is the checkpoint now kept in the state file, on success.
	cp *verifier.Checkpoint
	// first is true when the state file was created (trust on first use).
	first bool
	// grewFrom is the previous verified size.
	grewFrom uint64
}

// monitor checks a log's checkpoints against a state file.
type monitor struct {
	client *verifier.Client
	state  string
	log    *slog.Logger
	m      *monitorMetrics
}

func runMonitor(ctx context.Context, log *slog.Logger, f *monitorFlags) error {
	lv, err := readKeyArg(f.vkey)
	if err != nil {
		return fmt.Errorf("--vkey: %w", err)
	}
	cv, err := readKeyArg(f.cosVkey)
	if err != nil {
		return fmt.Errorf("--cosigner-vkey: %w", err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		return fmt.Errorf("pinned keys: %w", err)
	}
	if f.interval <= 0 {
		return errors.New("--interval must be positive")
	}
	mon := &monitor{
		client: &verifier.Client{URL: f.url, Keys: keys, HTTP: &http.Client{Timeout: f.timeout}},
		state:  f.state, log: log, m: newMonitorMetrics(),
	}
	log.Info("monitor starting", "url", f.url, "log_key", verifier.KeyFingerprint(lv), "cosigner_key", verifier.KeyFingerprint(cv), "state", f.state)

	var srv *http.Server
	if f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(mon.m.collectors()...)
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("couldn't listen for metrics on %s: %w", f.metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("serving monitor metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	}

	var alarmed *monitorAlarm
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, f.timeout)
		_, err := mon.check(cctx)
		cancel()
		var alarm *monitorAlarm
		switch {
		case errors.As(err, &alarm):
			alarmed = alarm
			if f.once || srv == nil {
				return &exitError{code: exitMonitorAlarm, err: fmt.Errorf("ALARM %w", alarm)}
			}
		case err != nil && f.once:
			return err
		case err != nil:
			if ctx.Err() != nil {
				break
			}
			log.Warn("check failed; retrying at the next interval", "err", err)
		case f.once:
			return nil
		}
		select {
		case <-ctx.Done():
			if alarmed != nil {
				return &exitError{code: exitMonitorAlarm, err: fmt.Errorf("stopped after ALARM %w", alarmed)}
			}
			log.Info("monitor stopped")
			return nil
		case <-tick.C:
		}
	}
}

// check fetches the log's checkpoint and checks it against the state
// file. It returns a *monitorAlarm for a verified sign of misbehaviour,
// another error when the check could not be done.
func (mon *monitor) check(ctx context.Context) (*monitorOutcome, error) {
	out, err := mon.checkOnce(ctx)
	var alarm *monitorAlarm
	switch {
	case errors.As(err, &alarm):
		mon.m.checks.WithLabelValues("alarm").Inc()
		mon.m.alarms.WithLabelValues(alarm.kind).Inc()
		for _, k := range alarmKinds {
			v := 0.0
			if k == alarm.kind {
				v = 1
			}
			mon.m.alarm.WithLabelValues(k).Set(v)
		}
		mon.log.Error("ALARM: the log misbehaves", "kind", alarm.kind, "detail", alarm.msg, "url", mon.client.URL)
	case err != nil:
		mon.m.checks.WithLabelValues("error").Inc()
	default:
		mon.m.checks.WithLabelValues("ok").Inc()
		for _, k := range alarmKinds {
			mon.m.alarm.WithLabelValues(k).Set(0)
		}
		mon.m.treeSize.Set(float64(out.cp.Size))
		mon.m.lastVerify.Set(float64(time.Now().Unix()))
		switch {
		case out.first:
			mon.log.Warn("no state yet: trusting the log's current checkpoint (trust on first use)",
				"tree_size", out.cp.Size, "root", shortRoot(out.cp.Hash), "state", mon.state)
		case out.cp.Size > out.grewFrom:
			mon.log.Info("checkpoint verified: consistent with the last one", "tree_size", out.cp.Size,
				"previous_size", out.grewFrom, "root", shortRoot(out.cp.Hash), "cosigned_at", out.cp.CosignedAt)
		default:
			mon.log.Debug("checkpoint unchanged", "tree_size", out.cp.Size, "cosigned_at", out.cp.CosignedAt)
		}
	}
	return out, err
}

func shortRoot(h [32]byte) string { return hex.EncodeToString(h[:8]) }

// checkOnce is one check, without logging or metrics.
func (mon *monitor) checkOnce(ctx context.Context) (*monitorOutcome, error) {
	cp, err := mon.client.Checkpoint(ctx)
	switch {
	case errors.Is(err, verifier.ErrBadSignature), errors.Is(err, verifier.ErrMissingCosignature),
		errors.Is(err, verifier.ErrWrongOrigin), errors.Is(err, verifier.ErrMalformedCheckpoint):
		return nil, &monitorAlarm{kind: alarmBadSignature, msg: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("couldn't fetch the checkpoint: %w", err)
	}
	old, err := mon.loadState()
	if err != nil {
		return nil, err
	}
	if old == nil {
		if err := mon.saveState(cp); err != nil {
			return nil, err
		}
		return &monitorOutcome{cp: cp, first: true}, nil
	}
	switch {
	case cp.Size < old.Size:
		return nil, &monitorAlarm{kind: alarmRollback, msg: fmt.Sprintf("the log's tree size is %d, smaller than the %d verified before (root %s)",
			cp.Size, old.Size, shortRoot(old.Hash))}
	case cp.Size == old.Size && cp.Hash != old.Hash:
		return nil, &monitorAlarm{kind: alarmFork, msg: fmt.Sprintf("tree size %d has root %s, but %s was verified before for the same size",
			cp.Size, shortRoot(cp.Hash), shortRoot(old.Hash))}
	case cp.CosignedAt.Before(old.CosignedAt):
		return nil, &monitorAlarm{kind: alarmRollback, msg: fmt.Sprintf("the checkpoint of size %d is cosigned at %s, before the %s of the one verified before (a stale checkpoint replayed)",
			cp.Size, cp.CosignedAt.Format(time.RFC3339), old.CosignedAt.Format(time.RFC3339))}
	case cp.Size > old.Size:
		proof, err := mon.client.ProveConsistency(ctx, old.Size, cp.Tree())
		if err != nil {
			if strings.Contains(err.Error(), "inconsistent tile") {
				return nil, &monitorAlarm{kind: alarmBadTiles, msg: fmt.Sprintf("the tiles served do not match the log's own checkpoint of size %d: %v", cp.Size, err)}
			}
			return nil, fmt.Errorf("couldn't compute the consistency proof from the tiles: %w", err)
		}
		if err := verifier.VerifyConsistency(old.Size, cp.Size, old.Hash, cp.Hash, proof); err != nil {
			return nil, &monitorAlarm{kind: alarmFork, msg: fmt.Sprintf("the tree of size %d (root %s) does not extend the tree of size %d (root %s) verified before: %v",
				cp.Size, shortRoot(cp.Hash), old.Size, shortRoot(old.Hash), err)}
		}
	}
	if err := mon.saveState(cp); err != nil {
		return nil, err
	}
	return &monitorOutcome{cp: cp, grewFrom: old.Size}, nil
}

// loadState returns the last verified checkpoint, or nil when the state
// file does not exist yet.
func (mon *monitor) loadState() (*verifier.Checkpoint, error) {
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

// saveState replaces the state file with cp's note: written to a temporary
// file in the same folder, synced, then renamed over the old one, so a
// crash leaves either the old or the new checkpoint.
func (mon *monitor) saveState(cp *verifier.Checkpoint) error {
	dir := filepath.Dir(mon.state)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(mon.state)+".*")
	if err != nil {
		return fmt.Errorf("couldn't write the state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(cp.Note); err != nil {
		tmp.Close()
		return fmt.Errorf("couldn't write the state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("couldn't write the state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("couldn't write the state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), mon.state); err != nil {
		return fmt.Errorf("couldn't replace the state file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
