// Package ingest moves disclosure events from NATS JetStream into the
// ledger, and answers publishers' receipt requests.
//
// Data flow: the ledger's durable pull consumer on the SPOOR stream is read
// continuously; a pool of workers opens and checks each message as it
// arrives (each envelope of a batch message, natsbus.BatchHeader, on its
// own: strict envelope, signature by the key in force, origin, subject
// party = discloser; covenant findings), and whatever has been opened is
// handed to the sequencer with ledger.Submit as one batch, without waiting
// for a batch to fill (see Run). Only when the sequencer has committed the batch durably
// are the messages acknowledged: a crash before that redelivers them, and
// the ledger's event-id index turns the redelivery into a duplicate. Refused
// events are recorded (status API) in the same commit, then reported on the
// party's rejections subject, then terminated.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// Config configures ingest. Ledger and JS are required.
type Config struct {
	Ledger *ledger.Ledger
	JS     jetstream.JetStream
	// Batch is the most events handed to the sequencer at once (a batch
	// message is never split, so one batch holds at least one message);
	// 0 means 1024. Twice as many events may wait opened.
	Batch int
	// Linger is how long a batch waits for more messages after taking
	// those already opened; 0 (the default) means not at all: the batch
	// size then follows the load (see Run).
	Linger time.Duration
	// Workers open envelopes in parallel; 0 means GOMAXPROCS.
	Workers int
	// InFlight is how many batches may await their commit at once; 0 means
	// 64. At a moderate rate batches are small (what was opened since the
	// last one), and the sequencer takes every waiting batch into one
	// commit: too low a bound caps the rate at InFlight small batches per
	// commit. Once every slot is busy the next batch grows instead.
	InFlight int
	Logger   *slog.Logger
	// Notify, if set, is told of each committed batch's refusals and
	// findings per party before any of its messages is acknowledged
	// (ledger/notify writes them to its durable outbox). If it fails the
	// messages stay unacknowledged and ingest stops: they come again, and
	// so do their notices.
	Notify Notifier
}

// Notifier hears of refusals and findings once they are committed. Each
// call must return only when what it was told is durable. A redelivered
// message is told again (its logged events as duplicates with their
// findings), so the notices are at least once.
type Notifier interface {
	Rejected(ctx context.Context, party string, at time.Time, rs []webhook.RejectedEvent) error
	Findings(ctx context.Context, party string, at time.Time, fs []webhook.FindingEvent) error
}

// Ingest is a running ingest loop.
type Ingest struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	drops   *rejectionDrops
}

// New prepares ingest; Run starts it.
func New(cfg Config) *Ingest {
	if cfg.Batch <= 0 {
		cfg.Batch = 1024
	}
	if cfg.Linger < 0 {
		cfg.Linger = 0
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
	m := newMetrics()
	return &Ingest{cfg: cfg, log: logger, metrics: m, drops: newRejectionDrops(cfg.JS, m.rejectionsDropped)}
}

// Metrics returns ingest's collectors for main to register.
func (in *Ingest) Metrics() []prometheus.Collector { return in.metrics.collectors() }

// Run consumes until ctx ends or the ledger stops. It returns nil on a
// clean stop (ctx cancelled) and the cause otherwise.
//
// Messages flow through three stages that never wait for one another
// longer than they must: a fetcher reads the pull consumer; a fixed pool
// of workers opens each message as soon as it arrives; the collector
// hands whatever has been opened to the sequencer as one batch, as soon
// as a slot for a batch awaiting its commit is free. So at a low rate a
// batch is the few events that just arrived and is committed at once,
// and under load the batches grow by themselves while the slots are busy.
func (in *Ingest) Run(ctx context.Context) error {
	cons, err := in.cfg.JS.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		return fmt.Errorf("couldn't bind the ledger consumer %s/%s: %w", natsbus.Stream, natsbus.LedgerConsumer, err)
	}
	consume := func() (jetstream.MessagesContext, error) {
		// Bounded in bytes, not messages: a batch message may carry a
		// thousand events. Room for a few of the largest messages.
		return cons.Messages(jetstream.PullMaxBytes(pullMaxBytes), jetstream.PullExpiry(5*time.Second))
	}
	first, err := consume()
	if err != nil {
		return fmt.Errorf("couldn't start consuming: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The iterator in use; replaced after an error, stopped at the end.
	var cur atomic.Pointer[jetstream.MessagesContext]
	cur.Store(&first)

	msgs := make(chan jetstream.Msg, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for {
			it := *cur.Load()
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
					return
				}
				// After a server restart or a lost pull request the
				// iterator may not recover by itself; a redelivered
				// message would then sit in the stream unfetched. Start
				// a fresh one on the same durable consumer.
				in.log.Warn("fetching from JetStream failed; consuming afresh", "err", err)
				it.Stop()
				for {
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
						return
					}
					next, err := consume()
					if err != nil {
						in.log.Warn("couldn't consume afresh; retrying", "err", err)
						continue
					}
					cur.Store(&next)
					break
				}
				if ctx.Err() != nil {
					// The stopper may have stopped the old iterator
					// before this one was stored.
					(*cur.Load()).Stop()
					return
				}
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	go func() {
		<-ctx.Done()
		(*cur.Load()).Stop()
	}()

	// The open workers: each message is opened as soon as one is free.
	// Opened events wait for the collector within a budget of 2 x Batch
	// events, which bounds the memory they hold whatever the messages
	// carry; the collector returns a message's share when it takes it.
	opened := make(chan openedMsg, 2*in.cfg.Batch)
	budget := semaphore.NewWeighted(int64(2 * in.cfg.Batch))
	var workers sync.WaitGroup
	for range in.cfg.Workers {
		workers.Go(func() {
			for m := range msgs {
				o := in.openMsg(m)
				o.weight = min(int64(len(o.subs)), int64(2*in.cfg.Batch))
				if budget.Acquire(ctx, o.weight) != nil {
					return
				}
				select {
				case opened <- o:
				case <-ctx.Done():
					// Left unacknowledged: redelivered to the next run.
				}
			}
		})
	}
	go func() { workers.Wait(); close(opened) }()

	// Batches are committed in order; acks happen in a separate goroutine
	// per batch, bounded by InFlight, so opening the next batch overlaps
	// with the commit of this one.
	slots := make(chan struct{}, in.cfg.InFlight)
	var runErr error
	var errOnce sync.Once
	setErr := func(err error) {
		errOnce.Do(func() { runErr = err; cancel() })
	}
	for {
		batch, subs, ok := in.gather(ctx, opened, slots, budget)
		if len(batch) > 0 {
			p, err := in.cfg.Ledger.Submit(ctx, subs)
			if err != nil {
				<-slots
				if ctx.Err() == nil {
					setErr(fmt.Errorf("couldn't submit to the sequencer: %w", err))
				}
				break
			}
			wg.Go(func() {
				defer func() { <-slots }()
				if err := in.finish(ctx, p, batch, subs); err != nil {
					setErr(err)
				}
			})
		}
		if !ok {
			break
		}
	}
	cancel()
	wg.Wait()
	workers.Wait()
	return runErr
}

// pullMaxBytes bounds what the pull consumer buffers: eight of the largest
// messages (a full batch message), thousands of single envelopes.
const pullMaxBytes = 8 << 20

// openedMsg is a message with the Submission of each event it carries (one,
// or a batch message's), in order.
type openedMsg struct {
	m      jetstream.Msg
	subs   []ledger.Submission
	batch  bool  // a batch message (BatchHeader)
	whole  bool  // a batch message refused whole (one Submission)
	weight int64 // its share of the opened-events budget
}

// gather waits for one opened message and a free slot (taken for the
// batch it returns), then adds every message opened meanwhile, up to Batch
// events, without waiting for more (unless Linger is set). It returns the
// messages and their events' Submissions in order. ok is false when the
// source is closed or ctx ended; a batch returned with !ok still holds its
// slot and must be submitted or its slot released.
func (in *Ingest) gather(ctx context.Context, opened <-chan openedMsg, slots chan struct{}, budget *semaphore.Weighted) ([]openedMsg, []ledger.Submission, bool) {
	var first openedMsg
	select {
	case o, ok := <-opened:
		if !ok {
			return nil, nil, false
		}
		first = o
	case <-ctx.Done():
		return nil, nil, false
	}
	// While every slot is busy the opened messages pile up, and the next
	// batch takes them all: the batch size follows the load.
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, false
	}
	batch := make([]openedMsg, 0, 1+len(opened))
	subs := make([]ledger.Submission, 0, min(in.cfg.Batch, len(first.subs)*(1+len(opened))))
	add := func(o openedMsg) {
		batch = append(batch, o)
		subs = append(subs, o.subs...)
		budget.Release(o.weight)
	}
	add(first)
	for len(subs) < in.cfg.Batch {
		select {
		case o, ok := <-opened:
			if !ok {
				return batch, subs, false
			}
			add(o)
			continue
		default:
		}
		break
	}
	if in.cfg.Linger > 0 && len(subs) < in.cfg.Batch {
		timer := time.NewTimer(in.cfg.Linger)
		defer timer.Stop()
		for len(subs) < in.cfg.Batch {
			select {
			case o, ok := <-opened:
				if !ok {
					return batch, subs, false
				}
				add(o)
			case <-timer.C:
				return batch, subs, true
			}
		}
	}
	return batch, subs, true
}

// openMsg opens every event of one message against the covenant in force.
// A batch message whose header and body disagree is refused whole, as one
// malformed event without an id.
func (in *Ingest) openMsg(m jetstream.Msg) openedMsg {
	sc, _ := in.cfg.Ledger.Covenant()
	origin := in.cfg.Ledger.Origin()
	party, perr := natsbus.PartyOfSubject(m.Subject())
	if perr == nil {
		if _, ok := sc.Covenant.Party(party); !ok {
			// The subject's token is the sender's choice and names no
			// party of the covenant: it must not come back anywhere (a
			// rejections subject, a status record's key, a metric's
			// label), so the message is judged as on no party's subject.
			party, perr = "", errSubjectNotACovenantParty
		}
	}
	o := openedMsg{m: m}
	envs := [][]byte{m.Data()}
	h := m.Headers()
	noMsgID := h == nil || h.Get(jetstream.MsgIDHeader) == ""
	if h != nil && h.Get(natsbus.BatchHeader) != "" {
		o.batch = true
		var err error
		if envs, err = natsbus.SplitBatch(h.Get(natsbus.BatchHeader), m.Data()); err != nil {
			o.whole = true
			o.subs = []ledger.Submission{{Reject: &ledger.Rejection{Party: party, Reason: events.ReasonMalformed,
				Message: batchMessage(err), At: time.Now().UTC()}}}
			return o
		}
	}
	o.subs = make([]ledger.Submission, len(envs))
	// The signatures of a batch message are checked as one batch; a single
	// envelope is checked on its own (OpenMany does either).
	opened := events.OpenMany(envs, origin, sc.Covenant)
	for i, env := range envs {
		sub := judge(env, party, perr, opened[i].Disclosure, opened[i].Err, sc.Covenant)
		if noMsgID && sub.Reject == nil {
			sub = refuseWithoutMsgID(sub, party)
		}
		if d := sub.Disclosure; d != nil && d.Corrects != "" {
			sub.Findings = append(sub.Findings, in.checkCorrection(d)...)
		}
		// The subject index's map key, here on the worker rather than in
		// the sequencer.
		in.cfg.Ledger.WarmIndexKey(context.Background(), sub.Disclosure)
		o.subs[i] = sub
	}
	return o
}

// batchMessage explains a batch message refused whole, in words of
// Spoor's own: the header's value and the body are the sender's and are
// not repeated.
func batchMessage(err error) string {
	if errors.Is(err, natsbus.ErrBatchTooLarge) {
		return fmt.Sprintf("the batch message is over %d bytes", natsbus.MaxBatchBytes)
	}
	return fmt.Sprintf("the batch message does not hold the number of newline-terminated envelopes its %s header announces (1 to %d)",
		natsbus.BatchHeader, natsbus.MaxBatchEvents)
}

// errSubjectNamesNoParty and errNotTheDiscloser explain wrong_subject
// without repeating the subject or the discloser, which the sender chose.
var (
	errSubjectNamesNoParty = errors.New("the NATS subject is not spoor.disclosures.<party>")
	// errSubjectNotACovenantParty: spoor.disclosures.<token> where the
	// token is no party of the covenant in force.
	errSubjectNotACovenantParty = errors.New("the NATS subject names no party of the covenant")
	errNotTheDiscloser          = errors.New("published on the NATS subject of another party than the discloser")
)

// judge turns the outcome of opening one envelope published on party's
// subject (perr: the subject names no party) into its Submission. The
// message of a refusal (Rejection.Message, without the reason code) names
// fields and reasons and quotes only what Spoor knows.
func judge(data []byte, party string, perr error, d *events.Disclosure, err error, cov *events.Covenant) ledger.Submission {
	switch {
	case errors.Is(perr, errSubjectNotACovenantParty):
		// An envelope that does not open keeps its own reason (an
		// unknown party publishing on its own subject is unknown_party);
		// one that opens was sent on the subject of no party.
		if err == nil {
			err = &events.RejectError{Reason: events.ReasonWrongSubject, Err: perr}
		}
	case perr != nil:
		err = &events.RejectError{Reason: events.ReasonWrongSubject, Err: errSubjectNamesNoParty}
	case err == nil && d.Discloser != party:
		err = &events.RejectError{Reason: events.ReasonWrongSubject, Err: errNotTheDiscloser}
	}
	if err != nil {
		var re *events.RejectError
		if !errors.As(err, &re) {
			re = &events.RejectError{Reason: events.ReasonMalformed, Err: errors.New("not a disclosure envelope")}
		}
		id := bestEffortID(data)
		rej := &ledger.Rejection{EventID: id, Party: party, Reason: re.Reason, Message: re.Detail(), At: time.Now().UTC()}
		if id != "" {
			// A status or receipt request names the bytes it asks about.
			sum := sha256.Sum256(data)
			rej.SHA256 = hex.EncodeToString(sum[:])
		}
		return ledger.Submission{Reject: rej}
	}
	return ledger.Submission{Envelope: data, Disclosure: d, Findings: cov.Check(d)}
}

// refuseWithoutMsgID refuses an event that would have been logged but came
// in a message without the Nats-Msg-Id header, which the wire format
// requires: without it JetStream cannot drop a byte-identical retry, and
// the party's rejections could not name the message. An event refused for
// another reason keeps that reason.
func refuseWithoutMsgID(sub ledger.Submission, party string) ledger.Submission {
	return ledger.Submission{Reject: &ledger.Rejection{EventID: sub.Disclosure.ID, Party: party, Reason: events.ReasonMalformed,
		Message: "malformed: the message has no Nats-Msg-Id header, which the wire format requires", At: time.Now().UTC()}}
}

// checkCorrection checks that a correction (AVG art. 16) references an
// earlier logged event of the same discloser; if not, that is a finding
// for the FG, not a rejection. Event ids are per discloser, so the
// corrected event is looked up under the discloser's own ids.
func (in *Ingest) checkCorrection(d *events.Disclosure) []events.Finding {
	ctx := context.Background()
	l := in.cfg.Ledger
	if _, err := l.FindEvent(ctx, d.Discloser, d.Corrects); err == nil {
		// Logged (or, reserved, erased since: the correction then stands
		// on its own).
		return nil
	}
	if others, err := l.EventsWithID(ctx, d.Corrects); err == nil && len(others) > 0 {
		return []events.Finding{{Rule: events.RuleCorrectionOtherDiscloser, Field: "corrects",
			Message: "the corrected event was disclosed by another party"}}
	}
	return []events.Finding{{Rule: events.RuleCorrectionUnknown, Field: "corrects",
		Message: "the corrected event is not in the log"}}
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

// finish waits for the commit and then acknowledges: a message whose events
// are all stored or duplicates is acked; refused events are reported, and a
// message whose events were all refused is terminated (a batch with some
// logged ones is acked once its refusals are reported).
func (in *Ingest) finish(ctx context.Context, p *ledger.Pending, batch []openedMsg, subs []ledger.Submission) error {
	outcomes, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		// Not committed: leave every message unacknowledged so JetStream
		// redelivers it to the next ledger process.
		return fmt.Errorf("sequencer failed; %d messages left unacknowledged: %w", len(batch), err)
	}
	// The batch is durable; a crash from here on redelivers its messages,
	// which the ledger recognises as duplicates.
	crashpoint.Hit(crashpoint.AfterCommit)
	if in.cfg.Notify != nil {
		if err := in.notify(ctx, batch, subs, outcomes); err != nil {
			return fmt.Errorf("couldn't queue the notifications of a committed batch; %d messages left unacknowledged: %w", len(batch), err)
		}
	}
	next := 0
	for i, o := range batch {
		if i == len(batch)/2 {
			crashpoint.Hit(crashpoint.MidAck)
		}
		outs := outcomes[next : next+len(o.subs)]
		osubs := subs[next : next+len(o.subs)]
		next += len(o.subs)
		logged, reported, keep := 0, 0, false
		for j, out := range outs {
			var re *events.RejectError
			switch {
			case out.Err == nil:
				if out.Duplicate {
					in.metrics.duplicates.Inc()
				} else {
					in.metrics.committed.Inc()
				}
				logged++
			case errors.As(out.Err, &re):
				in.metrics.rejected.WithLabelValues(string(re.Reason)).Inc()
				if in.reportRejection(ctx, o, j, osubs[j], re) {
					reported++
				} else {
					keep = true
				}
			default:
				return fmt.Errorf("unexpected outcome: %w", out.Err)
			}
		}
		switch {
		case keep:
			// A rejection could not be reported: the message comes again,
			// its logged events as duplicates and its refusals reported then.
		case logged > 0:
			if err := o.m.Ack(); err != nil {
				in.log.Warn("ack failed; the message will be redelivered and recognised as a duplicate", "err", err)
			}
		default:
			if err := o.m.Term(); err != nil {
				in.log.Warn("term failed", "err", err)
			}
		}
	}
	return nil
}

// notify hands the batch's refusals (by the party whose subject they came
// on, when the covenant names it) and the findings of its logged events
// (by discloser, duplicates included: a redelivery after a crash must
// tell again what may not have been told) to the Notifier, one call per
// party and kind.
func (in *Ingest) notify(ctx context.Context, batch []openedMsg, subs []ledger.Submission, outcomes []ledger.Outcome) error {
	now := time.Now().UTC()
	rejected := map[string][]webhook.RejectedEvent{}
	findings := map[string][]webhook.FindingEvent{}
	next := 0
	for _, o := range batch {
		party := in.covenantParty(partyOf(o.m))
		var seq uint64
		if md, err := o.m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		for j := range o.subs {
			out, sub := outcomes[next+j], subs[next+j]
			var re *events.RejectError
			switch {
			case out.Err == nil && sub.Disclosure != nil && len(sub.Findings) > 0:
				fe := webhook.FindingEvent{EventID: sub.Disclosure.ID, LeafIndex: out.Index}
				for _, f := range sub.Findings {
					fe.Rules = append(fe.Rules, webhook.RuleHit{Rule: f.Rule, Field: f.Field})
				}
				findings[sub.Disclosure.Discloser] = append(findings[sub.Disclosure.Discloser], fe)
			case errors.As(out.Err, &re) && party != "":
				ev := webhook.RejectedEvent{Reason: string(re.Reason), StreamSeq: seq}
				if r := sub.Reject; r != nil {
					ev.EventID = r.EventID
				} else if sub.Disclosure != nil {
					ev.EventID = sub.Disclosure.ID
				}
				if o.batch && !o.whole {
					ev.Line = j + 1
				}
				rejected[party] = append(rejected[party], ev)
			}
		}
		next += len(o.subs)
	}
	// A notice whose body the wire format refuses (webhook.ErrBadData)
	// would be refused again on redelivery: it is logged and dropped, not
	// allowed to hold the messages back. Any other error (the outbox's
	// disk) keeps them.
	check := func(err error, party string) error {
		if errors.Is(err, webhook.ErrBadData) {
			in.log.Error("a notification was not queued: its body is refused by the wire format", "party", party, "err", err)
			return nil
		}
		return err
	}
	for party, rs := range rejected {
		if err := check(in.cfg.Notify.Rejected(ctx, party, now, rs), party); err != nil {
			return err
		}
	}
	for party, fs := range findings {
		if err := check(in.cfg.Notify.Findings(ctx, party, now, fs), party); err != nil {
			return err
		}
	}
	return nil
}

// reportRejection publishes the Rejection of the j-th refused event of o on
// the party's rejections subject. It reports false when the message must
// be kept for redelivery because the report failed.
func (in *Ingest) reportRejection(ctx context.Context, o openedMsg, j int, sub ledger.Submission, re *events.RejectError) bool {
	rej := natsbus.Rejection{Party: in.covenantParty(partyOf(o.m)), Reason: re.Reason, Message: re.Detail(), At: time.Now().UTC()}
	if s := sub.Reject; s != nil {
		rej.EventID = s.EventID
	} else if sub.Disclosure != nil {
		rej.EventID = sub.Disclosure.ID
	}
	if h := o.m.Headers(); h != nil {
		rej.MsgID = h.Get(jetstream.MsgIDHeader)
	}
	if md, err := o.m.Metadata(); err == nil {
		rej.Seq = md.Sequence.Stream
	}
	if o.batch && !o.whole {
		rej.Line = j + 1
	}
	if rej.Party == "" {
		// The subject names no party of the covenant
		// (spoor.disclosures.a.b, or a token the sender chose), so there
		// is no party's rejections subject to report on (nobody reads
		// one); the status API has the record. Left unacknowledged, the
		// message would be redelivered forever.
		in.log.Warn("event rejected on a subject that names no party", "event_id", rej.EventID, "reason", re.Reason)
		return true
	}
	full := in.drops.take(ctx, rej.Party)
	if err := natsbus.PublishRejection(ctx, in.cfg.JS, rej); err != nil {
		in.drops.failed(rej.Party, full)
		// Keep the message: it will be redelivered, refused again and
		// reported then.
		in.log.Warn("couldn't report a rejection; leaving the message for redelivery", "reason", re.Reason, "err", err)
		return false
	}
	in.drops.published(rej.Party, full)
	in.log.Info("event rejected", "party", rej.Party, "event_id", rej.EventID, "reason", re.Reason)
	return true
}

// covenantParty returns party if the covenant in force names it, and ""
// otherwise: a subject's token is the sender's choice and may be anything
// a party id can be.
func (in *Ingest) covenantParty(party string) string {
	if sc, _ := in.cfg.Ledger.Covenant(); sc != nil {
		if _, ok := sc.Covenant.Party(party); ok {
			return party
		}
	}
	return ""
}

func partyOf(m jetstream.Msg) string {
	p, _ := natsbus.PartyOfSubject(m.Subject())
	return p
}
