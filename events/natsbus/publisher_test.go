package natsbus_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
)

func TestMsgID(t *testing.T) {
	const id = "01963b2e-7c1a-7d4e-9f3a-0b1c2d3e4f50"
	// SHA-256("abc") begins ba7816bf8f01cfea.
	if got, want := natsbus.MsgID(id, []byte("abc")), id+".ba7816bf8f01cfea"; got != want {
		t.Errorf("MsgID = %q, want %q", got, want)
	}
	if natsbus.MsgID(id, []byte("abc")) == natsbus.MsgID(id, []byte("abd")) {
		t.Error("MsgID is the same for other bytes")
	}
}

func TestSubjects(t *testing.T) {
	if got := natsbus.DisclosureSubject(amersfoort); got != "spoor.disclosures.gemeente-amersfoort" {
		t.Errorf("DisclosureSubject = %q", got)
	}
	if got := natsbus.RejectedSubject(amersfoort); got != "spoor.rejected.gemeente-amersfoort" {
		t.Errorf("RejectedSubject = %q", got)
	}
	if got := natsbus.RejectedConsumer(amersfoort); got != "rejected-gemeente-amersfoort" {
		t.Errorf("RejectedConsumer = %q", got)
	}
	if got := natsbus.ReceiptSubject(amersfoort); got != "spoor.receipts.gemeente-amersfoort" {
		t.Errorf("ReceiptSubject = %q", got)
	}
	party, err := natsbus.PartyOfSubject("spoor.disclosures.gemeente-amersfoort")
	if err != nil || party != amersfoort {
		t.Errorf("PartyOfSubject = %q, %v", party, err)
	}
	for _, s := range []string{"spoor.disclosures.", "spoor.disclosures.a.b", "spoor.disclosures.*", "spoor.rejected.x", "spoor.disclosures.Upper"} {
		if _, err := natsbus.PartyOfSubject(s); !errors.Is(err, natsbus.ErrInvalidParty) {
			t.Errorf("PartyOfSubject(%q) = %v, want ErrInvalidParty", s, err)
		}
	}
}

func TestNewPublisherRefusesBadInput(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	key := partyKey(t, amersfoort)
	if _, err := natsbus.NewPublisher(js, nil); err == nil {
		t.Error("NewPublisher accepted a nil key")
	}
	if _, err := natsbus.NewPublisher(nil, key); err == nil {
		t.Error("NewPublisher accepted a nil JetStream")
	}
	if _, err := natsbus.NewPublisher(js, key, natsbus.WithMaxInFlight(0)); err == nil {
		t.Error("NewPublisher accepted max in-flight 0")
	}
	if _, err := natsbus.NewPublisher(js, key, natsbus.WithAckTimeout(-time.Second)); err == nil {
		t.Error("NewPublisher accepted a negative ack timeout")
	}
}

// TestPublishAndConsume publishes one event and reads it back through the
// ledger's consumer: the bytes are the canonical envelope, the subject is
// the party's and the Nats-Msg-Id is MsgID.
func TestPublishAndConsume(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	d := newDisclosure(t)

	res, err := pub.Publish(testContext(t, 5*time.Second), d)
	if err != nil {
		t.Fatal(err)
	}
	if res.EventID != d.ID || res.Stream != natsbus.Stream || res.Sequence != 1 || res.Duplicate {
		t.Errorf("PublishResult = %+v", res)
	}
	if d.Discloser != amersfoort || d.Salt != events.DeriveSalt(key.SaltSecret, d.ID) {
		t.Error("Publish did not seal the disclosure in place")
	}
	want, err := events.Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}

	c, err := b.js.Consumer(testContext(t, 5*time.Second), natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetch(t, c, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("ledger consumer got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if !bytes.Equal(m.Data(), want) {
		t.Error("message is not the canonical envelope")
	}
	if m.Subject() != "spoor.disclosures.gemeente-amersfoort" {
		t.Errorf("subject = %q", m.Subject())
	}
	if got := m.Headers().Get(jetstream.MsgIDHeader); got != natsbus.MsgID(d.ID, want) {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, natsbus.MsgID(d.ID, want))
	}
	if _, err := events.ParseEnvelope(m.Data()); err != nil {
		t.Errorf("envelope does not parse: %v", err)
	}
	if err := m.DoubleAck(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Work-queue retention: the ack removes the event from the bus.
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 0 {
		t.Errorf("stream holds %d messages after the ack, want 0", n)
	}
	if got := counters(t, pub); got["stored"] != 1 {
		t.Errorf("counters = %v", got)
	}
}

// TestPublishBatch publishes batches, one of a single event among them,
// synchronously and asynchronously: each result names its events, and the
// message on the bus is the batch of canonical envelopes.
func TestPublishBatch(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	ctx := testContext(t, 10*time.Second)
	three := []*events.Disclosure{newDisclosure(t), newDisclosure(t), newDisclosure(t)}
	res, err := pub.PublishBatch(ctx, three)
	if err != nil {
		t.Fatal(err)
	}
	if res.EventID != three[0].ID || len(res.EventIDs) != 3 || res.EventIDs[2] != three[2].ID || res.Duplicate {
		t.Errorf("PublishBatch result %+v", res)
	}
	for _, n := range []int{1, 2} {
		ds := make([]*events.Disclosure, n)
		for i := range ds {
			ds[i] = newDisclosure(t)
		}
		pp, err := pub.PublishBatchAsync(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		res, err := pp.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.EventID != ds[0].ID || len(res.EventIDs) != n || res.EventIDs[n-1] != ds[n-1].ID {
			t.Errorf("batch of %d: result %+v, want its event ids", n, res)
		}
		if n == 1 && pp.EventID() != ds[0].ID {
			t.Errorf("batch of one: pending publish names %q, want %s", pp.EventID(), ds[0].ID)
		}
	}
	c, err := b.js.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetch(t, c, 3, 5*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("ledger consumer got %d messages, want 3", len(msgs))
	}
	envs, err := natsbus.SplitBatch(msgs[0].Headers().Get(natsbus.BatchHeader), msgs[0].Data())
	if err != nil || len(envs) != 3 {
		t.Fatalf("first message: %d envelopes, %v", len(envs), err)
	}
	for i, d := range three {
		want, err := events.Sign(d, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(envs[i], want) {
			t.Errorf("envelope %d of the batch is not the canonical one", i)
		}
	}
	if got := msgs[0].Headers().Get(jetstream.MsgIDHeader); got != natsbus.BatchMsgID(msgs[0].Data()) {
		t.Errorf("Nats-Msg-Id = %q, want the batch's", got)
	}
	if _, err := pub.PublishBatch(ctx, nil); !errors.Is(err, natsbus.ErrBadBatch) {
		t.Errorf("empty batch: %v, want ErrBadBatch", err)
	}
}

// TestRepublishIsDuplicate: the same disclosure published again gives the
// same bytes, which the bus recognises, also after the ledger has taken the
// first copy.
func TestRepublishIsDuplicate(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	d := newDisclosure(t)
	ctx := testContext(t, 10*time.Second)

	first, err := pub.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pub.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("re-publish = %+v, want a duplicate of sequence %d", again, first.Sequence)
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}

	c, err := b.js.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fetch(t, c, 1, 5*time.Second) {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	third, err := pub.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Duplicate {
		t.Error("re-publish after ingest within the window is not a duplicate")
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
	if got := counters(t, pub); got["stored"] != 1 || got["duplicate"] != 2 {
		t.Errorf("counters = %v", got)
	}
}

// TestSameIDOtherBytesReachesLedger: the bus must not swallow an event that
// has the id of an earlier one but other bytes; the ledger decides.
func TestSameIDOtherBytesReachesLedger(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	ctx := testContext(t, 10*time.Second)

	d := newDisclosure(t)
	first, err := pub.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	other := *d
	other.Justification = "Een andere toelichting."
	second, err := pub.Publish(ctx, &other)
	if err != nil {
		t.Fatal(err)
	}
	if second.Duplicate || second.Sequence == first.Sequence {
		t.Errorf("same id, other bytes = %+v, want a new message", second)
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
	c, err := b.js.Consumer(ctx, natsbus.Stream, natsbus.LedgerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msgs := fetch(t, c, 2, 5*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	id0, id1 := msgs[0].Headers().Get(jetstream.MsgIDHeader), msgs[1].Headers().Get(jetstream.MsgIDHeader)
	if id0 == id1 {
		t.Errorf("both messages have Nats-Msg-Id %q", id0)
	}
	for _, m := range msgs {
		env, err := events.ParseEnvelope(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != d.ID {
			t.Errorf("event id %s, want %s", got.ID, d.ID)
		}
	}
}

// TestPublishAsyncBounded publishes 5000 events asynchronously with a small
// in-flight bound, flushes, and checks that every one is on the bus and the
// bound was never exceeded.
func TestPublishAsyncBounded(t *testing.T) {
	const (
		n     = 5000
		bound = 64
	)
	b := newBus(t, amersfoort)
	pub := newPublisher(t, b.js, partyKey(t, amersfoort), natsbus.WithMaxInFlight(bound))
	ctx := testContext(t, 60*time.Second)

	inFlight := pub.Metrics()[1]
	var maxSeen atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := int64(gauge(inFlight)); v > maxSeen.Load() {
				maxSeen.Store(v)
			}
			time.Sleep(time.Millisecond)
		}
	}()

	pending := make([]*natsbus.PendingPublish, 0, n)
	for range n {
		pp, err := pub.PublishAsync(ctx, newDisclosure(t))
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, pp)
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled

	seen := map[uint64]bool{}
	for _, pp := range pending {
		select {
		case <-pp.Done():
		default:
			t.Fatalf("event %s not done after Flush", pp.EventID())
		}
		res, err := pp.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate || res.EventID != pp.EventID() || seen[res.Sequence] {
			t.Fatalf("result %+v", res)
		}
		seen[res.Sequence] = true
	}
	if got := streamMsgs(t, b.js, natsbus.Stream); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
	if m := maxSeen.Load(); m > bound {
		t.Errorf("in flight reached %d, bound %d", m, bound)
	}
	if v := gauge(inFlight); v != 0 {
		t.Errorf("in flight after Flush = %v", v)
	}
	if got := counters(t, pub); got["stored"] != n {
		t.Errorf("counters = %v", got)
	}
}

// TestPublishAsyncBlocksWhenFull: with the bound reached and no acks coming
// (a subscriber holds the subject but never answers), PublishAsync waits
// and honours its context; the held publishes fail with ErrAckTimeout and
// Flush reports them.
func TestPublishAsyncBlocksWhenFull(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	silent, err := nc.SubscribeSync(natsbus.DisclosureSubject(amersfoort))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	js := natstest.JetStream(t, nc)
	pub := newPublisher(t, js, partyKey(t, amersfoort),
		natsbus.WithMaxInFlight(2), natsbus.WithAckTimeout(300*time.Millisecond))

	ctx := testContext(t, 10*time.Second)
	held := make([]*natsbus.PendingPublish, 2)
	for i := range held {
		if held[i], err = pub.PublishAsync(ctx, newDisclosure(t)); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := pub.PublishAsync(short, newDisclosure(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishAsync beyond the bound = %v, want a deadline error", err)
	}
	err = pub.Flush(ctx)
	if !errors.Is(err, natsbus.ErrAckTimeout) {
		t.Fatalf("Flush = %v, want ErrAckTimeout", err)
	}
	for _, pp := range held {
		if _, err := pp.Wait(ctx); !errors.Is(err, natsbus.ErrAckTimeout) {
			t.Errorf("held publish = %v, want ErrAckTimeout", err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v, want the failures reported once", err)
	}
	// The slots are free again.
	if _, err := pub.PublishAsync(ctx, newDisclosure(t)); err != nil {
		t.Errorf("PublishAsync after the timeouts: %v", err)
	}
	if got := counters(t, pub); got["failed"] != 2 {
		t.Errorf("counters = %v", got)
	}
}

// TestNoStream: before the ledger has set up the bus, publishing and binding
// to rejections fail with ErrNoStream; a party without a consumer gets
// ErrNoConsumer.
func TestNoStream(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, js, key)
	ctx := testContext(t, 10*time.Second)

	if _, err := pub.Publish(ctx, newDisclosure(t)); !errors.Is(err, natsbus.ErrNoStream) {
		t.Errorf("Publish = %v, want ErrNoStream", err)
	}
	pp, err := pub.PublishAsync(ctx, newDisclosure(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pp.Wait(ctx); !errors.Is(err, natsbus.ErrNoStream) {
		t.Errorf("PublishAsync = %v, want ErrNoStream", err)
	}
	if err := pub.Flush(ctx); !errors.Is(err, natsbus.ErrNoStream) {
		t.Errorf("Flush = %v, want ErrNoStream", err)
	}
	if _, err := natsbus.Rejections(ctx, js, amersfoort); !errors.Is(err, natsbus.ErrNoStream) {
		t.Errorf("Rejections = %v, want ErrNoStream", err)
	}

	if err := natsbus.EnsureStreams(ctx, js, nil, natsbus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbus.Rejections(ctx, js, amersfoort); !errors.Is(err, natsbus.ErrNoConsumer) {
		t.Errorf("Rejections without a consumer = %v, want ErrNoConsumer", err)
	}
	if _, err := natsbus.Rejections(ctx, js, "Not A Party"); !errors.Is(err, natsbus.ErrInvalidParty) {
		t.Errorf("Rejections of a bad party id = %v, want ErrInvalidParty", err)
	}
	if _, err := pub.Publish(ctx, newDisclosure(t)); err != nil {
		t.Errorf("Publish once the stream exists: %v", err)
	}
}

func TestPublishRefusesInvalidDisclosure(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	d := newDisclosure(t)
	d.Channel = "carrier-pigeon"
	_, err := pub.Publish(testContext(t, 5*time.Second), d)
	var verrs events.ValidationErrors
	if !errors.As(err, &verrs) {
		t.Fatalf("Publish = %v, want ValidationErrors", err)
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestPublishEnvelope(t *testing.T) {
	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	ctx := testContext(t, 10*time.Second)

	d := newDisclosure(t)
	events.Seal(d, key)
	env, err := events.Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := pub.PublishEnvelope(ctx, amersfoort, env)
	if err != nil {
		t.Fatal(err)
	}
	if res.EventID != d.ID || res.Duplicate {
		t.Errorf("PublishEnvelope = %+v", res)
	}
	// Publish of the same disclosure gives the same bytes, so the same
	// message id.
	again, err := pub.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate {
		t.Error("Publish of the disclosure PublishEnvelope sent is not a duplicate")
	}

	if _, err := pub.PublishEnvelope(ctx, utrecht, env); err == nil {
		t.Error("PublishEnvelope accepted an envelope on another party's subject")
	}
	if _, err := pub.PublishEnvelope(ctx, "a.b", env); !errors.Is(err, natsbus.ErrInvalidParty) {
		t.Errorf("PublishEnvelope with party a.b = %v, want ErrInvalidParty", err)
	}
	pretty := append([]byte(" "), env...)
	var rej *events.RejectError
	if _, err := pub.PublishEnvelope(ctx, amersfoort, pretty); !errors.As(err, &rej) || rej.Reason != events.ReasonNonCanonical {
		t.Errorf("PublishEnvelope of a non-canonical envelope = %v", err)
	}
	if n := streamMsgs(t, b.js, natsbus.Stream); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

// receiptResponder answers receipt requests on nc like a ledger would:
// pending for the first pendingFor requests, then committed.
func receiptResponder(t *testing.T, nc *nats.Conn, pendingFor int) *atomic.Int64 {
	t.Helper()
	var requests atomic.Int64
	sub, err := nc.Subscribe(natsbus.ReceiptSubjects, func(m *nats.Msg) {
		req, err := natsbus.ParseReceiptRequest(m.Data)
		if err != nil {
			t.Errorf("receipt request: %v", err)
			return
		}
		r := natsbus.Receipt{EventID: req.EventID, Status: natsbus.ReceiptPending}
		if requests.Add(1) > int64(pendingFor) {
			r = natsbus.Receipt{EventID: req.EventID, Status: natsbus.ReceiptCommitted, LeafIndex: 1, TreeSize: 2,
				InclusionProof: [][]byte{bytes.Repeat([]byte{7}, 32)}, Checkpoint: []byte("spoor.test/regio-amersfoort\n2\nAAAA\n")}
		}
		b, err := jsonMarshal(r)
		if err != nil {
			t.Error(err)
			return
		}
		if err := m.Respond(b); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &requests
}

func TestWaitReceipt(t *testing.T) {
	s := natstest.RunServer(t)
	ledgerConn := natstest.Connect(t, s)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	pub := newPublisher(t, js, partyKey(t, amersfoort))
	id := newDisclosure(t).ID

	t.Run("ledger not running", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, err := pub.WaitReceipt(ctx, id, [32]byte{1}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitReceipt = %v, want a deadline error", err)
		}
	})
	t.Run("pending then committed", func(t *testing.T) {
		requests := receiptResponder(t, ledgerConn, 2)
		r, err := pub.WaitReceipt(testContext(t, 10*time.Second), id, [32]byte{1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != natsbus.ReceiptCommitted || r.EventID != id || r.LeafIndex != 1 || r.TreeSize != 2 || len(r.InclusionProof) != 1 {
			t.Errorf("receipt = %+v", r)
		}
		if n := requests.Load(); n != 3 {
			t.Errorf("ledger saw %d requests, want 3", n)
		}
	})
	t.Run("answer for another event", func(t *testing.T) {
		sub, err := ledgerConn.Subscribe(natsbus.ReceiptSubject(amersfoort), func(m *nats.Msg) {
			b, _ := jsonMarshal(natsbus.Receipt{EventID: newDisclosure(t).ID, Status: natsbus.ReceiptPending})
			_ = m.Respond(b)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := ledgerConn.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.WaitReceipt(testContext(t, 5*time.Second), id, [32]byte{1}); err == nil {
			t.Error("WaitReceipt accepted a receipt for another event")
		}
	})
	t.Run("bad event id", func(t *testing.T) {
		if _, err := pub.WaitReceipt(t.Context(), "not-an-id", [32]byte{1}); err == nil {
			t.Error("WaitReceipt accepted a bad event id")
		}
	})
}

// TestReceiptRequestCarriesHash: a receipt is about bytes, so a request
// without the envelope's SHA-256 (all that was sent before the fix) is not
// a request, and a Publisher says which bytes it published.
func TestReceiptRequestCarriesHash(t *testing.T) {
	id := newDisclosure(t).ID
	for _, body := range []string{
		`{"event_id":"` + id + `"}`,
		`{"event_id":"` + id + `","sha256":"` + strings.Repeat("A", 64) + `"}`,
		`{"event_id":"` + id + `","sha256":"` + strings.Repeat("0", 63) + `"}`,
	} {
		if _, err := natsbus.ParseReceiptRequest([]byte(body)); err == nil {
			t.Errorf("ParseReceiptRequest(%s) accepted it", body)
		}
	}
	req, err := natsbus.ParseReceiptRequest([]byte(`{"event_id":"` + id + `","sha256":"` + strings.Repeat("ab", 32) + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := req.Hash(); err != nil || h[0] != 0xab || h[31] != 0xab {
		t.Fatalf("Hash = %x, %v", h, err)
	}
	r := natsbus.Receipt{EventID: id, Status: natsbus.ReceiptIDConflict, LeafIndex: 3}
	if err := r.Validate(); err == nil {
		t.Error("an id_conflict receipt without its reason validates")
	}
	r.Reason = events.ReasonIDConflict
	if err := r.Validate(); err != nil {
		t.Errorf("id_conflict receipt: %v", err)
	}

	b := newBus(t, amersfoort)
	key := partyKey(t, amersfoort)
	pub := newPublisher(t, b.js, key)
	d := newDisclosure(t)
	res, err := pub.Publish(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.EnvelopeHash != sha256.Sum256(env) {
		t.Error("PublishResult.EnvelopeHash is not the SHA-256 of the envelope")
	}
	ds := []*events.Disclosure{newDisclosure(t), newDisclosure(t)}
	pp, err := pub.PublishBatchAsync(t.Context(), ds)
	if err != nil {
		t.Fatal(err)
	}
	hs := pp.EnvelopeHashes()
	for i, d := range ds {
		env, _ := events.Sign(d, key)
		if len(hs) != 2 || hs[i] != sha256.Sum256(env) {
			t.Fatalf("batch hash %d is not the SHA-256 of its envelope", i)
		}
	}
}
