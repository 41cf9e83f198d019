package natsbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
)

// Defaults of the Publisher's options.
const (
	DefaultMaxInFlight = 256
	DefaultAckTimeout  = 10 * time.Second
)

// MsgID returns the Nats-Msg-Id of an envelope: the event id, a dot, and the
// first 16 hex characters of SHA-256(env). Including the hash means
// JetStream's de-duplication only swallows identical bytes; the same id with
// other bytes reaches the ledger, which decides.
func MsgID(eventID string, env []byte) string {
	sum := sha256.Sum256(env)
	return eventID + "." + hex.EncodeToString(sum[:8])
}

// PublishResult is what the bus said about one published envelope.
type PublishResult struct {
	// EventID is the disclosure's id, the key to ask for its receipt. For a
	// batch it is the first event's id.
	EventID string
	// EventIDs are the ids of a batch's events, in order (nil for a single
	// event).
	EventIDs []string
	// EnvelopeHash is the SHA-256 of the envelope (for a batch: of the
	// first event's), which a receipt request names (WaitReceipt).
	EnvelopeHash [32]byte
	// EnvelopeHashes are the SHA-256 of a batch's envelopes, in the order
	// of EventIDs (nil for a single event).
	EnvelopeHashes [][32]byte
	// Stream and Sequence locate the message on the bus. For a duplicate,
	// Sequence is that of the first copy.
	Stream   string
	Sequence uint64
	// Duplicate means these exact bytes were already on the bus within the
	// de-duplication window (a retry of a publish that had succeeded), so
	// they were not stored again. It says nothing about the ledger: the
	// receipt decides whether the event is committed.
	Duplicate bool
}

// Option configures a Publisher.
type Option func(*options)

type options struct {
	maxInFlight int
	ackTimeout  time.Duration
	logger      *slog.Logger
}

// WithMaxInFlight bounds the asynchronous publishes awaiting their ack;
// PublishAsync blocks while the bound is reached. Default 256.
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithAckTimeout bounds how long an asynchronous publish waits for its ack
// before it fails with ErrAckTimeout (a publish the server refuses for lack
// of permission is never answered). Default 10 seconds. Give the JetStream
// context jetstream.WithPublishAsyncTimeout as well, so that nats.go's own
// bookkeeping of unanswered publishes is bounded too.
func WithAckTimeout(d time.Duration) Option { return func(o *options) { o.ackTimeout = d } }

// WithLogger sets the logger. Lines carry event ids, never payload contents.
// Default: no logging.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Publisher signs disclosures with a party's key and publishes them on the
// party's subject. It only publishes: the ledger creates streams and
// consumers. It is safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	key    *events.PartyKey
	opts   options
	log    *slog.Logger
	slots  chan struct{} // one token per async publish awaiting its ack
	metric publisherMetrics

	mu       sync.Mutex
	inFlight int           // async publishes awaiting their ack
	idle     chan struct{} // closed when inFlight drops to zero
	failed   int           // async publishes that failed since the last Flush
	firstErr error         // the first of those failures
}

// NewPublisher returns a Publisher that signs with key and publishes through
// js. For the NATS permissions of a party, connect js's connection with
// nats.CustomInboxPrefix(InboxPrefix(key.Party)).
func NewPublisher(js jetstream.JetStream, key *events.PartyKey, opts ...Option) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("natsbus: NewPublisher needs a JetStream context")
	}
	if key == nil || len(key.Private) == 0 {
		return nil, errors.New("natsbus: NewPublisher needs a party key")
	}
	if !events.ValidPartyID(key.Party) {
		return nil, fmt.Errorf("natsbus: party key for %q: %w", key.Party, ErrInvalidParty)
	}
	o := options{maxInFlight: DefaultMaxInFlight, ackTimeout: DefaultAckTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxInFlight < 1 {
		return nil, fmt.Errorf("natsbus: max in-flight must be at least 1, got %d", o.maxInFlight)
	}
	if o.ackTimeout <= 0 {
		return nil, fmt.Errorf("natsbus: ack timeout must be positive, got %s", o.ackTimeout)
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{
		js:     js,
		key:    key,
		opts:   o,
		log:    log.With("party", key.Party),
		slots:  make(chan struct{}, o.maxInFlight),
		metric: newPublisherMetrics(key.Party),
	}, nil
}

// Party returns the party the Publisher publishes for.
func (p *Publisher) Party() string { return p.key.Party }

// seal seals and signs d and builds its message.
func (p *Publisher) seal(d *events.Disclosure) (*nats.Msg, string, error) {
	events.Seal(d, p.key)
	env, err := events.Sign(d, p.key)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't sign event %s: %w", d.ID, err)
	}
	return p.message(p.key.Party, d.ID, env), d.ID, nil
}

func (p *Publisher) message(party, eventID string, env []byte) *nats.Msg {
	m := nats.NewMsg(DisclosureSubject(party))
	m.Data = env
	m.Header.Set(jetstream.MsgIDHeader, MsgID(eventID, env))
	// Refuse to land in any other stream that someone bound to the subject.
	m.Header.Set(jetstream.ExpectedStreamHeader, Stream)
	return m
}

// Publish seals d (setting its discloser and salt, in place), signs it and
// publishes the envelope, waiting for the JetStream ack. The ack means the
// bus holds the event; WaitReceipt tells when the ledger has committed it.
// Publishing the same disclosure again is safe: it gives the same bytes.
func (p *Publisher) Publish(ctx context.Context, d *events.Disclosure) (PublishResult, error) {
	m, id, err := p.seal(d)
	if err != nil {
		return PublishResult{}, err
	}
	return p.publishSync(ctx, m, id)
}

// PublishEnvelope publishes an envelope that is already signed, on party's
// subject. It parses the envelope to find the event id, and refuses what
// the ledger would refuse for its form, its fields or its discloser, but it
// does not check the signature: the ledger does, against the covenant.
func (p *Publisher) PublishEnvelope(ctx context.Context, party string, env []byte) (PublishResult, error) {
	if !events.ValidPartyID(party) {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope: party %q: %w", party, ErrInvalidParty)
	}
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope: %w", err)
	}
	if e.PayloadType != events.PayloadType {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope: payloadType is %q, want %q", e.PayloadType, events.PayloadType)
	}
	d, err := events.DecodeDisclosure(e.Payload)
	if err != nil {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope: %w", err)
	}
	if err := d.Validate(); err != nil {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope: %w", err)
	}
	if d.Discloser != party {
		return PublishResult{}, fmt.Errorf("couldn't publish envelope %s: discloser %q is not party %q", d.ID, d.Discloser, party)
	}
	return p.publishSync(ctx, p.message(party, d.ID, env), d.ID)
}

func (p *Publisher) publishSync(ctx context.Context, m *nats.Msg, id string) (PublishResult, error) {
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		p.metric.failed.Inc()
		return PublishResult{}, fmt.Errorf("couldn't publish event %s: %w", id, busError(err))
	}
	res := p.result(id, ack)
	res.setHashes(envelopeHashes(m))
	return res, nil
}

// envelopeHashes returns the SHA-256 of each envelope m carries: its body,
// or each line of a batch message's.
func envelopeHashes(m *nats.Msg) [][32]byte {
	if m.Header.Get(BatchHeader) == "" {
		return [][32]byte{sha256.Sum256(m.Data)}
	}
	var out [][32]byte
	for line := range bytes.Lines(m.Data) {
		out = append(out, sha256.Sum256(bytes.TrimSuffix(line, []byte("\n"))))
	}
	return out
}

// setHashes fills in the envelope hashes of a result.
func (r *PublishResult) setHashes(hs [][32]byte) {
	if len(hs) == 0 {
		return
	}
	r.EnvelopeHash = hs[0]
	if len(hs) > 1 || r.EventIDs != nil {
		r.EnvelopeHashes = hs
	}
}

func (p *Publisher) result(id string, ack *jetstream.PubAck) PublishResult {
	if ack.Duplicate {
		p.metric.duplicate.Inc()
	} else {
		p.metric.published.Inc()
	}
	p.log.Debug("published", "event_id", id, "stream", ack.Stream, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	return PublishResult{EventID: id, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
}

// PendingPublish is an asynchronous publish awaiting its ack.
type PendingPublish struct {
	eventID  string     // the event id, or a batch's label
	eventIDs []string   // every event the message carries
	hashes   [][32]byte // the SHA-256 of each of its envelopes
	batch    bool       // a batch message (PublishBatchAsync)
	done     chan struct{}
	res      PublishResult
	err      error
}

// EventID is the id of the event being published (of a batch: the first
// event's id and how many follow).
func (pp *PendingPublish) EventID() string { return pp.eventID }

// EventIDs are the ids of the events the message carries (one, or a
// batch's).
func (pp *PendingPublish) EventIDs() []string { return pp.eventIDs }

// EnvelopeHashes are the SHA-256 of the envelopes the message carries, in
// the order of EventIDs: what WaitReceipt asks about.
func (pp *PendingPublish) EnvelopeHashes() [][32]byte { return pp.hashes }

// Done is closed when the ack or the error has arrived.
func (pp *PendingPublish) Done() <-chan struct{} { return pp.done }

// Wait waits for the ack and returns the result, or ctx's error.
func (pp *PendingPublish) Wait(ctx context.Context) (PublishResult, error) {
	select {
	case <-pp.done:
		return pp.res, pp.err
	case <-ctx.Done():
		return PublishResult{}, fmt.Errorf("waiting for the ack of event %s: %w", pp.eventID, ctx.Err())
	}
}

// PublishAsync seals and signs d like Publish and sends it without waiting
// for the ack. When the maximum of publishes awaiting their ack is reached
// it blocks until one completes or ctx ends. The result arrives on the
// PendingPublish; Flush waits for all of them.
func (p *Publisher) PublishAsync(ctx context.Context, d *events.Disclosure) (*PendingPublish, error) {
	m, id, err := p.seal(d)
	if err != nil {
		return nil, err
	}
	return p.publishAsync(ctx, m, id, []string{id}, false)
}

// PublishBatch seals and signs every disclosure like Publish and publishes
// them as one batch message (see BatchHeader), waiting for its ack. A batch
// costs the bus about as much as one event, so a system that records many
// disclosures at once should batch them. The ledger still judges each
// event on its own: ask for each receipt, and read the rejections. At most
// MaxBatchEvents disclosures and MaxBatchBytes of envelopes.
func (p *Publisher) PublishBatch(ctx context.Context, ds []*events.Disclosure) (PublishResult, error) {
	m, ids, err := p.sealBatch(ds)
	if err != nil {
		return PublishResult{}, err
	}
	res, err := p.publishSync(ctx, m, batchLabel(ids))
	if err != nil {
		return PublishResult{}, err
	}
	res.EventID, res.EventIDs = ids[0], ids
	res.setHashes(envelopeHashes(m))
	return res, nil
}

// PublishBatchAsync is PublishBatch without waiting for the ack, bounded
// like PublishAsync (one batch takes one slot).
func (p *Publisher) PublishBatchAsync(ctx context.Context, ds []*events.Disclosure) (*PendingPublish, error) {
	m, ids, err := p.sealBatch(ds)
	if err != nil {
		return nil, err
	}
	return p.publishAsync(ctx, m, batchLabel(ids), ids, true)
}

// PublishSignedAsync publishes envelopes that the caller has already
// signed with the Publisher's key (events.Sign), with their event ids in
// the same order: one envelope as an event message, more as one batch
// message, without waiting for the ack (bounded like PublishAsync). It is
// for a caller that signs first to check each envelope as the ledger will
// (the gateway), so that nothing is signed twice. It checks only what
// building the message needs; the ledger opens and checks every envelope.
func (p *Publisher) PublishSignedAsync(ctx context.Context, ids []string, envs [][]byte) (*PendingPublish, error) {
	if len(ids) != len(envs) || len(envs) == 0 {
		return nil, fmt.Errorf("couldn't publish %d envelopes with %d ids: %w", len(envs), len(ids), ErrBadBatch)
	}
	for _, id := range ids {
		if !events.ValidEventID(id) {
			return nil, errors.New("couldn't publish: an event id is not a UUIDv7")
		}
	}
	if len(envs) == 1 {
		return p.publishAsync(ctx, p.message(p.key.Party, ids[0], envs[0]), ids[0], ids, false)
	}
	m, err := BatchMessage(p.key.Party, envs)
	if err != nil {
		return nil, fmt.Errorf("couldn't publish a batch of %d events: %w", len(envs), err)
	}
	return p.publishAsync(ctx, m, batchLabel(ids), ids, true)
}

func (p *Publisher) sealBatch(ds []*events.Disclosure) (*nats.Msg, []string, error) {
	if len(ds) == 0 || len(ds) > MaxBatchEvents {
		return nil, nil, fmt.Errorf("couldn't publish a batch of %d events: %w (1 to %d events)", len(ds), ErrBadBatch, MaxBatchEvents)
	}
	envs := make([][]byte, len(ds))
	ids := make([]string, len(ds))
	for i, d := range ds {
		events.Seal(d, p.key)
		env, err := events.Sign(d, p.key)
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't sign event %s: %w", d.ID, err)
		}
		envs[i], ids[i] = env, d.ID
	}
	m, err := BatchMessage(p.key.Party, envs)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't publish a batch of %d events: %w", len(ds), err)
	}
	return m, ids, nil
}

// batchLabel names a batch in errors and log lines: its first event id and
// how many follow.
func batchLabel(ids []string) string {
	if len(ids) == 1 {
		return ids[0]
	}
	return fmt.Sprintf("%s and %d more in the same batch", ids[0], len(ids)-1)
}

// publishAsync sends m without waiting for its ack; label names it in
// errors, ids are the events it carries.
func (p *Publisher) publishAsync(ctx context.Context, m *nats.Msg, label string, ids []string, batch bool) (*PendingPublish, error) {
	// A select with a free slot and an ended context picks either; an
	// ended context must win.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't publish event %s: %w", label, err)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("couldn't publish event %s: waiting for a free slot: %w", label, ctx.Err())
	}
	var paf jetstream.PubAckFuture
	var err error
	for {
		paf, err = p.js.PublishMsgAsync(m)
		// nats.go has its own bound on pending acks, which may be lower
		// than ours; it reports a stall after a short wait, so try again.
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		<-p.slots
		p.metric.failed.Inc()
		return nil, fmt.Errorf("couldn't publish event %s: %w", label, busError(err))
	}
	p.started()
	pp := &PendingPublish{eventID: label, eventIDs: ids, hashes: envelopeHashes(m), batch: batch, done: make(chan struct{})}
	go p.await(pp, paf)
	return pp, nil
}

// await waits for the ack of one async publish, then frees its slot.
func (p *Publisher) await(pp *PendingPublish, paf jetstream.PubAckFuture) {
	timer := time.NewTimer(p.opts.ackTimeout)
	defer timer.Stop()
	select {
	case ack := <-paf.Ok():
		pp.res = p.result(pp.eventID, ack)
		if pp.batch {
			pp.res.EventID, pp.res.EventIDs = pp.eventIDs[0], pp.eventIDs
		}
		pp.res.setHashes(pp.hashes)
	case err := <-paf.Err():
		pp.err = fmt.Errorf("couldn't publish event %s: %w", pp.eventID, busError(err))
	case <-timer.C:
		pp.err = fmt.Errorf("couldn't publish event %s: %w after %s", pp.eventID, ErrAckTimeout, p.opts.ackTimeout)
	}
	if pp.err != nil {
		p.metric.failed.Inc()
		p.log.Warn("async publish failed", "event_id", pp.eventID, "err", pp.err)
	}
	close(pp.done)
	// Count the publish as finished before freeing its slot, so the
	// in-flight gauge never shows more than the bound.
	p.finished(pp.err)
	<-p.slots
}

func (p *Publisher) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight == 0 {
		p.idle = make(chan struct{})
	}
	p.inFlight++
	p.metric.inFlight.Inc()
}

func (p *Publisher) finished(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.failed == 0 {
			p.firstErr = err
		}
		p.failed++
	}
	p.inFlight--
	p.metric.inFlight.Dec()
	if p.inFlight == 0 {
		close(p.idle)
	}
}

// Flush waits until no asynchronous publish awaits its ack, or ctx ends. It
// returns an error if any asynchronous publish failed since the last Flush
// (the count and the first error; each PendingPublish has its own), and
// resets that count.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	busy := p.inFlight > 0
	p.mu.Unlock()
	if busy {
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("couldn't flush: %w", ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed == 0 {
		return nil
	}
	err := fmt.Errorf("%d asynchronous publishes failed, the first: %w", p.failed, p.firstErr)
	p.failed, p.firstErr = 0, nil
	return err
}

// Receipt polling: the first retry comes soon, since the ledger commits in
// batches of milliseconds; later ones back off so that many waiting clients
// do not flood an overloaded ledger.
const (
	receiptFirstRetry  = 50 * time.Millisecond
	receiptMaxRetry    = 2 * time.Second
	receiptAttemptWait = 2 * time.Second
)

// WaitReceipt asks the ledger for the receipt of the envelope with the
// given SHA-256 (PublishResult.EnvelopeHash, PendingPublish.EnvelopeHashes)
// under eventID until its status is committed, rejected or id_conflict, or
// ctx ends. It retries while the ledger answers pending, does not answer,
// or is not running. A rejected or conflicting event is not an error of
// this call: check the receipt's Status. A committed receipt should be
// verified (package verifier) before it is relied upon.
func (p *Publisher) WaitReceipt(ctx context.Context, eventID string, envelopeHash [32]byte) (*Receipt, error) {
	if !events.ValidEventID(eventID) {
		return nil, errors.New("couldn't wait for receipt: event id is not a UUIDv7")
	}
	nc := p.js.Conn()
	wait := receiptFirstRetry
	var last error
	for {
		r, err := RequestReceipt(ctx, nc, p.key.Party, eventID, envelopeHash)
		switch {
		case err == nil && r.Status != ReceiptPending:
			return r, nil
		case err == nil:
			last = errors.New("the ledger reports it pending")
		case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			last = err
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no receipt for event %s (last: %w): %w", eventID, last, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, receiptMaxRetry)
	}
}

// RequestReceipt asks the ledger once for the receipt of the envelope with
// SHA-256 envelopeHash under party's eventID, over nc. The answer may have
// status pending; WaitReceipt retries.
func RequestReceipt(ctx context.Context, nc *nats.Conn, party, eventID string, envelopeHash [32]byte) (*Receipt, error) {
	if !events.ValidPartyID(party) {
		return nil, fmt.Errorf("couldn't request receipt: party %q: %w", party, ErrInvalidParty)
	}
	body, err := marshalJSON(ReceiptRequest{EventID: eventID, SHA256: hex.EncodeToString(envelopeHash[:])})
	if err != nil {
		return nil, fmt.Errorf("couldn't encode receipt request: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, receiptAttemptWait)
	defer cancel()
	msg, err := nc.RequestWithContext(actx, ReceiptSubject(party), body)
	if err != nil {
		return nil, fmt.Errorf("couldn't request receipt of event %s: %w", eventID, err)
	}
	r, err := ParseReceipt(msg.Data)
	if err != nil {
		return nil, fmt.Errorf("ledger's answer for event %s: %w", eventID, err)
	}
	if r.EventID != eventID {
		return nil, fmt.Errorf("ledger answered for event %s when asked for %s", r.EventID, eventID)
	}
	return r, nil
}

// Rejections binds to party's rejections consumer, which the ledger created;
// it never creates one. Read with Fetch, Messages or Consume, decode each
// message with ParseRejection and ack it. It fails with ErrNoStream when the
// ledger has not set up the bus and ErrNoConsumer when the party has no
// consumer.
func Rejections(ctx context.Context, js jetstream.JetStream, party string) (jetstream.Consumer, error) {
	if !events.ValidPartyID(party) {
		return nil, fmt.Errorf("couldn't bind to rejections: party %q: %w", party, ErrInvalidParty)
	}
	c, err := js.Consumer(ctx, RejectedStream, RejectedConsumer(party))
	if err != nil {
		return nil, fmt.Errorf("couldn't bind to consumer %s on %s: %w", RejectedConsumer(party), RejectedStream, busError(err))
	}
	return c, nil
}

// publisherMetrics counts what a Publisher did. The party is a constant
// label, so one process may run Publishers for several parties.
type publisherMetrics struct {
	results   *prometheus.CounterVec
	published prometheus.Counter
	duplicate prometheus.Counter
	failed    prometheus.Counter
	inFlight  prometheus.Gauge
}

func newPublisherMetrics(party string) publisherMetrics {
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace:   "spoor",
		Subsystem:   "publisher",
		Name:        "publishes_total",
		Help:        "Messages published (one envelope, or a batch of them), by result: stored, duplicate (already on the bus) or failed.",
		ConstLabels: prometheus.Labels{"party": party},
	}, []string{"result"})
	return publisherMetrics{
		results:   results,
		published: results.WithLabelValues("stored"),
		duplicate: results.WithLabelValues("duplicate"),
		failed:    results.WithLabelValues("failed"),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace:   "spoor",
			Subsystem:   "publisher",
			Name:        "in_flight",
			Help:        "Asynchronous publishes awaiting their ack.",
			ConstLabels: prometheus.Labels{"party": party},
		}),
	}
}

// Metrics returns the Publisher's collectors for the caller to register.
func (p *Publisher) Metrics() []prometheus.Collector {
	return []prometheus.Collector{p.metric.results, p.metric.inFlight}
}
