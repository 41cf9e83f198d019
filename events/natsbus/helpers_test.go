package natsbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
)

const (
	testOrigin = "spoor.test/regio-amersfoort"
	amersfoort = "gemeente-amersfoort"
	utrecht    = "gemeente-utrecht"
	// testBSN is a synthetic BSN from the 9999 test range; it passes the
	// elfproef and belongs to no one.
	testBSN = "999990019"
)

// testContext returns a context that ends with the test or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func partyKey(t *testing.T, party string) *events.PartyKey {
	t.Helper()
	k, err := events.GeneratePartyKey(party)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newDisclosure builds a disclosure that passes events.Validate once sealed
// by the party's key.
func newDisclosure(t *testing.T) *events.Disclosure {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := events.GenerateSubjectKey("kv-test-1")
	if err != nil {
		t.Fatal(err)
	}
	subject, err := events.SubjectFor(kv, events.IDTypeBSN, testBSN)
	if err != nil {
		t.Fatal(err)
	}
	return &events.Disclosure{
		Schema:             events.SchemaV1,
		Origin:             testOrigin,
		ID:                 id.String(),
		TraceID:            randomHex(t, 16),
		SpanID:             randomHex(t, 8),
		ProcessingActivity: "verwerking-leerlingzorg",
		OccurredAt:         time.Now().UTC().Truncate(time.Millisecond),
		Recipients:         []string{"swv-eemland"},
		Subject:            subject,
		SubjectAgeBand:     events.Age12To15,
		Categories:         []string{"schoolresultaten", "ondersteuningsbehoefte"},
		Purpose:            "passend-onderwijs",
		LegalBasis:         events.LegalBasis{Ground: "e", Statute: "wpo-8a"},
		Justification:      "Aanvraag toelaatbaarheidsverklaring besproken in het MDO.",
		Channel:            "mdo",
		Actor:              events.Actor{Role: "intern-begeleider", StaffID: "staff-1042"},
		CaseRef:            "case-2026-17",
	}
}

// bus is one embedded server with the ledger's streams set up.
type bus struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newBus(t *testing.T, parties ...string) *bus {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js := natstest.JetStream(t, nc)
	if err := natsbus.EnsureStreams(testContext(t, 10*time.Second), js, parties, natsbus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return &bus{srv: s, nc: nc, js: js}
}

func newPublisher(t *testing.T, js jetstream.JetStream, key *events.PartyKey, opts ...natsbus.Option) *natsbus.Publisher {
	t.Helper()
	p, err := natsbus.NewPublisher(js, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(testContext(t, 5*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testContext(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// fetch reads up to n messages from a consumer within wait.
func fetch(t *testing.T, c jetstream.Consumer, n int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return msgs
}

// gauge reads the value of a single gauge. It is safe to call from any
// goroutine (it does not use t).
func gauge(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// counters gathers the publisher's counters by result label.
func counters(t *testing.T, p *natsbus.Publisher) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(p.Metrics()[0]); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
