// Package witnessing sends the ledger's published checkpoints to the
// witnesses of the covenant's witness policy and stores the cosignatures
// that meet its quorum as the ledger's witnessed head.
//
// Data flow: the ledger commits a batch and publishes its signed head
// (after the Store commit and, with replication, after the SPOOR_LOG
// quorum acknowledged it); Run wakes on that, and when the head grew the
// tree (or, idle, once a minute) hands it to witness/client's Gather,
// which asks every witness of the policy in parallel with a consistency
// proof from the size each holds. When the cosignatures meet the quorum,
// Run stores the checkpoint with them (ledger.PutWitnessed: durable, and
// on SPOOR_LOG for the standbys), and the read API serves it as
// /checkpoint. The sequencer never waits on any of this.
//
// Pacing: one Gather at a time (so at most one add-checkpoint in flight per
// witness), at most one per Interval, and always the newest head: heads
// published while a Gather runs are skipped, not queued. A standby sends
// nothing; after a promotion the new active's client starts from old 0 and
// learns each witness's size from its 409.
//
// Alarms: a witness that answers 422, or 409 without a usable size, holds
// another tree at a size this log has (a fork alarm); one that holds a
// size beyond the log's tree cosigned a tree this ledger does not have (a
// rollback alarm: a backup restored behind the witnesses, or another
// signer with this log's key). Each alarm is an ERROR log line, a metric by
// witness, and makes Health report degraded; a rollback alarm also stops
// sending until the log has grown to the size the witness holds. A
// witness that is merely away is counted, not alarmed on; Health reports
// degraded when the log grew and no checkpoint was witnessed for longer
// than MaxAge.
package witnessing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness/client"
)

// Defaults of Config.
const (
	DefaultInterval = 250 * time.Millisecond
	DefaultIdle     = time.Minute
	DefaultMaxAge   = 60 * time.Second
)

// Config configures a Witnesser.
type Config struct {
	Ledger *ledger.Ledger
	// Interval is the least time between two rounds of add-checkpoint
	// requests; 0 means DefaultInterval.
	Interval time.Duration
	// Idle is how often a head that did not grow is sent again, so that
	// the witnesses' times stay fresh; 0 means DefaultIdle.
	Idle time.Duration
	// Timeout bounds each request to one witness; 0 means
	// client.DefaultTimeout.
	Timeout time.Duration
	// MaxAge is how long the witnessed head may lag the signed head
	// before Health reports degraded; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnAlarm, if set, is told of each fork or rollback alarm once, when
	// it is raised (kind "fork" or "rollback"; witnessSize is the size
	// the witness holds, or the checkpoint's for a fork), so that the FG
	// is notified (ledger/notify). It is called with the Witnesser's lock
	// held: it must not block on the network (the notifier only writes
	// its outbox).
	OnAlarm func(kind, witness string, logSize, witnessSize uint64)
}

// Witnesser runs the witnessing loop for one ledger.
type Witnesser struct {
	cfg     Config
	l       *ledger.Ledger
	log     *slog.Logger
	metrics *metrics

	mu sync.Mutex
	// policyText is the policy the client was made for: a new covenant
	// version with another policy makes a new client.
	policyText string
	client     *client.Client
	// alarms holds the open alarm of each witness; failing the witnesses
	// whose last answer was no cosignature (logged once per outage).
	alarms  map[string]error
	failing map[string]bool
	// holdBelow, after a rollback alarm, is the size the log must reach
	// before anything is sent again.
	holdBelow uint64
	// witnessedAt is when the last witnessed head was stored (at New:
	// the start, so that a restart is not degraded before its first
	// round).
	witnessedAt time.Time
	lastSent    time.Time
	lastSize    uint64
	sentOnce    bool
}

// New returns a Witnesser for cfg.
func New(cfg Config) (*Witnesser, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("witnessing: Config needs a Ledger")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Witnesser{cfg: cfg, l: cfg.Ledger, log: logger, metrics: newMetrics(), alarms: map[string]error{}, failing: map[string]bool{},
		witnessedAt: cfg.Now()}, nil
}

// Run sends checkpoints to witnesses until ctx ends or the ledger stops.
// It returns nil then; it never stops the ledger.
func (w *Witnesser) Run(ctx context.Context) error {
	idle := time.NewTimer(w.cfg.Idle)
	defer idle.Stop()
	var lastErr string
	var lastLogged time.Time
	for {
		committed := w.l.Committed()
		started := time.Now()
		if err := w.round(ctx); err != nil && ctx.Err() == nil {
			// Once a minute while it keeps failing the same way, not
			// every round.
			if msg := err.Error(); msg != lastErr || time.Since(lastLogged) >= time.Minute {
				w.log.Warn("witnessing round failed", "err", err)
				lastErr, lastLogged = msg, time.Now()
			}
		} else if err == nil && lastErr != "" {
			lastErr = ""
		}
		// Pace: at most one round per Interval, counted from the start of
		// the last one, so that a round's own time is not added to it.
		wait := time.NewTimer(time.Until(started.Add(w.cfg.Interval)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-w.l.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.l.Done():
			return nil
		case <-committed:
		case <-idle.C:
			idle.Reset(w.cfg.Idle)
		}
	}
}

// round sends the newest head to the witnesses if it should be sent, and
// stores the cosignatures when they meet the quorum.
func (w *Witnesser) round(ctx context.Context) error {
	if w.l.Standby() {
		return nil
	}
	policy, perr := w.l.WitnessPolicy()
	if perr != nil {
		return fmt.Errorf("witnessing: the covenant's witness policy does not parse: %w", perr)
	}
	if policy == nil {
		return nil
	}
	h := w.l.Head()
	if h == nil {
		return nil
	}
	c, err := w.clientFor(policy)
	if err != nil {
		return err
	}
	w.mu.Lock()
	now := w.cfg.Now()
	hold := w.holdBelow
	due := !w.sentOnce || h.Size > w.lastSize || now.Sub(w.lastSent) >= w.cfg.Idle
	if wh := w.l.WitnessedHead(); wh != nil && wh.Seq == h.Seq {
		due = false // this very checkpoint is witnessed
	}
	w.mu.Unlock()
	if !due {
		return nil
	}
	if h.Size < hold {
		return fmt.Errorf("witnessing: not sending: a witness holds size %d, the log has %d (rollback alarm)", hold, h.Size)
	}
	cp, err := verifier.OpenCheckpoint(h.Note, w.l.Keys())
	if err != nil {
		return fmt.Errorf("witnessing: the signed head does not open: %w", err)
	}
	start := time.Now()
	res, gerr := c.Gather(ctx, cp, h.Size)
	w.metrics.gatherSeconds.Observe(time.Since(start).Seconds())
	w.mu.Lock()
	w.lastSent, w.lastSize, w.sentOnce = w.cfg.Now(), h.Size, true
	w.mu.Unlock()
	if res != nil {
		w.account(res, h.Size)
	}
	if gerr != nil {
		w.metrics.rounds.WithLabelValues("quorum_not_met").Inc()
		return gerr
	}
	// The witnesses hold this checkpoint now; until PutWitnessed returns,
	// the ledger does not. A crash here leaves the witnesses ahead of the
	// stored witnessed head, which the next run must take calmly (a 409
	// with this size, then a cosignature of the same tree).
	crashpoint.Hit(crashpoint.WitnessedBeforeStore)
	var lines []byte
	for _, cs := range res.Cosignatures {
		lines = append(lines, cs.Lines...)
	}
	if err := w.l.PutWitnessed(ctx, h, lines); err != nil {
		w.metrics.rounds.WithLabelValues("store_failed").Inc()
		return err
	}
	w.metrics.rounds.WithLabelValues("witnessed").Inc()
	w.mu.Lock()
	w.witnessedAt = w.cfg.Now()
	w.mu.Unlock()
	return nil
}

// clientFor returns the client for policy, making a new one when the
// covenant's policy changed.
func (w *Witnesser) clientFor(policy *events.WitnessPolicy) (*client.Client, error) {
	text := policyKey(policy)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client != nil && w.policyText == text {
		return w.client, nil
	}
	c, err := client.New(client.Config{
		Policy:     policy,
		Proof:      w.l.ConsistencyProof,
		HTTPClient: w.cfg.HTTPClient,
		Timeout:    w.cfg.Timeout,
	})
	if err != nil {
		return nil, err
	}
	w.client, w.policyText = c, text
	// Alarms were about the old witnesses; the new set starts clean.
	clear(w.alarms)
	return c, nil
}

// policyKey identifies a policy's witnesses and quorum.
func policyKey(p *events.WitnessPolicy) string {
	s := p.Quorum
	for _, wt := range p.Witnesses {
		s += "\n" + wt.Name + " " + wt.VKey + " " + wt.URL
	}
	for _, g := range p.Groups {
		s += fmt.Sprintf("\n%s %d %v", g.Name, g.Threshold, g.Members)
	}
	return s
}

// account records each witness's answer: alarms raised (and logged) or
// cleared, outcomes counted.
func (w *Witnesser) account(res *client.GatherResult, logSize uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cs := range res.Cosignatures {
		w.metrics.answers.WithLabelValues(cs.Witness, "cosigned").Inc()
		if w.failing[cs.Witness] {
			delete(w.failing, cs.Witness)
			w.log.Info("witness cosigns again", "witness", cs.Witness)
		}
		if _, open := w.alarms[cs.Witness]; open {
			w.log.Info("witness cosigns again; its alarm is cleared", "witness", cs.Witness)
			delete(w.alarms, cs.Witness)
		}
	}
	for name, err := range res.Errors {
		var fork *client.ForkAlarm
		var rollback *client.RollbackAlarm
		switch {
		case errors.As(err, &fork):
			w.metrics.answers.WithLabelValues(name, "fork_alarm").Inc()
			if _, open := w.alarms[name]; open {
				continue // logged and counted when it was raised
			}
			w.metrics.alarms.WithLabelValues(name, "fork").Inc()
			w.alarms[name] = err
			w.log.Error("FORK ALARM: a witness holds another tree at a size this log has; each new checkpoint is still sent to it, and the alarm stays until it cosigns again",
				"witness", name, "status", fork.Status, "old_size", fork.OldSize, "size", fork.Size)
			if w.cfg.OnAlarm != nil {
				w.cfg.OnAlarm("fork", name, logSize, fork.Size)
			}
		case errors.As(err, &rollback):
			w.metrics.answers.WithLabelValues(name, "rollback_alarm").Inc()
			w.holdBelow = max(w.holdBelow, rollback.WitnessSize)
			if _, open := w.alarms[name]; open {
				continue
			}
			w.metrics.alarms.WithLabelValues(name, "rollback").Inc()
			w.alarms[name] = err
			w.log.Error("ROLLBACK ALARM: a witness cosigned a tree larger than this log's; nothing is sent until the log is replayed to at least that size",
				"witness", name, "witness_size", rollback.WitnessSize, "log_size", logSize)
			if w.cfg.OnAlarm != nil {
				w.cfg.OnAlarm("rollback", name, logSize, rollback.WitnessSize)
			}
		default:
			w.metrics.answers.WithLabelValues(name, "failed").Inc()
			// Once per outage, not once per round (four a second).
			if !w.failing[name] {
				w.failing[name] = true
				w.log.Warn("witness gave no cosignature; told again when it answers", "witness", name, "err", err)
			} else {
				w.log.Debug("witness gave no cosignature", "witness", name, "err", err)
			}
		}
	}
}

// ErrDegraded is wrapped by Health's error.
var ErrDegraded = errors.New("witnessing degraded")

// Health returns nil when witnessing is well, or an error wrapping
// ErrDegraded naming why: an open fork or rollback alarm, or a witnessed
// head that has lagged the signed head for longer than MaxAge. Without a
// policy it is always nil.
func (w *Witnesser) Health() error {
	if p, perr := w.l.WitnessPolicy(); p == nil && perr == nil {
		return nil
	}
	h, wh := w.l.Head(), w.l.WitnessedHead()
	w.mu.Lock()
	defer w.mu.Unlock()
	var reasons []error
	names := make([]string, 0, len(w.alarms))
	for name := range w.alarms {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		reasons = append(reasons, w.alarms[name])
	}
	behind := h != nil && (wh == nil || wh.Size < h.Size)
	if age := w.cfg.Now().Sub(w.witnessedAt); behind && age > w.cfg.MaxAge {
		reasons = append(reasons, fmt.Errorf("no witnessed checkpoint for %s while the log grew", age.Round(time.Second)))
	}
	if len(reasons) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrDegraded, errors.Join(reasons...))
}

// Alarms returns the open alarm of each witness, by name.
func (w *Witnesser) Alarms() map[string]error {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]error, len(w.alarms))
	for k, v := range w.alarms {
		out[k] = v
	}
	return out
}

// Metrics returns the Witnesser's collectors for main to register.
func (w *Witnesser) Metrics() []prometheus.Collector {
	m := w.metrics
	return []prometheus.Collector{m.rounds, m.answers, m.alarms, m.gatherSeconds}
}

type metrics struct {
	rounds        *prometheus.CounterVec
	answers       *prometheus.CounterVec
	alarms        *prometheus.CounterVec
	gatherSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_witnessing_rounds_total",
			Help: "Rounds of add-checkpoint requests, by result (witnessed, quorum_not_met, store_failed)."}, []string{"result"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_witnessing_answers_total",
			Help: "Answers from each witness, by outcome (cosigned, failed, fork_alarm, rollback_alarm)."}, []string{"witness", "outcome"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_witnessing_alarms_total",
			Help: "Fork and rollback alarms raised, by witness and kind."}, []string{"witness", "kind"}),
		gatherSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spoor_witnessing_gather_seconds",
			Help: "Time from sending a checkpoint to the witnesses to the quorum (or giving up).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
}
