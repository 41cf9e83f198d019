// Package ingest moves disclosure events from NATS JetStream into the
// ledger, and answers publishers' receipt requests.
//
// Data flow: the ledger's durable pull consumer on the SPOOR stream is read
// continuously; messages are gathered into batches, opened and checked in
// parallel (strict envelope, signature by the key in force, origin, subject
// party = discloser; covenant findings), and handed to the sequencer with
// ledger.Submit. Only when the sequencer has committed the batch durably
// are the messages acknowledged: a crash before that redelivers them, and
// the ledger's event-id index turns the redelivery into a duplicate. Refused
// events are recorded (status API) in the same commit, then reported on the
// party's rejections subject, then terminated.
package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/ledger"
)

// Config configures ingest. Ledger and JS are required.
type Config struct {
	Ledger *ledger.Ledger
	JS     jetstream.JetStream
	// Batch is the most messages handed to the sequencer at once; 0 means 1024.
	Batch int
	// Linger is how long a batch waits for more messages; 0 means 1ms.
	Linger time.Duration
	// Workers open envelopes in parallel; 0 means GOMAXPROCS.
	Workers int
	// InFlight is how many batches may await their commit at once; 0 means
	// 64. At a moderate rate batches are small (what arrives within
	// Linger), and the sequencer takes every waiting batch into one commit:
	// too low a bound caps the rate at InFlight small batches per commit.
	InFlight int
	Logger   *slog.Logger
}

// Ingest is a running ingest loop.
type Ingest struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// New prepares ingest; Run starts it.
func New(cfg Config) *Ingest {
	if cfg.Batch <= 0 {
		cfg.Batch = 1024
	}
	if cfg.Linger <= 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 64
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ingest{cfg: cfg, log: logger, metrics: newMetrics()}
}

// Metrics returns ingest's collectors for main to register.
func (in *Ingest) Metrics() []prometheus.Collector { return in.metrics.collectors() }

// Run consumes until ctx ends or the ledger stops. It returns nil on a
// clean stop (ctx cancelled) and the cause otherwise.
func (in *Ingest) Run(ctx context.Context) error {
	cons, err := in.cfg.JS.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		return fmt.Errorf("couldn't bind the ledger consumer %s/%s: %w", natsbus.Stream, natsbus.LedgerConsumer, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2*in.cfg.Batch), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("couldn't start consuming: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	msgs := make(chan jetstream.Msg, 2*in.cfg.Batch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
					return
				}
				in.log.Warn("fetching from JetStream failed; retrying", "err", err)
				select {
				case <-time.After(100 * time.Millisecond):
					continue
				case <-ctx.Done():
					return
				}
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()

	// Batches are committed in order; acks happen in a separate goroutine
	// per batch, bounded by InFlight, so fetching and opening the next
	// batch overlaps with the commit of this one.
	slots := make(chan struct{}, in.cfg.InFlight)
	var runErr error
	var errOnce sync.Once
	setErr := func(err error) {
		errOnce.Do(func() { runErr = err; cancel() })
	}
	for {
		batch, ok := in.gather(ctx, msgs)
		if len(batch) > 0 {
			subs := in.open(batch)
			p, err := in.cfg.Ledger.Submit(ctx, subs)
			if err != nil {
				if ctx.Err() == nil {
					setErr(fmt.Errorf("couldn't submit to the sequencer: %w", err))
				}
				break
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				if err := in.finish(ctx, p, batch, subs); err != nil {
					setErr(err)
				}
			}()
		}
		if !ok {
			break
		}
	}
	cancel()
	wg.Wait()
	return runErr
}

// gather collects up to Batch messages, waiting at most Linger after the
// first. ok is false when the source is closed.
func (in *Ingest) gather(ctx context.Context, msgs <-chan jetstream.Msg) ([]jetstream.Msg, bool) {
	var batch []jetstream.Msg
	select {
	case m, ok := <-msgs:
		if !ok {
			return nil, false
		}
		batch = append(batch, m)
	case <-ctx.Done():
		return nil, false
	}
	timer := time.NewTimer(in.cfg.Linger)
	defer timer.Stop()
	for len(batch) < in.cfg.Batch {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch, false
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// open checks every message in parallel and returns one Submission each.
func (in *Ingest) open(batch []jetstream.Msg) []ledger.Submission {
	subs := make([]ledger.Submission, len(batch))
	sc, _ := in.cfg.Ledger.Covenant()
	cov := sc.Covenant
	origin := in.cfg.Ledger.Origin()
	var wg sync.WaitGroup
	next := make(chan int, len(batch))
	for i := range batch {
		next <- i
	}
	close(next)
	for range min(in.cfg.Workers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				subs[i] = openOne(batch[i], origin, cov)
				if d := subs[i].Disclosure; d != nil && d.Corrects != "" {
					subs[i].Findings = append(subs[i].Findings, in.checkCorrection(d)...)
				}
			}
		}()
	}
	wg.Wait()
	return subs
}

func openOne(m jetstream.Msg, origin string, cov *events.Covenant) ledger.Submission {
	data := m.Data()
	party, perr := natsbus.PartyOfSubject(m.Subject())
	d, _, err := events.Open(data, origin, cov)
	if perr != nil {
		err = &events.RejectError{Reason: events.ReasonWrongSubject, Err: perr}
	} else if err == nil && d.Discloser != party {
		err = &events.RejectError{Reason: events.ReasonWrongSubject,
			Err: fmt.Errorf("published on the subject of party %q but the discloser is %q", party, d.Discloser)}
	}
	if err != nil {
		var re *events.RejectError
		if !errors.As(err, &re) {
			re = &events.RejectError{Reason: events.ReasonMalformed, Err: err}
		}
		id := bestEffortID(data)
		return ledger.Submission{Reject: &ledger.Rejection{EventID: id, Party: party, Reason: re.Reason,
			Message: re.Error(), At: time.Now().UTC()}}
	}
	return ledger.Submission{Envelope: data, Disclosure: d, Findings: cov.Check(d)}
}

// checkCorrection checks that a correction (AVG art. 16) references an
// earlier logged event of the same discloser; if not, that is a finding
// for the FG, not a rejection.
func (in *Ingest) checkCorrection(d *events.Disclosure) []events.Finding {
	ctx := context.Background()
	l := in.cfg.Ledger
	idx, err := l.LookupEvent(ctx, d.Corrects)
	if err != nil {
		return []events.Finding{{Rule: events.RuleCorrectionUnknown, Field: "corrects",
			Message: "the corrected event is not in the log"}}
	}
	env, err := l.Entry(ctx, idx)
	if err != nil {
		// Erased since: the correction stands on its own.
		return nil
	}
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return nil
	}
	orig, err := events.DecodeDisclosure(e.Payload)
	if err == nil && orig.Discloser != d.Discloser {
		return []events.Finding{{Rule: events.RuleCorrectionOtherDiscloser, Field: "corrects",
			Message: "the corrected event was disclosed by another party"}}
	}
	return nil
}

// bestEffortID digs the event id out of a refused envelope, so the party can
// be told which event it was. It returns "" when there is none to find.
func bestEffortID(env []byte) string {
	var w struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(env, &w) != nil {
		return ""
	}
	payload, err := base64.StdEncoding.DecodeString(w.Payload)
	if err != nil {
		return ""
	}
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &p) != nil || !events.ValidEventID(p.ID) {
		return ""
	}
	return p.ID
}

// finish waits for the commit and then acknowledges: stored and duplicate
// events are acked; refused ones are reported and terminated.
func (in *Ingest) finish(ctx context.Context, p *ledger.Pending, batch []jetstream.Msg, subs []ledger.Submission) error {
	outcomes, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		// Not committed: leave every message unacknowledged so JetStream
		// redelivers it to the next ledger process.
		return fmt.Errorf("sequencer failed; %d messages left unacknowledged: %w", len(batch), err)
	}
	// The batch is durable; a crash from here on redelivers its messages,
	// which the ledger recognises as duplicates.
	crashpoint.Hit(crashpoint.AfterCommit)
	for i, m := range batch {
		if i == len(batch)/2 {
			crashpoint.Hit(crashpoint.MidAck)
		}
		o := outcomes[i]
		var re *events.RejectError
		switch {
		case o.Err == nil:
			if o.Duplicate {
				in.metrics.duplicates.Inc()
			} else {
				in.metrics.committed.Inc()
			}
			if err := m.Ack(); err != nil {
				in.log.Warn("ack failed; the message will be redelivered and recognised as a duplicate", "err", err)
			}
		case errors.As(o.Err, &re):
			in.metrics.rejected.WithLabelValues(string(re.Reason)).Inc()
			rej := natsbus.Rejection{Party: partyOf(m), Reason: re.Reason, Message: re.Error(), At: time.Now().UTC()}
			if s := subs[i].Reject; s != nil {
				rej.EventID = s.EventID
			} else if subs[i].Disclosure != nil {
				rej.EventID = subs[i].Disclosure.ID
			}
			if h := m.Headers(); h != nil {
				rej.MsgID = h.Get(jetstream.MsgIDHeader)
			}
			if !events.ValidPartyID(rej.Party) {
				// The subject names no party (spoor.disclosures.a.b), so
				// there is no party's rejections subject to report on; the
				// status API has the record. Left unacknowledged, the
				// message would be redelivered forever.
				if err := m.Term(); err != nil {
					in.log.Warn("term failed", "err", err)
				}
				in.log.Warn("event rejected on a subject that names no party", "event_id", rej.EventID, "reason", re.Reason)
				continue
			}
			if err := natsbus.PublishRejection(ctx, in.cfg.JS, rej); err != nil {
				// Keep the message: it will be redelivered, refused again
				// and reported then.
				in.log.Warn("couldn't report a rejection; leaving the message for redelivery", "reason", re.Reason, "err", err)
				continue
			}
			if err := m.Term(); err != nil {
				in.log.Warn("term failed", "err", err)
			}
			in.log.Info("event rejected", "party", rej.Party, "event_id", rej.EventID, "reason", re.Reason)
		default:
			return fmt.Errorf("unexpected outcome: %w", o.Err)
		}
	}
	return nil
}

func partyOf(m jetstream.Msg) string {
	p, _ := natsbus.PartyOfSubject(m.Subject())
	return p
}
