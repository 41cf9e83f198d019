package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
)

// Defaults of StreamConfig, used for its zero fields.
const (
	DefaultDuplicates     = 2 * time.Minute
	DefaultRejectedMaxAge = 30 * 24 * time.Hour
	DefaultAckWait        = 30 * time.Second
	DefaultMaxAckPending  = 20000
	DefaultReplicas       = 1
	// DefaultRejectedPerParty is how many rejections the stream keeps per
	// party at most (see StreamConfig.RejectedPerParty).
	DefaultRejectedPerParty = 8192
	// DefaultRejectedBytesPerParty bounds the bytes of one party's
	// rejections: 64 MiB, so 8192 rejections of at most RejectedMaxMsgSize.
	DefaultRejectedBytesPerParty = 64 << 20
)

// RejectedMaxMsgSize is the most bytes one rejection takes on the bus
// (RejectedStream's MaxMsgSize, headers included). A rejection's message is
// cut to 1024 bytes, which JSON escaping may grow to 6144 (\u00XX per
// byte); the event id, msg id, party, reason, line and time add under 512;
// the Nats-Msg-Id and Nats-Expected-Stream headers under 128. A publish over
// it fails rather than being stored, so it bounds every stored rejection,
// and with the per-party message cap, a party's bytes.
const RejectedMaxMsgSize = 8 << 10

// headerSlack is the room left for the message headers (Nats-Msg-Id,
// Nats-Expected-Stream, Spoor-Batch, trace headers a client adds) beside a
// batch body of MaxBatchBytes: JetStream counts headers and body against
// MaxMsgSize.
const headerSlack = 4 << 10

// maxMsgSize is Stream's MaxMsgSize: a batch message (MaxBatchBytes plus
// headers), which is NATS's default max_payload. A single envelope may be
// that large too; one over events.MaxEnvelopeSize then still reaches the
// ledger, which rejects it as too_large with a Rejection the party can
// read, instead of the bus refusing it with a bare error.
const maxMsgSize = MaxBatchBytes + headerSlack

// StreamConfig is the ledger's choice of stream and consumer settings. Its
// zero value is the default for an embedded, single-node deployment.
type StreamConfig struct {
	// Replicas is the number of replicas of both streams (1 embedded, 3 in a
	// cluster). Default 1.
	Replicas int
	// Duplicates is JetStream's de-duplication window on Stream: within it a
	// byte-identical re-publish is acked as Duplicate and not stored again.
	// Default 2 minutes.
	Duplicates time.Duration
	// MaxBytes caps the bytes Stream may hold while the ledger is behind;
	// when it is full, publishes fail (discard-new) rather than events being
	// dropped. Zero means no cap.
	MaxBytes int64
	// RejectedMaxAge is how long rejections are kept. Default 30 days.
	RejectedMaxAge time.Duration
	// RejectedPerParty caps the rejections kept per party (per subject
	// spoor.rejected.<party>): beyond it the party's oldest rejection is
	// dropped, never another party's, so one party's flood cannot evict
	// the others' rejections. Default DefaultRejectedPerParty.
	RejectedPerParty int64
	// RejectedBytesPerParty caps the bytes kept per party. JetStream has no
	// byte limit per subject, so it is kept by lowering the per-party
	// message cap to RejectedBytesPerParty / RejectedMaxMsgSize: a bound
	// on the worst case, whatever the rejections hold (most are a few
	// hundred bytes). Default DefaultRejectedBytesPerParty.
	RejectedBytesPerParty int64
	// AckWait is how long a delivered message may stay unacked before it is
	// delivered again, on the ledger's and the parties' consumers. It must
	// exceed the ledger's longest batch commit. Default 30 seconds.
	AckWait time.Duration
	// MaxAckPending bounds the ledger's unacked messages (its batches in
	// flight). Default 20000.
	MaxAckPending int
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Duplicates <= 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = -1
	}
	if c.RejectedMaxAge <= 0 {
		c.RejectedMaxAge = DefaultRejectedMaxAge
	}
	if c.RejectedPerParty <= 0 {
		c.RejectedPerParty = DefaultRejectedPerParty
	}
	if c.RejectedBytesPerParty <= 0 {
		c.RejectedBytesPerParty = DefaultRejectedBytesPerParty
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	return c
}

// streamConfig is the configuration of Stream.
//
// Work-queue retention removes an envelope once the ledger acks it (after
// its durable commit), so the bus keeps no personal data after ingest.
// DenyDelete and DenyPurge make the server refuse to remove an envelope by
// any other route (an operator's mistake, a compromised tool), because an
// event removed before ingest would be lost without trace; note that once
// set they cannot be switched off by an update. Discard-new makes a full
// stream refuse new publishes (the publisher sees an error and retries)
// rather than drop the oldest unread events.
func (c StreamConfig) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "Spoor disclosure envelopes awaiting the ledger",
		Subjects:    []string{DisclosureSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    c.MaxBytes,
		MaxMsgs:     -1,
		MaxAge:      0,
		MaxMsgSize:  maxMsgSize,
		Duplicates:  c.Duplicates,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// RejectedCapPerParty is the most rejections RejectedStream keeps for one
// party under c: RejectedPerParty, lowered so that that many rejections of
// RejectedMaxMsgSize fit in RejectedBytesPerParty; at least 1.
func (c StreamConfig) RejectedCapPerParty() int64 {
	c = c.withDefaults()
	return max(1, min(c.RejectedPerParty, c.RejectedBytesPerParty/RejectedMaxMsgSize))
}

// rejectedConfig is the configuration of RejectedStream: limits retention by
// age, so each party's rejections stay readable (and re-readable) for
// RejectedMaxAge whether or not the party acks them, and by count per party
// subject (RejectedCapPerParty; discard-old drops the party's own oldest
// first). There is no stream-wide message or byte limit: with discard-old
// it would evict whichever party's rejections are oldest, so a flood by
// one party would erase another's. The whole is bounded by the number of
// party subjects (each party's NATS user publishes only on its own
// subject) times the per-party cap. Single rejections cannot be deleted;
// the operator may still purge the stream.
func (c StreamConfig) rejectedConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        RejectedStream,
		Description: "Spoor rejections, per party: event id and reason, never the payload",
		Subjects:    []string{RejectedSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.RejectedMaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		// Per party subject.
		MaxMsgsPerSubject: c.RejectedCapPerParty(),
		MaxMsgSize:        RejectedMaxMsgSize,
		Duplicates:        c.Duplicates,
		DenyDelete:        true,
	}
}

// ledgerConsumerConfig is the ledger's consumer. It never sets MaxDeliver:
// in a work-queue stream a message that reaches it is no longer delivered
// but stays in the stream, so an event would be stuck, neither logged nor
// rejected.
func (c StreamConfig) ledgerConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       LedgerConsumer,
		Description:   "the Spoor ledger's ingest",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// rejectedConsumerConfig is a party's consumer of its own rejections.
func (c StreamConfig) rejectedConsumerConfig(party string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       RejectedConsumer(party),
		Description:   "rejections of " + party,
		FilterSubject: RejectedSubject(party),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// EnsureStreams creates Stream and RejectedStream with the ledger's consumer
// and one rejections consumer per party, or updates them to cfg when they
// exist. It is idempotent, and only the ledger calls it. A consumer of a
// party that left the covenant is left in place, so the party can still
// read its last rejections until they expire.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, parties []string, cfg StreamConfig) error {
	for _, p := range parties {
		if !events.ValidPartyID(p) {
			return fmt.Errorf("couldn't ensure streams: party %q: %w", p, ErrInvalidParty)
		}
	}
	cfg = cfg.withDefaults()
	if _, err := js.CreateOrUpdateStream(ctx, cfg.streamConfig()); err != nil {
		return fmt.Errorf("couldn't create or update stream %s: %w", Stream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg.rejectedConfig()); err != nil {
		return fmt.Errorf("couldn't create or update stream %s: %w", RejectedStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, Stream, cfg.ledgerConsumerConfig()); err != nil {
		return fmt.Errorf("couldn't create or update consumer %s on %s: %w", LedgerConsumer, Stream, err)
	}
	parties = slices.Clone(parties)
	slices.Sort(parties)
	for _, p := range slices.Compact(parties) {
		if _, err := js.CreateOrUpdateConsumer(ctx, RejectedStream, cfg.rejectedConsumerConfig(p)); err != nil {
			return fmt.Errorf("couldn't create or update consumer %s on %s: %w", RejectedConsumer(p), RejectedStream, err)
		}
	}
	return nil
}

// PublishRejection publishes r on RejectedSubject(r.Party); the ledger calls
// it for each envelope it refuses, before acking the envelope. It first
// normalises r: At defaults to now (UTC), the message is cut to its limit
// and anything in it that looks like a national number or a pseudonym is
// redacted, and a MsgID not of MsgID's form is dropped (it is the
// publisher's header, not checked by anyone before). The Nats-Msg-Id is
// derived from the event, the msg id, the reason, the line and the refused
// message's stream sequence (Seq), so a rejection published again after a
// ledger crash is de-duplicated by the bus, and distinct messages never are.
func PublishRejection(ctx context.Context, js jetstream.JetStream, r Rejection) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = r.At.UTC()
	r.Message = redact(r.Message)
	if len(r.Message) > maxRejectionMessage {
		r.Message = truncateUTF8(r.Message, maxRejectionMessage)
	}
	if r.MsgID != "" && !msgIDRE.MatchString(r.MsgID) && !batchMsgIDRE.MatchString(r.MsgID) {
		r.MsgID = ""
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("couldn't publish rejection: %w", err)
	}
	body, err := marshalJSON(&r)
	if err != nil {
		return fmt.Errorf("couldn't encode rejection: %w", err)
	}
	// The line tells apart two envelopes of one batch message refused for
	// the same reason (with no event id to read, say).
	key := r.Party + "\x00" + r.EventID + "\x00" + r.MsgID + "\x00" + string(r.Reason) + "\x00" + strconv.Itoa(r.Line)
	if r.Seq != 0 {
		key += "\x00" + strconv.FormatUint(r.Seq, 10)
	}
	sum := sha256.Sum256([]byte(key))
	msg := &nats.Msg{Subject: RejectedSubject(r.Party), Data: body}
	_, err = js.PublishMsg(ctx, msg,
		jetstream.WithMsgID("rejected."+hex.EncodeToString(sum[:16])),
		jetstream.WithExpectStream(RejectedStream))
	if err != nil {
		return fmt.Errorf("couldn't publish rejection of event %s: %w", r.EventID, busError(err))
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// busError adds ErrNoStream to the errors that mean a stream is missing, so
// callers can tell "the ledger has not set up the bus" from other failures.
func busError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: %w", ErrNoStream, err)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("%w: %w", ErrNoConsumer, err)
	}
	return err
}
