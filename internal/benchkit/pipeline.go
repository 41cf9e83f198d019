package benchkit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/natsserver"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// commitWatch records when each checkpoint size was first seen, so that
// an event's publish-to-checkpoint latency can be read off afterwards from
// its leaf index. A late wake-up only makes latencies longer, never shorter.
type commitWatch struct {
	mu    sync.Mutex
	times []time.Time
	sizes []uint64
	stop  chan struct{}
	done  chan struct{}
}

// watchCommits watches the ledger's signed head, waking on every commit.
func watchCommits(l *ledger.Ledger) *commitWatch { return watchHeads(l, l.Head, 0) }

// watchHeads watches the head that head returns, waking on every commit
// and, if poll is not 0, every poll as well: the witnessed head is stored
// through the sequencer and published only after that commit's wake-up,
// so without polling it would be seen one commit late (or, when the load
// has ended, never).
func watchHeads(l *ledger.Ledger, head func() *ledger.Head, poll time.Duration) *commitWatch {
	w := &commitWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var tick <-chan time.Time
		if poll > 0 {
			t := time.NewTicker(poll)
			defer t.Stop()
			tick = t.C
		}
		var last uint64
		for {
			// Take the channel before reading the head: no commit is missed.
			ch := l.Committed()
			if h := head(); h != nil && h.Size > last {
				last = h.Size
				w.mu.Lock()
				w.times = append(w.times, time.Now())
				w.sizes = append(w.sizes, h.Size)
				w.mu.Unlock()
			}
			select {
			case <-ch:
			case <-tick:
			case <-w.stop:
				return
			case <-l.Done():
				return
			}
		}
	}()
	return w
}

func (w *commitWatch) close() { close(w.stop); <-w.done }

// at returns when leaf idx was first seen in a checkpoint.
func (w *commitWatch) at(idx uint64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.Search(len(w.sizes), func(i int) bool { return w.sizes[i] > idx })
	if i == len(w.sizes) {
		return time.Time{}, false
	}
	return w.times[i], true
}

// indexHeadsIn counts the index heads (entry type 5) among leaves [from,
// to): the subject index's, one per batch that changed it.
func indexHeadsIn(ctx context.Context, l *ledger.Ledger, from, to uint64) (int, error) {
	n := 0
	for i := from; i < to; i++ {
		rec, err := l.LeafRecord(ctx, i)
		if err != nil {
			return 0, fmt.Errorf("leaf %d: %w", i, err)
		}
		if rec.Type == verifier.EntryIndexHead {
			n++
		}
	}
	return n, nil
}

// sample is one event whose latency is measured.
type sample struct {
	id    uuid.UUID
	party string
	pub   time.Time
}

// pipelineRig is the embedded default of `spoor serve`: NATS JetStream,
// Pebble, the ledger and ingest in one process.
type pipelineRig struct {
	ns     *natsserver.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	store  *pebblestore.Store
	l      *ledger.Ledger
	cancel context.CancelFunc
	ingest chan error
	watch  *commitWatch
	// witnessed watches the witnessed head, when witnesses run.
	witnessed *commitWatch
	pubs      []*asyncPublisher
	reg       *prometheus.Registry
	// releaseMerkle releases the ledger's Merkle backend, after the ledger.
	releaseMerkle func()
}

// Commits describes the sequencer's commits during a phase, from the
// ledger's own metrics.
type Commits struct {
	Commits   int     `json:"commits"`
	MeanBatch float64 `json:"mean_batch_entries"`
	// MeanCommitMs is the Store.Commit (fsync) time, MeanSequenceMs the
	// whole of a batch (sequencing, signing, commit).
	MeanCommitMs   float64 `json:"mean_commit_ms"`
	MeanSequenceMs float64 `json:"mean_sequence_ms"`
}

type histTotals struct {
	batchCount                  uint64
	batchSum, commitSum, seqSum float64
}

func (p *pipelineRig) totals() histTotals {
	var t histTotals
	mfs, err := p.reg.Gather()
	if err != nil {
		return t
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			switch mf.GetName() {
			case "spoor_ledger_batch_entries":
				t.batchCount, t.batchSum = h.GetSampleCount(), h.GetSampleSum()
			case "spoor_ledger_commit_seconds":
				t.commitSum = h.GetSampleSum()
			case "spoor_ledger_sequence_seconds":
				t.seqSum = h.GetSampleSum()
			}
		}
	}
	return t
}

func commitsBetween(a, b histTotals) Commits {
	n := b.batchCount - a.batchCount
	if n == 0 {
		return Commits{}
	}
	f := float64(n)
	return Commits{Commits: int(n), MeanBatch: (b.batchSum - a.batchSum) / f,
		MeanCommitMs: 1000 * (b.commitSum - a.commitSum) / f, MeanSequenceMs: 1000 * (b.seqSum - a.seqSum) / f}
}

func (r *rig) startPipeline(ctx context.Context) (*pipelineRig, error) {
	d := datadir.Dir(r.dir)
	return r.startPipelineIn(ctx, d.Ledger(), d.NATS(), nil)
}

// startPipelineIn starts the pipeline with its ledger in ledgerDir and its
// NATS store in natsDir. With cov (a later covenant version), the ledger
// first logs the demo's version 1 and is opened again on cov, as a log
// takes on a new version; it then runs on the tiles in Pebble whatever the
// Merkle backend of the run.
func (r *rig) startPipelineIn(ctx context.Context, ledgerDir, natsDir string, cov *events.SignedCovenant) (*pipelineRig, error) {
	p := &pipelineRig{releaseMerkle: func() {}}
	var m ledger.MerkleBackend
	var err error
	if cov == nil {
		if m, p.releaseMerkle, err = r.merkle(ctx); err != nil {
			return nil, err
		}
		cov = r.demo.Signed
	} else {
		l, s, err := r.openLedgerWith(ctx, ledgerDir, nil, r.demo.Signed)
		if err != nil {
			return nil, err
		}
		err = l.Close()
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("couldn't close the ledger on covenant version 1: %w", err)
		}
	}
	if p.l, p.store, err = r.openLedgerWith(ctx, ledgerDir, m, cov); err != nil {
		p.close()
		return nil, err
	}
	if p.ns, err = startNATS(natsDir); err != nil {
		p.close()
		return nil, err
	}
	if p.nc, err = nats.Connect(p.ns.ClientURL(), nats.InProcessServer(p.ns), nats.Name("spoor-ledger")); err != nil {
		p.close()
		return nil, fmt.Errorf("couldn't connect the ledger to NATS: %w", err)
	}
	if p.js, err = jetstream.New(p.nc); err != nil {
		p.close()
		return nil, err
	}
	if err := natsbus.EnsureStreams(ctx, p.js, r.parties, natsbus.StreamConfig{}); err != nil {
		p.close()
		return nil, err
	}
	for range r.cfg.Publishers {
		pub, err := newAsyncPublisher(p.ns)
		if err != nil {
			p.close()
			return nil, err
		}
		p.pubs = append(p.pubs, pub)
	}
	in := ingest.New(ingest.Config{Ledger: p.l, JS: p.js, Logger: r.cfg.Logger})
	ictx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.ingest = make(chan error, 1)
	go func() { p.ingest <- in.Run(ictx) }()
	p.watch = watchCommits(p.l)
	p.reg = prometheus.NewRegistry()
	for _, c := range p.l.Metrics() {
		if err := p.reg.Register(c); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// stopBus stops ingest and NATS; the ledger stays open for reads.
func (p *pipelineRig) stopBus() error {
	var err error
	if p.cancel != nil {
		p.cancel()
		err = <-p.ingest
		p.cancel = nil
	}
	for _, pub := range p.pubs {
		pub.nc.Close()
	}
	p.pubs = nil
	if p.nc != nil {
		p.nc.Close()
		p.nc = nil
	}
	if p.ns != nil {
		p.ns.Shutdown()
		p.ns = nil
	}
	return err
}

func (p *pipelineRig) close() {
	_ = p.stopBus()
	if p.watch != nil {
		p.watch.close()
		p.watch = nil
	}
	if p.witnessed != nil {
		p.witnessed.close()
		p.witnessed = nil
	}
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	if p.store != nil {
		p.store.Close()
		p.store = nil
	}
	if p.releaseMerkle != nil {
		p.releaseMerkle()
		p.releaseMerkle = nil
	}
}

// publishRun publishes events [from, to) of ef and waits until all of
// them are in a checkpoint. rate 0 is full load: every publisher as fast as
// the window allows; otherwise one publisher paces the events at rate per
// second. Every sampleEvery-th event's publish time is kept.
func (r *rig) publishRun(ctx context.Context, p *pipelineRig, ef *eventFile, from, to int, rate float64, window, sampleEvery int) (time.Duration, time.Duration, []sample, error) {
	n := to - from
	// With the subject index each batch also logs an index head: the
	// events are the growth less the heads committed meanwhile.
	base, baseHeads := p.l.Head().Size, p.l.IndexHeadsCommitted()
	var published atomic.Int64
	committed := func() int64 {
		// The size first: the ledger counts a head before it publishes
		// the size that holds it, so this never counts an event twice.
		size := p.l.Head().Size
		return int64(size-base) - int64(p.l.IndexHeadsCommitted()-baseHeads)
	}

	type chunk struct {
		first int
		evs   []signedEvent
	}
	// At full load each publisher takes a chunk and sends it as batch
	// messages per party (see messagesOf, which the stages use too).
	batch := 1
	if rate == 0 {
		batch = r.cfg.PublishBatch
	}
	chunkSize := publishChunk(batch)
	chunks := make(chan chunk, 8)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		var c chunk
		err := ef.read(rctx, from, to, func(i int, e signedEvent) error {
			if c.evs == nil {
				c = chunk{first: i, evs: make([]signedEvent, 0, chunkSize)}
			}
			c.evs = append(c.evs, e)
			if len(c.evs) == cap(c.evs) {
				select {
				case chunks <- c:
				case <-rctx.Done():
					return rctx.Err()
				}
				c = chunk{}
			}
			return nil
		})
		if err == nil && len(c.evs) > 0 {
			select {
			case chunks <- c:
			case <-rctx.Done():
			}
		}
		readErr <- err
	}()

	pubs := p.pubs
	if rate > 0 {
		pubs = pubs[:1]
	}
	samples := make([][]sample, len(pubs))
	errs := make([]error, len(pubs))
	w := startWindow()
	start := w.start
	var wg sync.WaitGroup
	for pi, pub := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) { errs[pi] = err; cancel() }
			for c := range chunks {
				// Each event's place in the run, for pacing and sampling.
				place := make(map[uuid.UUID]int, len(c.evs))
				for k, e := range c.evs {
					place[e.id] = c.first + k - from
				}
				for _, msg := range batchByParty(c.evs, batch) {
					if rate > 0 {
						i := place[msg[0].id]
						if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
							time.Sleep(d)
						}
					} else {
						for published.Load()+int64(len(msg))-committed() > int64(window) {
							ch := p.l.Committed()
							if published.Load()+int64(len(msg))-committed() <= int64(window) {
								break
							}
							select {
							case <-ch:
							case <-rctx.Done():
								fail(rctx.Err())
								return
							}
						}
					}
					now := time.Now()
					for _, e := range msg {
						if place[e.id]%sampleEvery == 0 {
							samples[pi] = append(samples[pi], sample{id: e.id, party: e.party, pub: now})
						}
					}
					published.Add(int64(len(msg)))
					if err := pub.publishBatch(rctx, natsbus.DisclosureSubject(msg[0].party), natsbus.Stream, msg); err != nil {
						fail(err)
						return
					}
				}
				r.prog.set(committed())
			}
			errs[pi] = pub.finish(rctx)
		}()
	}
	// Wait for the commits while the publishers run, so progress shows them.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	lastSize, lastMove := int64(-1), time.Now()
	for committed() < int64(n) {
		ch := p.l.Committed()
		if c := committed(); c >= int64(n) {
			break
		} else if c != lastSize {
			lastSize, lastMove = c, time.Now()
			r.prog.set(c)
		}
		// A Merkle backend may take one batch well over a minute on a
		// loaded machine (it has two minutes before the sequencer halts).
		stall := time.Minute
		if r.cfg.Merkle != nil {
			stall = 3 * time.Minute
		}
		if time.Since(lastMove) > stall {
			cancel()
			<-done
			err := fmt.Errorf("no commit for %s at %d of %d events (published %d)", stall, committed(), n, published.Load())
			if e := errors.Join(errs...); e != nil {
				err = fmt.Errorf("%w: %w", err, e)
			}
			return 0, 0, nil, err
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		case err := <-p.ingest:
			p.ingest <- err // for stopBus
			cancel()
			<-done
			return 0, 0, nil, fmt.Errorf("ingest stopped: %w", err)
		case <-ctx.Done():
			cancel()
			<-done
			return 0, 0, nil, ctx.Err()
		}
	}
	wall, cpu := w.stop()
	r.prog.set(int64(n))
	<-done
	if err := errors.Join(errs...); err != nil {
		return 0, 0, nil, err
	}
	if err := <-readErr; err != nil {
		return 0, 0, nil, err
	}
	// With the subject index each batch also logs an index head; the
	// events are the rest of the growth.
	end := p.l.Head().Size
	heads, err := indexHeadsIn(ctx, p.l, base, end)
	if err != nil {
		return 0, 0, nil, err
	}
	if got := int64(end-base) - int64(heads); got != int64(n) {
		return 0, 0, nil, fmt.Errorf("the log grew by %d entries (%d index heads) for %d events", end-base, heads, n)
	}
	// The watcher sees a commit a moment after the head moves: let it
	// catch up with the last one before latencies are read off it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, ok := p.watch.at(end - 1); ok {
			break
		}
	}
	// The end is when the last event was first seen in a checkpoint.
	if t, ok := p.watch.at(end - 1); ok {
		wall = t.Sub(start)
	}
	var all []sample
	for _, s := range samples {
		all = append(all, s...)
	}
	return wall, cpu, all, nil
}

// latencies turns samples into publish-to-checkpoint durations.
func latencies(ctx context.Context, p *pipelineRig, samples []sample) ([]time.Duration, error) {
	return latenciesTo(ctx, p, p.watch, samples)
}

// latenciesTo turns samples into durations from publish to the first head
// seen by w that covers each event.
func latenciesTo(ctx context.Context, p *pipelineRig, w *commitWatch, samples []sample) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		idx, err := p.l.LookupEvent(ctx, s.party, s.id.String())
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", s.id, err)
		}
		t, ok := w.at(idx)
		if !ok {
			return nil, fmt.Errorf("event %s at leaf %d was never seen in a checkpoint", s.id, idx)
		}
		out = append(out, t.Sub(s.pub))
	}
	return out, nil
}

// pipeline runs the full path at full load and at the fixed offered load,
// then measures inzage, the audit and the resources on the ledger it built.
func (r *rig) pipeline(ctx context.Context, ef *eventFile, rep *Report) error {
	p, err := r.startPipeline(ctx)
	if err != nil {
		return err
	}
	defer p.close()
	n := r.cfg.Events
	pl := &rep.Pipeline
	pl.Events, pl.Publishers, pl.Window, pl.PublishBatch = n, r.cfg.Publishers, r.cfg.Window, r.cfg.PublishBatch

	r.prog.phase("pipeline: full load", int64(n))
	sampleEvery := max(1, n/100000)
	before := p.totals()
	wall, cpu, samples, err := r.publishRun(ctx, p, ef, 0, n, 0, r.cfg.Window, sampleEvery)
	pl.Commits = commitsBetween(before, p.totals())
	r.prog.end()
	if err != nil {
		return fmt.Errorf("full load: %w", err)
	}
	pl.Seconds, pl.EventsPerSec, pl.CPUMicros = wall.Seconds(), perSec(n, wall), micros(cpu, n)
	if rep.Ceilings.Composed > 0 {
		pl.RatioComposed = pl.EventsPerSec / rep.Ceilings.Composed
	}
	if rep.Ceilings.Lowest > 0 {
		pl.RatioLowest = pl.EventsPerSec / rep.Ceilings.Lowest
	}
	ds, err := latencies(ctx, p, samples)
	if err != nil {
		return err
	}
	pl.Latency = latencyOf(ds)

	// The offered load twice: right after the full load, while Pebble
	// compacts what the burst wrote on the same two cores; and once the
	// store is compacted, the steady state a ledger is in when no burst
	// has just ended.
	m := rep.OfferedEvents
	if m > 0 {
		if pl.Offered, err = r.offered(ctx, p, ef, n, m, "right after the full load"); err != nil {
			return err
		}
	}
	if err := r.inzage(ctx, p.l, rep, false); err != nil {
		return fmt.Errorf("inzage: %w", err)
	}
	if err := r.compact(ctx, p); err != nil {
		return fmt.Errorf("compaction: %w", err)
	}
	if m > 0 {
		if pl.OfferedCompacted, err = r.offered(ctx, p, ef, n+m, m, "compacted store"); err != nil {
			return err
		}
	}
	if err := r.inzage(ctx, p.l, rep, true); err != nil {
		return fmt.Errorf("inzage after compaction: %w", err)
	}

	// What the bus holds once ingest has acked everything.
	s, err := p.js.Stream(ctx, natsbus.Stream)
	if err != nil {
		return err
	}
	_ = waitEmpty(ctx, s, 10*time.Second)
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	rep.Resources.NATSStreamMsgs, rep.Resources.NATSStreamBytes = info.State.Msgs, info.State.Bytes
	if rs, err := p.js.Stream(ctx, natsbus.RejectedStream); err == nil {
		if ri, err := rs.Info(ctx); err == nil {
			pl.Rejected = ri.State.Msgs
		}
	}
	if err := p.stopBus(); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if rep.Resources.NATSDirBytes, err = dirBytes(datadir.Dir(r.dir).NATS()); err != nil {
		return err
	}

	if err := r.audit(ctx, p.l, rep); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return r.disk(ctx, p, ef, rep)
}

// offered publishes events [from, from+m) of ef at the configured rate and
// measures each one's publish-to-checkpoint latency.
func (r *rig) offered(ctx context.Context, p *pipelineRig, ef *eventFile, from, m int, when string) (Offered, error) {
	r.prog.phase(fmt.Sprintf("pipeline: %d events/s offered, %s", r.cfg.OfferedRate, when), int64(m))
	before := p.totals()
	wall, _, samples, err := r.publishRun(ctx, p, ef, from, from+m, float64(r.cfg.OfferedRate), 0, 1)
	commits := commitsBetween(before, p.totals())
	r.prog.end()
	if err != nil {
		return Offered{}, fmt.Errorf("offered load, %s: %w", when, err)
	}
	ds, err := latencies(ctx, p, samples)
	if err != nil {
		return Offered{}, err
	}
	return Offered{Rate: float64(r.cfg.OfferedRate), Events: m, AchievedRate: perSec(m, wall), Latency: latencyOf(ds), Commits: commits}, nil
}
