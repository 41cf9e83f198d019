package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/ingest"
)

// TestRejectionsDroppedPerParty: with a per-party cap of 3 on the
// rejections stream, a party that floods it with 7 refused messages keeps
// its newest 3 and the drops of 4 are counted under its name; another
// party's rejection stays, with no drop counted.
func TestRejectionsDroppedPerParty(t *testing.T) {
	srv := natstest.RunServer(t)
	bus := busConfig
	bus.RejectedPerParty = 3
	h := newHarnessWith(t, srv, bus, ledger.Config{}, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	flooder, quiet := h.parties[0], h.parties[1]
	publish := func(party string) {
		t.Helper()
		m := nats.NewMsg(natsbus.DisclosureSubject(party))
		m.Data = []byte(`[1,2,3]`)
		m.Header.Set(jetstream.MsgIDHeader, randomMsgID())
		if _, err := h.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(quiet)
	waitStreamEmpty(t, h.js, natsbus.Stream)
	for range 7 {
		publish(flooder)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)

	dropped := func(party string) float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(h.in.Metrics()...)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "spoor_ingest_rejections_dropped_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "party" && l.GetValue() == party {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for dropped(flooder) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := dropped(flooder); got != 4 {
		t.Errorf("drops counted for the flooding party: %v, want 4", got)
	}
	if got := dropped(quiet); got != 0 {
		t.Errorf("drops counted for the quiet party: %v, want 0", got)
	}
	readRejections(t, h.js, flooder, 3)
	readRejections(t, h.js, quiet, 1)
}
