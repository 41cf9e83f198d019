package benchkit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natsserver"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// The bench's own stream for the JetStream stage, configured like SPOOR.
const (
	stageStream   = "SPOOR_BENCH"
	stageSubjects = "spoorbench.>"
	stagePrefix   = "spoorbench."
)

// stages measures each stage alone on a sample of the events, and returns
// the sample opened (the log core's pool).
func (r *rig) stages(ctx context.Context, ef *eventFile, rep *Report) ([]ledger.Submission, error) {
	var sample []signedEvent
	err := ef.read(ctx, 0, r.cfg.StageSample, func(_ int, e signedEvent) error {
		sample = append(sample, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	js, err := r.stageJetStream(ctx, sample, r.cfg.PublishBatch)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	if r.cfg.PublishBatch > 1 {
		// What the bus costs without batches, for comparison (the offered
		// load publishes so); not part of the ceilings.
		single, err := r.stageJetStream(ctx, sample, 1)
		if err != nil {
			return nil, fmt.Errorf("JetStream, one event per message: %w", err)
		}
		rep.JetStreamSingle = &single
	}
	// The open stage is the shortest (well under a second here) and the
	// audit is compared with it, so it is measured three times and the
	// median taken: one run moved between 54,000 and 81,000 events/s on
	// the same code.
	var opens []Stage
	var subs []ledger.Submission
	for range 3 {
		st, s, err := r.stageOpen(sample)
		if err != nil {
			return nil, fmt.Errorf("envelope open: %w", err)
		}
		opens, subs = append(opens, st), s
	}
	slices.SortFunc(opens, func(a, b Stage) int { return cmp.Compare(a.Rate, b.Rate) })
	open := opens[1]
	open.What += fmt.Sprintf(" (the median of three runs: %.0f, %.0f, %.0f events/s)", opens[0].Rate, opens[1].Rate, opens[2].Rate)
	pb, err := r.stagePebble(ctx, subs)
	if err != nil {
		return nil, fmt.Errorf("Pebble: %w", err)
	}
	lh := r.stageLeafHash(sample)
	rep.Stages = []Stage{js, open, pb, lh}

	c := &rep.Ceilings
	c.Cores = runtime.GOMAXPROCS(0)
	for _, s := range rep.Stages {
		c.CPUMicros += s.CPUMicros
		if c.LowestStage == "" || s.Rate < c.Lowest {
			c.Lowest, c.LowestStage = s.Rate, s.Name
		}
	}
	if c.CPUMicros > 0 {
		c.Composed = float64(c.Cores) * 1e6 / c.CPUMicros
	}
	return subs, nil
}

// startNATS starts an embedded JetStream server with its store in dir,
// listening on a free loopback port (publishers connect over TCP, as an
// organisation's system would).
func startNATS(dir string) (*natsserver.Server, error) {
	return natsserver.Start(natsserver.Config{Name: "spoor-bench", StoreDir: dir})
}

// asyncPublisher publishes pre-signed envelopes on one connection with
// asynchronous acks, as natsbus.Publisher does (same headers).
type asyncPublisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	failed atomic.Int64
	mu     sync.Mutex
	first  error
}

func newAsyncPublisher(ns *natsserver.Server) (*asyncPublisher, error) {
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("spoor-bench-publisher"))
	if err != nil {
		return nil, fmt.Errorf("couldn't connect a publisher: %w", err)
	}
	p := &asyncPublisher{nc: nc}
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(time.Minute),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.failed.Add(1)
			p.mu.Lock()
			if p.first == nil {
				p.first = err
			}
			p.mu.Unlock()
		}))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("couldn't open JetStream: %w", err)
	}
	return p, nil
}

// publish sends one envelope on subject, waiting while too many acks are
// outstanding.
func (p *asyncPublisher) publish(ctx context.Context, subject, stream string, e signedEvent) error {
	m := nats.NewMsg(subject)
	m.Data = e.env
	m.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(e.id.String(), e.env))
	m.Header.Set(jetstream.ExpectedStreamHeader, stream)
	return p.send(ctx, m)
}

// send publishes m, waiting while too many acks are outstanding.
func (p *asyncPublisher) send(ctx context.Context, m *nats.Msg) error {
	for {
		_, err := p.js.PublishMsgAsync(m)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return fmt.Errorf("publish: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// publishBatch sends evs (one party's) as one message on subject: a batch
// message (natsbus.BatchMessage) when there are several, the single
// envelope otherwise. Over 1 MiB, the same events go in two messages
// (natsbus.SplitWhenTooLarge).
func (p *asyncPublisher) publishBatch(ctx context.Context, subject, stream string, evs []signedEvent) error {
	return natsbus.SplitWhenTooLarge(evs, func(evs []signedEvent) error {
		if len(evs) == 1 {
			return p.publish(ctx, subject, stream, evs[0])
		}
		envs := make([][]byte, len(evs))
		for i, e := range evs {
			envs[i] = e.env
		}
		m, err := natsbus.BatchMessage(evs[0].party, envs)
		if err != nil {
			return err
		}
		// The stage publishes on a stream of its own.
		m.Subject = subject
		m.Header.Set(jetstream.ExpectedStreamHeader, stream)
		return p.send(ctx, m)
	})
}

// publishChunk is how many events a full-load publisher takes at a time
// and cuts into batch messages per party (batchByParty): enough for the
// busy parties' messages to fill, few enough that a publisher does not sit
// on events for long.
func publishChunk(batch int) int {
	if batch <= 1 {
		return 256
	}
	return max(256, 16*batch)
}

// messagesOf cuts evs into the messages full-load publishers send: chunks
// of publishChunk events, each cut by batchByParty.
func messagesOf(evs []signedEvent, batch int) [][]signedEvent {
	var out [][]signedEvent
	for len(evs) > 0 {
		n := min(len(evs), publishChunk(batch))
		out = append(out, batchByParty(evs[:n], batch)...)
		evs = evs[n:]
	}
	return out
}

// batchByParty cuts evs into messages of at most n events of one party
// each, keeping each party's order; a message is sent once it is full or
// when evs ends.
func batchByParty(evs []signedEvent, n int) [][]signedEvent {
	var out [][]signedEvent
	open := map[string]int{} // party -> index in out of its message being filled
	for _, e := range evs {
		i, ok := open[e.party]
		if !ok || len(out[i]) == n {
			out = append(out, make([]signedEvent, 0, n))
			i = len(out) - 1
			open[e.party] = i
		}
		out[i] = append(out[i], e)
	}
	return out
}

// perMessageAvg is perMessage with the average of events over msgs.
func perMessageAvg(batch, events, msgs int) string {
	if batch <= 1 || msgs == 0 {
		return perMessage(batch)
	}
	return fmt.Sprintf("%s, %.1f on average", perMessage(batch), float64(events)/float64(msgs))
}

// perMessage says how many events a message carries.
func perMessage(batch int) string {
	if batch <= 1 {
		return "one event per message"
	}
	return fmt.Sprintf("batch messages of up to %d events", batch)
}

// finish waits for every ack and reports the first failure.
func (p *asyncPublisher) finish(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := p.failed.Load(); n > 0 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("%d publishes failed, the first with: %w", n, p.first)
	}
	return nil
}

// stageJetStream publishes the sample with concurrent publishers while the
// ledger's kind of consumer (durable pull, explicit acks) drains it, until
// the work-queue stream is empty again.
func (r *rig) stageJetStream(ctx context.Context, sample []signedEvent, batch int) (Stage, error) {
	st := Stage{Name: "jetstream", Events: len(sample),
		What: fmt.Sprintf("async publish (%d connections, %s) and durable pull consume with explicit acks, together, until the stream is empty",
			r.cfg.Publishers, perMessage(batch))}
	ns, err := startNATS(filepath.Join(r.dir, "nats-stage"))
	if err != nil {
		return st, err
	}
	defer func() { ns.Shutdown(); os.RemoveAll(filepath.Join(r.dir, "nats-stage")) }()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		return st, fmt.Errorf("couldn't connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return st, err
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stageStream, Subjects: []string{stageSubjects}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: 1, Discard: jetstream.DiscardNew, MaxBytes: -1, MaxMsgs: -1,
		MaxMsgSize: 1 << 20, Duplicates: natsbus.DefaultDuplicates,
	})
	if err != nil {
		return st, fmt.Errorf("couldn't create the stage stream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stageStream, jetstream.ConsumerConfig{
		Durable: "bench", DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: natsbus.DefaultAckWait, MaxDeliver: -1, MaxAckPending: natsbus.DefaultMaxAckPending,
	})
	if err != nil {
		return st, fmt.Errorf("couldn't create the stage consumer: %w", err)
	}
	pubs := make([]*asyncPublisher, r.cfg.Publishers)
	for i := range pubs {
		if pubs[i], err = newAsyncPublisher(ns); err != nil {
			return st, err
		}
		defer pubs[i].nc.Close()
	}

	msgs := messagesOf(sample, batch)
	st.What = fmt.Sprintf("async publish (%d connections, %s) and durable pull consume with explicit acks, together, until the stream is empty",
		r.cfg.Publishers, perMessageAvg(batch, len(sample), len(msgs)))
	r.prog.phase("stage: jetstream", int64(len(msgs)))
	w := startWindow()
	consumed := make(chan error, 1)
	go func() { consumed <- r.consumeStage(cons, len(msgs)) }()
	var wg sync.WaitGroup
	errs := make([]error, len(pubs))
	for pi, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := pi; i < len(msgs); i += len(pubs) {
				if err := p.publishBatch(ctx, stagePrefix+msgs[i][0].party, stageStream, msgs[i]); err != nil {
					errs[pi] = err
					return
				}
			}
			errs[pi] = p.finish(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	if err := <-consumed; err != nil {
		return st, fmt.Errorf("consume: %w", err)
	}
	if err := waitEmpty(ctx, s, 30*time.Second); err != nil {
		return st, err
	}
	wall, cpu := w.stop()
	r.prog.end()
	st.Rate, st.WallSeconds, st.CPUMicros = perSec(len(sample), wall), wall.Seconds(), micros(cpu, len(sample))
	return st, nil
}

// consumeStage pulls and acks n messages from cons. Like ingest, it starts
// a fresh pull iterator on the same durable consumer when one reports
// missed heartbeats (a pull request the server dropped, as it may under
// this much load), a few times at most; whatever was delivered and not
// acked comes again after the ack wait.
func (r *rig) consumeStage(cons jetstream.Consumer, n int) error {
	const retries = 5
	for done, tries := 0, 0; done < n; {
		it, err := cons.Messages(jetstream.PullMaxBytes(8 << 20))
		if err != nil {
			return err
		}
		for done < n {
			m, err := it.Next()
			if err != nil {
				it.Stop()
				if errors.Is(err, jetstream.ErrNoHeartbeat) && tries < retries {
					tries++
					break
				}
				return err
			}
			if err := m.Ack(); err != nil {
				it.Stop()
				return err
			}
			done++
			r.prog.add(1)
		}
		if done == n {
			it.Stop()
		}
	}
	return nil
}

// waitEmpty waits until a work-queue stream holds no message (every ack
// has been processed).
func waitEmpty(ctx context.Context, s jetstream.Stream, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
		if info.State.Msgs == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stream %s still holds %d messages after %s", info.Config.Name, info.State.Msgs, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stageOpen opens every sample envelope on every core, exactly as ingest
// does: events.Open (strict JSON profile, canonical payload, validation,
// key in force, Ed25519 with crypto/ed25519) and the covenant rules.
func (r *rig) stageOpen(sample []signedEvent) (Stage, []ledger.Submission, error) {
	st := Stage{Name: "open", Events: len(sample),
		What: fmt.Sprintf("events.OpenMany per message, as ingest (JSON, validation, one Ed25519 batch), and Covenant.Check on %d workers", runtime.GOMAXPROCS(0))}
	cov := r.covenant()
	subs := make([]ledger.Submission, len(sample))
	errs := make([]error, len(sample))
	// The messages the publishers send: ingest opens a batch message's
	// envelopes together (events.OpenMany, one signature batch), a single
	// one with events.Open.
	at := make(map[uuid.UUID]int, len(sample))
	for i, e := range sample {
		at[e.id] = i
	}
	var msgs [][]int // indices into sample
	for _, m := range messagesOf(sample, r.cfg.PublishBatch) {
		idx := make([]int, len(m))
		for k, e := range m {
			idx[k] = at[e.id]
		}
		msgs = append(msgs, idx)
	}
	r.prog.phase("stage: open", int64(len(sample)))
	w := startWindow()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m := int(next.Add(1) - 1)
				if m >= len(msgs) {
					return
				}
				envs := make([][]byte, len(msgs[m]))
				for k, i := range msgs[m] {
					envs[k] = sample[i].env
				}
				outs := events.OpenMany(envs, r.origin, cov)
				for k, i := range msgs[m] {
					if errs[i] = outs[k].Err; errs[i] == nil {
						d := outs[k].Disclosure
						subs[i] = ledger.Submission{Envelope: sample[i].env, Disclosure: d, Findings: cov.Check(d)}
					}
				}
				r.prog.set(done.Add(int64(len(envs))))
			}
		}()
	}
	wg.Wait()
	wall, cpu := w.stop()
	r.prog.set(int64(len(sample)))
	r.prog.end()
	for i, err := range errs {
		if err != nil {
			return st, nil, fmt.Errorf("synthetic event %d does not open: %w", i, err)
		}
	}
	st.Rate, st.WallSeconds, st.CPUMicros = perSec(len(sample), wall), wall.Seconds(), micros(cpu, len(sample))
	return st, subs, nil
}

// stagePebble measures the store alone with the ledger's real keys: the
// sample is sequenced into a scratch ledger (untimed), every key and value
// it wrote is read back, and the same pairs are written to a fresh store
// in Sync batches of 1024 events' worth, each batch a slice of every table
// (as one sequencer batch touches every table), through the ledger's own
// Store.Commit.
func (r *rig) stagePebble(ctx context.Context, subs []ledger.Submission) (Stage, error) {
	const perBatch = 1024
	st := Stage{Name: "pebble", Events: len(subs),
		What: fmt.Sprintf("Store.Commit with Sync of the keys and values the ledger writes, %d events per batch", perBatch)}
	scratch := filepath.Join(r.dir, "stage-ledger")
	l, s, err := r.openLedger(ctx, scratch)
	if err != nil {
		return st, err
	}
	r.prog.phase("stage: pebble (prepare)", int64(len(subs)))
	for i := 0; i < len(subs); i += perBatch {
		p, err := l.Submit(ctx, subs[i:min(i+perBatch, len(subs))])
		if err == nil {
			_, err = p.Wait(ctx)
		}
		if err != nil {
			l.Close()
			s.Close()
			return st, err
		}
		r.prog.add(int64(min(perBatch, len(subs)-i)))
	}
	r.prog.end()
	if err := l.Close(); err != nil {
		s.Close()
		return st, err
	}
	// Every table's pairs, in key order.
	var tables [][]ledger.Op
	var last byte
	err = s.Scan(ctx, []byte{0}, nil, func(k, v []byte) error {
		if len(tables) == 0 || k[0] != last {
			tables = append(tables, nil)
			last = k[0]
		}
		t := &tables[len(tables)-1]
		*t = append(*t, ledger.Op{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		return nil
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, err
	}
	if err := os.RemoveAll(scratch); err != nil {
		return st, err
	}
	nb := (len(subs) + perBatch - 1) / perBatch
	batches := make([]ledger.Batch, nb)
	for _, t := range tables {
		for j := range nb {
			batches[j].Ops = append(batches[j].Ops, t[len(t)*j/nb:len(t)*(j+1)/nb]...)
		}
	}
	tables = nil

	dir := filepath.Join(r.dir, "stage-pebble")
	ps, err := pebblestore.Open(dir, pebblestore.Config{})
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(dir)
	defer ps.Close()
	r.prog.phase("stage: pebble", int64(len(subs)))
	w := startWindow()
	for j := range batches {
		if err := ps.Commit(ctx, &batches[j]); err != nil {
			return st, err
		}
		r.prog.add(int64(len(subs)*(j+1)/nb) - int64(len(subs)*j/nb))
	}
	wall, cpu := w.stop()
	r.prog.end()
	st.Rate, st.WallSeconds, st.CPUMicros = perSec(len(subs), wall), wall.Seconds(), micros(cpu, len(subs))
	return st, nil
}

// stageLeafHash measures what the sequencer hashes per event, on one
// goroutine as the sequencer does: the envelope's SHA-256, the leaf record,
// its RFC 6962 leaf hash and the compact-range append.
func (r *rig) stageLeafHash(sample []signedEvent) Stage {
	st := Stage{Name: "leaf-hash", Events: len(sample),
		What: "SHA-256 of the envelope, leaf record, leaf hash, compact-range append (one goroutine)"}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	now := time.Now().UTC().Truncate(time.Millisecond)
	r.prog.phase("stage: leaf hashing", int64(len(sample)))
	w := startWindow()
	for _, e := range sample {
		rec := verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: sha256.Sum256(e.env), IntegratedAt: now}
		b, err := rec.MarshalBinary()
		if err != nil {
			continue
		}
		h := verifier.LeafHash(b)
		_ = rng.Append(h[:], nil)
	}
	wall, cpu := w.stop()
	r.prog.set(int64(len(sample)))
	r.prog.end()
	st.Rate, st.WallSeconds, st.CPUMicros = perSec(len(sample), wall), wall.Seconds(), micros(cpu, len(sample))
	return st
}
