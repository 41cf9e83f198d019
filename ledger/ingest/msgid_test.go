package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/ingest"
)

// TestIngestNeedsNatsMsgID: a message without the Nats-Msg-Id header,
// which the wire format requires, is refused (malformed) even when its
// envelope is good; and two distinct bad messages that carry neither an
// event id nor a msg id are each reported, never de-duplicated into one
// report on the party's rejections stream.
func TestIngestNeedsNatsMsgID(t *testing.T) {
	srv := natstest.RunServer(t)
	h := newHarness(t, srv, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	publish := func(party string, data []byte) {
		t.Helper()
		m := nats.NewMsg(natsbus.DisclosureSubject(party))
		m.Data = data
		if _, err := h.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	p0 := h.parties[0]
	publish(p0, []byte(`{"payloadType":"application/vnd.spoor.disclosure.v1+json","payload":`))
	publish(p0, []byte(`[1,2,3]`))
	waitStreamEmpty(t, h.js, natsbus.Stream)
	for _, r := range readRejections(t, h.js, p0, 2) {
		if r.Reason != events.ReasonMalformed || r.EventID != "" || r.MsgID != "" {
			t.Errorf("rejection %+v, want malformed without an event id or msg id", r)
		}
	}

	// A good envelope without the header is refused, under its event id.
	ev := h.events(1)[0]
	publish(ev.d.Discloser, ev.env)
	waitStreamEmpty(t, h.js, natsbus.Stream)
	r := readRejections(t, h.js, ev.d.Discloser, 1)[0]
	if r.Reason != events.ReasonMalformed || r.EventID != ev.d.ID || !strings.Contains(r.Message, "Nats-Msg-Id") {
		t.Fatalf("rejection %+v, want malformed for %s naming the missing Nats-Msg-Id", r, ev.d.ID)
	}
	if _, err := h.l.LookupEvent(ctx, ev.d.Discloser, ev.d.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("an event without a Nats-Msg-Id was logged: %v", err)
	}
	// Published as the wire format says, it is logged.
	m := nats.NewMsg(natsbus.DisclosureSubject(ev.d.Discloser))
	m.Data = ev.env
	m.Header.Set(jetstream.MsgIDHeader, natsbus.MsgID(ev.d.ID, ev.env))
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	if _, err := h.l.LookupEvent(ctx, ev.d.Discloser, ev.d.ID); err != nil {
		t.Fatalf("the event with its Nats-Msg-Id: %v", err)
	}
}
