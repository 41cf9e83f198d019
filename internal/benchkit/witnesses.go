package benchkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// Witnessing is (g): the full pipeline with a k-of-n witness policy in its
// covenant and a witnessing.Witnesser beside the ledger, the witnesses real
// Spoor witnesses (package witness, their state written with fsync) behind
// real HTTP servers on loopback, in this process.
type Witnessing struct {
	Witnesses int `json:"witnesses"`
	Quorum    int `json:"quorum"`
	// IntervalMs is the Witnesser's least time between two rounds.
	IntervalMs float64 `json:"interval_ms"`
	// Events is the number of full-load events of each of the three runs.
	Events int `json:"events"`
	// WithoutBefore and WithoutAfter are the full load without witnesses
	// (the demo covenant, no Witnesser), on a fresh ledger each, run just
	// before and just after With, on a fresh ledger with witnesses.
	WithoutBefore float64 `json:"full_load_without_before_events_per_sec"`
	With          float64 `json:"full_load_with_events_per_sec"`
	WithoutAfter  float64 `json:"full_load_without_after_events_per_sec"`
	// Ratio is With over the mean of the two runs without.
	Ratio float64 `json:"ratio_with_to_without"`
	// FullLoadWitnessed is publish-to-witnessed-checkpoint at full load.
	FullLoadWitnessed Latency `json:"latency_to_witnessed_full_load"`
	// Offered is the fixed offered load on the ledger with witnesses,
	// once its store is compacted; its Latency is publish-to-checkpoint
	// (the signed head) and OfferedWitnessed publish to the first
	// witnessed checkpoint that covers the event.
	Offered          Offered `json:"offered_load"`
	OfferedWitnessed Latency `json:"latency_to_witnessed_offered_load"`
	// Rounds are the Witnesser's rounds during the offered load.
	Rounds Rounds `json:"rounds_offered_load"`
}

// Rounds describes the Witnesser's rounds during a phase, from its own
// metrics.
type Rounds struct {
	// Witnessed counts the rounds whose cosignatures met the quorum and
	// were stored; Other the rest (quorum not met, store failed).
	Witnessed int `json:"witnessed"`
	Other     int `json:"other"`
	// MeanGatherMs is the time from sending a checkpoint to the quorum.
	MeanGatherMs float64 `json:"mean_gather_ms"`
}

// String summarises the rounds.
func (r Rounds) String() string {
	return fmt.Sprintf("witnessing rounds: %d witnessed, %d not; %.2f ms from sending to the quorum on average",
		r.Witnessed, r.Other, r.MeanGatherMs)
}

// benchWitness is one Spoor witness serving on loopback.
type benchWitness struct {
	name, vkey, url string
	w               *witness.Witness
	srv             *http.Server
	served          chan error
}

// startWitnesses starts n witnesses of the log logCfg, each with its key
// and state in a folder of its own under dir and its HTTP server on a free
// loopback port. On an error those already started are stopped.
func startWitnesses(dir string, n int, logCfg witness.LogConfig, logger *slog.Logger) ([]*benchWitness, error) {
	var ws []*benchWitness
	for i := range n {
		w, err := startWitness(filepath.Join(dir, fmt.Sprintf("w%d", i+1)), fmt.Sprintf("w%d", i+1), logCfg, logger)
		if err != nil {
			stopWitnesses(ws)
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func startWitness(dir, name string, logCfg witness.LogConfig, logger *slog.Logger) (*benchWitness, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness %s: %w", name, err)
	}
	skey, vkey, err := verifier.GenerateWitnessKey("spoor-bench.example/" + name)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", name, err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", name, err)
	}
	w, err := witness.New(witness.Config{Signer: signer, VKey: vkey, Logs: []witness.LogConfig{logCfg},
		StateDir: dir, Logger: logger.With("witness", name)})
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("witness %s: %w", name, err)
	}
	bw := &benchWitness{name: name, vkey: vkey, url: "http://" + ln.Addr().String(), w: w,
		srv: &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second}, served: make(chan error, 1)}
	go func() { bw.served <- bw.srv.Serve(ln) }()
	return bw, nil
}

// stopWitnesses stops the servers and closes the witnesses; those
// stopped already are skipped.
func stopWitnesses(ws []*benchWitness) error {
	var errs []error
	for _, w := range ws {
		if w.srv == nil {
			continue
		}
		_ = w.srv.Close()
		w.srv = nil
		if err := <-w.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("witness %s: %w", w.name, err))
		}
		if err := w.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("witness %s: %w", w.name, err))
		}
	}
	return errors.Join(errs...)
}

// witnessPolicy is the C2SP tlog-policy text for the log with logVkey in
// which k of ws must cosign.
func witnessPolicy(logVkey string, k int, ws []*benchWitness) string {
	members := make([]events.PolicyMember, len(ws))
	for i, w := range ws {
		members[i] = events.PolicyMember{Name: w.name, VKey: w.vkey, URL: w.url}
	}
	return events.ThresholdPolicy(logVkey, "bench", k, members)
}

// witnessing runs (g): the full load without witnesses, with, and without
// again, each on a fresh ledger (the ratio compares the one with the mean
// of the two without, so that a machine that slows down or speeds up over
// the phase does not decide it); then, on the ledger with witnesses, its
// store compacted, the fixed offered load, timing each event from publish
// to its signed checkpoint and to the first witnessed checkpoint that
// covers it.
func (r *rig) witnessing(ctx context.Context, ef *eventFile, rep *Report) error {
	n := r.cfg.Events
	out := &Witnessing{Witnesses: r.cfg.Witnesses, Quorum: r.cfg.Quorum,
		IntervalMs: float64(r.cfg.WitnessInterval) / float64(time.Millisecond), Events: n}
	rep.Witnessing = out
	ws, err := startWitnesses(filepath.Join(r.dir, "witnesses"), r.cfg.Witnesses,
		witness.LogConfig{Origin: r.origin, VKey: r.logVkey}, r.cfg.Logger)
	if err != nil {
		return err
	}
	defer stopWitnesses(ws)
	cov, err := r.demo.CovenantWithPolicy(witnessPolicy(r.logVkey, r.cfg.Quorum, ws))
	if err != nil {
		return err
	}

	if out.WithoutBefore, err = r.witnessFullLoad(ctx, ef, "without witnesses (before)", nil, nil); err != nil {
		return err
	}
	if out.With, err = r.witnessFullLoad(ctx, ef, "with witnesses", cov, out); err != nil {
		return err
	}
	if out.WithoutAfter, err = r.witnessFullLoad(ctx, ef, "without witnesses (after)", nil, nil); err != nil {
		return err
	}
	if mean := (out.WithoutBefore + out.WithoutAfter) / 2; mean > 0 {
		out.Ratio = out.With / mean
	}
	return stopWitnesses(ws)
}

// witnessFullLoad runs the full load of events [0, Events) on a fresh
// ledger and returns its events/s. With cov (the covenant naming the
// witnesses) a Witnesser runs beside the ledger, and the latencies to
// witnessed checkpoints and the offered load go into out.
func (r *rig) witnessFullLoad(ctx context.Context, ef *eventFile, what string, cov *events.SignedCovenant, out *Witnessing) (float64, error) {
	dir, err := os.MkdirTemp(r.dir, "witnesses-run-")
	if err != nil {
		return 0, fmt.Errorf("witnesses, %s: %w", what, err)
	}
	defer os.RemoveAll(dir)
	p, err := r.startPipelineIn(ctx, filepath.Join(dir, "ledger"), filepath.Join(dir, "nats"), cov)
	if err != nil {
		return 0, fmt.Errorf("witnesses, %s: %w", what, err)
	}
	defer p.close()
	var wit *witnessing.Witnesser
	if cov != nil {
		var stop func()
		if wit, stop, err = r.startWitnesser(p); err != nil {
			return 0, fmt.Errorf("witnesses, %s: %w", what, err)
		}
		defer stop()
	}

	n := r.cfg.Events
	r.prog.phase("witnesses: full load "+what, int64(n))
	sampleEvery := max(1, n/100000)
	wall, _, samples, err := r.publishRun(ctx, p, ef, 0, n, 0, r.cfg.Window, sampleEvery)
	r.prog.end()
	if err != nil {
		return 0, fmt.Errorf("witnesses, full load %s: %w", what, err)
	}
	rate := perSec(n, wall)
	if cov == nil {
		return rate, nil
	}
	if out.FullLoadWitnessed, err = r.witnessedLatency(ctx, p, samples); err != nil {
		return 0, fmt.Errorf("witnesses, full load: %w", err)
	}
	m := min(n, int(float64(r.cfg.OfferedRate)*r.cfg.OfferedSeconds))
	if m == 0 {
		return rate, nil
	}
	// The offered load's targets are judged on a compacted store, as (b)'s.
	if err := r.compact(ctx, p); err != nil {
		return 0, fmt.Errorf("witnesses, compaction: %w", err)
	}
	r.prog.phase(fmt.Sprintf("witnesses: %d events/s offered", r.cfg.OfferedRate), int64(m))
	before, beforeRounds := p.totals(), p.rounds()
	wall, _, samples, err = r.publishRun(ctx, p, ef, n, n+m, float64(r.cfg.OfferedRate), 0, 1)
	r.prog.end()
	if err != nil {
		return 0, fmt.Errorf("witnesses, offered load: %w", err)
	}
	commits := commitsBetween(before, p.totals())
	ds, err := latencies(ctx, p, samples)
	if err != nil {
		return 0, err
	}
	out.Offered = Offered{Rate: float64(r.cfg.OfferedRate), Events: m, AchievedRate: perSec(m, wall), Latency: latencyOf(ds), Commits: commits}
	if out.OfferedWitnessed, err = r.witnessedLatency(ctx, p, samples); err != nil {
		return 0, fmt.Errorf("witnesses, offered load: %w", err)
	}
	out.Rounds = roundsBetween(beforeRounds, p.rounds())
	// The bench checks its own result, as the audit does (b)'s: the
	// witnessed head must meet the covenant's policy for a verifier.
	if err := checkWitnessed(p.l, r.keys); err != nil {
		return 0, fmt.Errorf("witnesses: %w", err)
	}
	// Honest witnesses of an honest log raise no alarm; one here is a bug.
	for name, err := range wit.Alarms() {
		return 0, fmt.Errorf("witnesses: alarm from witness %s: %w", name, err)
	}
	return rate, nil
}

// startWitnesser runs a Witnesser beside p's ledger, as serve does on the
// active, with its collectors in p's registry and its watch of the
// witnessed head in p.witnessed; stop ends it.
func (r *rig) startWitnesser(p *pipelineRig) (wit *witnessing.Witnesser, stop func(), err error) {
	if pol, err := p.l.WitnessPolicy(); err != nil || pol == nil {
		return nil, nil, fmt.Errorf("the covenant in force has no witness policy (%v)", err)
	}
	wit, err = witnessing.New(witnessing.Config{Ledger: p.l, Interval: r.cfg.WitnessInterval, Logger: r.cfg.Logger})
	if err != nil {
		return nil, nil, err
	}
	for _, c := range wit.Metrics() {
		if err := p.reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	p.witnessed = watchHeads(p.l, p.l.WitnessedHead, witnessPoll)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	return wit, func() { cancel(); <-done }, nil
}

// witnessPoll is how often the witnessed head is looked at between
// commits: latencies to it are late by at most this much.
const witnessPoll = time.Millisecond

// witnessedLatency waits until a witnessed checkpoint covers the whole log
// and returns the samples' latencies from publish to the first witnessed
// checkpoint that covers each.
func (r *rig) witnessedLatency(ctx context.Context, p *pipelineRig, samples []sample) (Latency, error) {
	last := p.l.Head().Size - 1
	limit := witnessWait + 4*r.cfg.WitnessInterval
	deadline := time.Now().Add(limit)
	for {
		if _, ok := p.witnessed.at(last); ok {
			break
		}
		if time.Now().After(deadline) {
			w := p.l.WitnessedHead()
			var size uint64
			if w != nil {
				size = w.Size
			}
			return Latency{}, fmt.Errorf("no witnessed checkpoint covered leaf %d within %s (the witnessed head has size %d)", last, limit, size)
		}
		select {
		case <-ctx.Done():
			return Latency{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	ds, err := latenciesTo(ctx, p, p.witnessed, samples)
	if err != nil {
		return Latency{}, err
	}
	return latencyOf(ds), nil
}

// witnessWait bounds the wait for the last event's witnessed checkpoint,
// beyond a few rounds.
const witnessWait = 30 * time.Second

type roundTotals struct {
	witnessed, other float64
	gatherCount      uint64
	gatherSum        float64
}

// rounds reads the Witnesser's counters from p's registry.
func (p *pipelineRig) rounds() roundTotals {
	var t roundTotals
	mfs, err := p.reg.Gather()
	if err != nil {
		return t
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "spoor_witnessing_rounds_total":
				v := m.GetCounter().GetValue()
				result := ""
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "result" {
						result = lp.GetValue()
					}
				}
				if result == "witnessed" {
					t.witnessed += v
				} else {
					t.other += v
				}
			case "spoor_witnessing_gather_seconds":
				h := m.GetHistogram()
				t.gatherCount, t.gatherSum = h.GetSampleCount(), h.GetSampleSum()
			}
		}
	}
	return t
}

func roundsBetween(a, b roundTotals) Rounds {
	r := Rounds{Witnessed: int(b.witnessed - a.witnessed), Other: int(b.other - a.other)}
	if n := b.gatherCount - a.gatherCount; n > 0 {
		r.MeanGatherMs = 1000 * (b.gatherSum - a.gatherSum) / float64(n)
	}
	return r
}

// checkWitnessed checks l's witnessed head against the witness policy in
// force with the verifier's own code.
func checkWitnessed(l *ledger.Ledger, keys *verifier.LogKeys) error {
	w := l.WitnessedHead()
	if w == nil {
		return errors.New("no witnessed checkpoint")
	}
	policy, err := l.WitnessPolicy()
	if err != nil || policy == nil {
		return fmt.Errorf("the covenant in force has no usable witness policy (%v)", err)
	}
	cp, err := verifier.OpenCheckpoint(w.Note, keys)
	if err != nil {
		return fmt.Errorf("the witnessed checkpoint of size %d does not open: %w", w.Size, err)
	}
	if _, err := verifier.CheckWitnessPolicy(cp, policy); err != nil {
		return fmt.Errorf("the witnessed checkpoint of size %d does not meet the policy: %w", w.Size, err)
	}
	return nil
}
