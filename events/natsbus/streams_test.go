package natsbus_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func consumerNames(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	s, err := js.Stream(testContext(t, 5*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	lister := s.ConsumerNames(testContext(t, 5*time.Second))
	var names []string
	for n := range lister.Name() {
		names = append(names, n)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestEnsureStreams(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := testContext(t, 20*time.Second)
	parties := []string{amersfoort, utrecht, amersfoort}

	for i := range 2 {
		if err := natsbus.EnsureStreams(ctx, js, parties, natsbus.StreamConfig{}); err != nil {
			t.Fatalf("EnsureStreams, call %d: %v", i+1, err)
		}
	}

	st, err := js.Stream(ctx, natsbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage ||
		!slices.Equal(cfg.Subjects, []string{"spoor.disclosures.>"}) || cfg.Duplicates != 2*time.Minute ||
		cfg.MaxMsgSize < events.MaxEnvelopeSize || !cfg.DenyDelete || !cfg.DenyPurge || cfg.Discard != jetstream.DiscardNew {
		t.Errorf("stream %s config = %+v", natsbus.Stream, cfg)
	}
	rst, err := js.Stream(ctx, natsbus.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := rst.CachedInfo().Config
	if rcfg.Retention != jetstream.LimitsPolicy || rcfg.Storage != jetstream.FileStorage ||
		!slices.Equal(rcfg.Subjects, []string{"spoor.rejected.>"}) || rcfg.MaxAge != 30*24*time.Hour {
		t.Errorf("stream %s config = %+v", natsbus.RejectedStream, rcfg)
	}

	lc, err := js.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	lcfg := lc.CachedInfo().Config
	if lcfg.AckPolicy != jetstream.AckExplicitPolicy || lcfg.MaxDeliver != -1 || lcfg.AckWait != 30*time.Second ||
		lcfg.MaxAckPending != 20000 || lcfg.Durable != "ledger" {
		t.Errorf("ledger consumer config = %+v", lcfg)
	}
	if got, want := consumerNames(t, js, natsbus.RejectedStream), []string{"rejected-gemeente-amersfoort", "rejected-gemeente-utrecht"}; !slices.Equal(got, want) {
		t.Errorf("rejection consumers = %v, want %v", got, want)
	}
	rc, err := js.Consumer(ctx, natsbus.RejectedStream, natsbus.RejectedConsumer(utrecht))
	if err != nil {
		t.Fatal(err)
	}
	if c := rc.CachedInfo().Config; c.FilterSubject != "spoor.rejected.gemeente-utrecht" || c.MaxDeliver != -1 || c.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("rejections consumer config = %+v", c)
	}

	// An update: a new party and other limits.
	err = natsbus.EnsureStreams(ctx, js, []string{amersfoort, "ggd-regio-utrecht"},
		natsbus.StreamConfig{MaxAckPending: 500, AckWait: time.Minute, RejectedMaxAge: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lc, err = js.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if c := lc.CachedInfo().Config; c.MaxAckPending != 500 || c.AckWait != time.Minute {
		t.Errorf("updated ledger consumer config = %+v", c)
	}
	rst, err = js.Stream(ctx, natsbus.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := rst.CachedInfo().Config.MaxAge; got != 7*24*time.Hour {
		t.Errorf("updated rejections max age = %s", got)
	}
	// The consumer of a party that left stays, so it can read its last
	// rejections.
	if got, want := consumerNames(t, js, natsbus.RejectedStream), []string{"rejected-gemeente-amersfoort", "rejected-gemeente-utrecht", "rejected-ggd-regio-utrecht"}; !slices.Equal(got, want) {
		t.Errorf("rejection consumers = %v, want %v", got, want)
	}

	if err := natsbus.EnsureStreams(ctx, js, []string{"bad.party"}, natsbus.StreamConfig{}); !errors.Is(err, natsbus.ErrInvalidParty) {
		t.Errorf("EnsureStreams with a bad party = %v, want ErrInvalidParty", err)
	}
}

// TestStreamKeepsEvents: nobody, not even a user with every permission, can
// delete or purge an envelope before the ledger has taken it.
func TestStreamKeepsEvents(t *testing.T) {
	b := newBus(t, amersfoort)
	pub := newPublisher(t, b.js, partyKey(t, amersfoort))
	ctx := testContext(t, 10*time.Second)
	res, err := pub.Publish(ctx, newDisclosure(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.js.Stream(ctx, natsbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, res.Sequence); err == nil {
		t.Error("DeleteMsg succeeded on the disclosures stream")
	}
	if err := st.Purge(ctx); err == nil {
		t.Error("Purge succeeded on the disclosures stream")
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
	// Nor may a second consumer take events from the ledger.
	_, err = b.js.CreateConsumer(ctx, natsbus.Stream, jetstream.ConsumerConfig{Durable: "other", AckPolicy: jetstream.AckExplicitPolicy})
	if err == nil {
		t.Error("a second consumer was created on the work-queue stream")
	}
	// An oversized envelope is refused by the bus itself only beyond the
	// largest batch message; the ledger rejects the rest with a reason.
	big := strings.Repeat("x", natsbus.MaxBatchBytes)
	if _, err := b.js.Publish(ctx, natsbus.DisclosureSubject(amersfoort), []byte(big)); err != nil {
		t.Errorf("a message of the largest batch's size did not reach the stream: %v", err)
	}
	huge := strings.Repeat("x", natsbus.MaxBatchBytes+8<<10)
	if _, err := b.js.Publish(ctx, natsbus.DisclosureSubject(amersfoort), []byte(huge)); err == nil {
		t.Error("the stream accepted a message over the largest batch")
	}
}

func TestRejectionsRoundTrip(t *testing.T) {
	b := newBus(t, amersfoort, utrecht)
	ctx := testContext(t, 10*time.Second)
	id := newDisclosure(t).ID
	msgID := natsbus.MsgID(id, []byte("envelope"))
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)

	r := natsbus.Rejection{
		EventID: id,
		MsgID:   msgID,
		Party:   amersfoort,
		Reason:  events.ReasonBadSignature,
		Message: "signature does not verify (subject " + testBSN + ", pseudonym " + strings.Repeat("ab", 32) + ")",
		At:      at,
	}
	if err := natsbus.PublishRejection(ctx, b.js, r); err != nil {
		t.Fatal(err)
	}
	// The ledger may publish the same rejection again after a crash; the
	// bus keeps one.
	if err := natsbus.PublishRejection(ctx, b.js, r); err != nil {
		t.Fatal(err)
	}
	// Another party's rejection goes to its own subject.
	if err := natsbus.PublishRejection(ctx, b.js, natsbus.Rejection{Party: utrecht, Reason: events.ReasonMalformed, MsgID: "garbage", At: at}); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b.js, natsbus.RejectedStream); n != 2 {
		t.Errorf("rejections stream holds %d messages, want 2", n)
	}

	c, err := natsbus.Rejections(ctx, b.js, amersfoort)
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetch(t, c, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d rejections, want 1", len(msgs))
	}
	got, err := natsbus.ParseRejection(msgs[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if got.EventID != id || got.MsgID != msgID || got.Party != amersfoort || got.Reason != events.ReasonBadSignature || !got.At.Equal(at) {
		t.Errorf("rejection = %+v", got)
	}
	if strings.Contains(got.Message, testBSN) || strings.Contains(got.Message, strings.Repeat("ab", 32)) {
		t.Errorf("rejection message was not redacted: %q", got.Message)
	}
	if !strings.HasPrefix(got.Message, "signature does not verify") {
		t.Errorf("rejection message = %q", got.Message)
	}
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	cu, err := natsbus.Rejections(ctx, b.js, utrecht)
	if err != nil {
		t.Fatal(err)
	}
	umsgs := fetch(t, cu, 1, 5*time.Second)
	if len(umsgs) != 1 {
		t.Fatalf("got %d rejections for %s, want 1", len(umsgs), utrecht)
	}
	ur, err := natsbus.ParseRejection(umsgs[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if ur.EventID != "" || ur.MsgID != "" {
		t.Errorf("rejection = %+v, want no event id and the malformed msg id dropped", ur)
	}

	for _, bad := range []natsbus.Rejection{
		{Party: "Bad Party", Reason: events.ReasonMalformed},
		{Party: amersfoort},
		{Party: amersfoort, Reason: events.ReasonMalformed, EventID: "not-a-uuid"},
	} {
		if err := natsbus.PublishRejection(ctx, b.js, bad); err == nil {
			t.Errorf("PublishRejection(%+v) succeeded", bad)
		}
	}
	long := natsbus.Rejection{Party: amersfoort, Reason: events.ReasonInvalid, EventID: id, Message: strings.Repeat("é", 2000)}
	if err := natsbus.PublishRejection(ctx, b.js, long); err != nil {
		t.Errorf("a long message was not cut: %v", err)
	}
}

// TestRejectionOfControlCharacters: a message that JSON must escape still
// fits the rejections stream.
func TestRejectionOfControlCharacters(t *testing.T) {
	b := newBus(t, amersfoort)
	r := natsbus.Rejection{Party: amersfoort, Reason: events.ReasonMalformed, Message: strings.Repeat("\x01", 5000)}
	if err := natsbus.PublishRejection(testContext(t, 5*time.Second), b.js, r); err != nil {
		t.Fatal(err)
	}
}
