package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/webhook"
)

// waitLong bounds how long a test waits for something that must happen. It
// only keeps a broken test from hanging; nothing asserts on speed (a CI
// machine under load with the race detector is slow).
const waitLong = 2 * time.Minute

// busConfig is the bus of these tests. The de-duplication window is the
// shortest nats-server allows (100ms), so a test can re-publish identical
// bytes past it and see the ledger, not the bus, recognise them. AckWait
// stays at its default, so that tests counting outcomes see no
// redeliveries even on a slow machine; the restart test shortens it.
var busConfig = natsbus.StreamConfig{Duplicates: 100 * time.Millisecond}

// clientOpts make a client ride out a server restart: retry quickly, and
// forever (the connection is closed in t.Cleanup).
func clientOpts() []nats.Option {
	return []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(25 * time.Millisecond), nats.ReconnectJitter(0, 0)}
}

// harness is one ledger on Pebble fed by ingest from one embedded
// nats-server, the way `spoor serve` wires them.
type harness struct {
	t       *testing.T
	env     *testledger.Env
	l       *ledger.Ledger
	store   *pebblestore.Store
	srv     *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	in      *ingest.Ingest
	parties []string

	pubMu sync.Mutex
	pubs  map[string]*natsbus.Publisher

	// logs holds every log line of the ledger and ingest.
	logs *lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for concurrent use (a log's writer).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sent is an event as its party published it: the payload and the one
// envelope the party's key makes of it.
type sent struct {
	d   *events.Disclosure
	env []byte
}

func newHarness(t *testing.T, srv *server.Server, icfg ingest.Config) *harness {
	t.Helper()
	return newHarnessWith(t, srv, busConfig, ledger.Config{}, icfg)
}

// newHarnessWith is newHarness with a bus and a ledger configuration.
func newHarnessWith(t *testing.T, srv *server.Server, bus natsbus.StreamConfig, lcfg ledger.Config, icfg ingest.Config) *harness {
	t.Helper()
	env := testledger.New(t)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	lcfg.IdleCosign, lcfg.Logger = -1, logger
	l, store := env.Open(t, lcfg)
	nc := natstest.Connect(t, srv, clientOpts()...)
	js := natstest.JetStream(t, nc)
	sc, _ := l.Covenant()
	var parties []string
	for _, p := range sc.Covenant.Parties {
		parties = append(parties, p.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := natsbus.EnsureStreams(ctx, js, parties, bus); err != nil {
		t.Fatal(err)
	}
	icfg.Ledger, icfg.JS, icfg.Logger = l, js, logger
	in := ingest.New(icfg)
	runCtx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- in.Run(runCtx) }()
	rcptErr := make(chan error, 1)
	go func() { rcptErr <- in.ServeReceipts(runCtx, nc) }()
	h := &harness{t: t, env: env, l: l, store: store, srv: srv, nc: nc, js: js, in: in, parties: parties,
		pubs: map[string]*natsbus.Publisher{}, logs: logs}
	t.Cleanup(func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("ingest.Run: %v", err)
		}
		<-rcptErr
		if err := l.Close(); err != nil {
			t.Errorf("ledger.Close: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	return h
}

// publisher returns party's Publisher, on a connection of its own as a
// party's system would have.
func (h *harness) publisher(party string) *natsbus.Publisher {
	h.t.Helper()
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	if p := h.pubs[party]; p != nil {
		return p
	}
	key := h.env.Demo.Parties[party]
	if key == nil {
		h.t.Fatalf("no demo key for party %q", party)
	}
	nc := natstest.Connect(h.t, h.srv, clientOpts()...)
	// The ack timeout is long for a slow machine, and short enough that
	// publishes lost in the restart test are retried within its patience.
	js := natstest.JetStream(h.t, nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	p, err := natsbus.NewPublisher(js, key, natsbus.WithAckTimeout(10*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	h.pubs[party] = p
	return p
}

// events makes n signed synthetic events of the demo parties.
func (h *harness) events(n int) []sent {
	h.t.Helper()
	out := make([]sent, n)
	for i := range out {
		env, d := h.env.Event(h.t)
		out[i] = sent{d: d, env: env}
	}
	return out
}

// byParty groups events by discloser and makes each discloser's Publisher
// (on the test goroutine, which may fail the test).
func (h *harness) byParty(evs []sent) map[*natsbus.Publisher][]sent {
	h.t.Helper()
	out := map[*natsbus.Publisher][]sent{}
	for _, ev := range evs {
		p := h.publisher(ev.d.Discloser)
		out[p] = append(out[p], ev)
	}
	return out
}

// publishAsync publishes evs with their disclosers' Publishers, one
// goroutine per party, asynchronously, and returns the events whose publish
// failed (no ack in time, connection lost), which the caller publishes
// again. It does not touch h.t, so it may run on any goroutine.
func publishAsync(ctx context.Context, groups map[*natsbus.Publisher][]sent) []sent {
	var mu sync.Mutex
	var failed []sent
	var wg sync.WaitGroup
	for p, evs := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pending := make([]*natsbus.PendingPublish, len(evs))
			for i, ev := range evs {
				pp, err := p.PublishAsync(ctx, ev.d)
				if err != nil {
					mu.Lock()
					failed = append(failed, ev)
					mu.Unlock()
					continue
				}
				pending[i] = pp
			}
			for i, pp := range pending {
				if pp == nil {
					continue
				}
				if _, err := pp.Wait(ctx); err != nil {
					mu.Lock()
					failed = append(failed, evs[i])
					mu.Unlock()
				}
			}
			_ = p.Flush(ctx) // the failures are counted above, per event
		}()
	}
	wg.Wait()
	return failed
}

// publishUntilAcked publishes each event synchronously, again and again,
// until the bus acks it: what a party does with a publish that failed.
func (h *harness) publishUntilAcked(evs []sent) {
	h.t.Helper()
	deadline := time.Now().Add(waitLong)
	for _, ev := range evs {
		p := h.publisher(ev.d.Discloser)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := p.Publish(ctx, ev.d)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("event %s: publish kept failing: %v", ev.d.ID, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitForSize waits until the ledger's checkpoint covers size leaves.
func waitForSize(t *testing.T, l *ledger.Ledger, size uint64) {
	t.Helper()
	deadline := time.NewTimer(waitLong)
	defer deadline.Stop()
	for {
		// Take the channel before reading the head, so that a commit in
		// between is not missed.
		next := l.Committed()
		if l.Head().Size >= size {
			return
		}
		select {
		case <-next:
		case <-l.Done():
			t.Fatalf("the ledger stopped at size %d before reaching %d: %v", l.Head().Size, size, l.Err())
		case <-deadline.C:
			t.Fatalf("the ledger is at size %d after %s, want %d", l.Head().Size, waitLong, size)
		}
	}
}

// waitStreamEmpty waits until a work-queue stream holds no messages: the
// ledger has acked (or terminated) everything.
func waitStreamEmpty(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	var last uint64
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil {
			if info.State.Msgs == 0 {
				return
			}
			last = info.State.Msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s still holds %d messages after %s", name, last, waitLong)
}

// countKeys counts the store's keys with a one-byte table tag (see the key
// layout in ledger/keys.go): 'e' entries (envelopes and covenant bodies),
// 'l' leaf records, 'i' the event-id index.
func countKeys(t *testing.T, s *pebblestore.Store, tag byte) uint64 {
	t.Helper()
	var n uint64
	err := s.Scan(context.Background(), []byte{tag}, []byte{tag + 1}, func(_, _ []byte) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hashStore is an in-memory tlog.HashReader.
type hashStore []tlog.Hash

func (hs hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(hs)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = hs[x]
	}
	return out, nil
}

// checkRootFromStore recomputes the tree from what the store holds, with
// golang.org/x/mod/sumdb/tlog: each stored entry must hash to its leaf
// record's body hash, and the leaf records must hash to the root that the
// newest checkpoint (opened with the log keys) commits to.
func (h *harness) checkRootFromStore() *verifier.Checkpoint {
	h.t.Helper()
	ctx := context.Background()
	cp, err := verifier.OpenCheckpoint(h.l.Head().Note, h.env.Keys)
	if err != nil {
		h.t.Fatalf("the newest checkpoint does not open with the log keys: %v", err)
	}
	var hs hashStore
	for i := uint64(0); i < cp.Size; i++ {
		recBytes, err := h.l.LeafRecordBytes(ctx, i)
		if err != nil {
			h.t.Fatalf("leaf record %d: %v", i, err)
		}
		rec, err := verifier.ParseLeafRecord(recBytes)
		if err != nil {
			h.t.Fatalf("leaf record %d: %v", i, err)
		}
		want := verifier.EntryDisclosure
		if i == 0 {
			want = verifier.EntryCovenant
		}
		if rec.Type != want {
			h.t.Fatalf("leaf %d is a %s entry, want %s", i, rec.Type, want)
		}
		body, err := h.l.Entry(ctx, i)
		if err != nil {
			h.t.Fatalf("entry %d: %v", i, err)
		}
		if sha256.Sum256(body) != rec.BodyHash {
			h.t.Fatalf("stored entry %d does not hash to its leaf record", i)
		}
		added, err := tlog.StoredHashes(int64(i), recBytes, hs)
		if err != nil {
			h.t.Fatal(err)
		}
		hs = append(hs, added...)
	}
	root, err := tlog.TreeHash(int64(cp.Size), hs)
	if err != nil {
		h.t.Fatal(err)
	}
	if root != tlog.Hash(cp.Hash) {
		h.t.Fatalf("root recomputed from the store %x != checkpoint root %x at size %d", root[:8], cp.Hash[:8], cp.Size)
	}
	return cp
}

// checkExactlyOnce checks that every event is logged once, with its exact
// bytes, and that the log holds nothing else than the covenant, these
// events and extra other leaves.
func (h *harness) checkExactlyOnce(evs []sent, extra uint64) map[string]uint64 {
	h.t.Helper()
	ctx := context.Background()
	indexOf := make(map[string]uint64, len(evs))
	owner := map[uint64]string{}
	for _, ev := range evs {
		idx, err := h.l.LookupEvent(ctx, ev.d.Discloser, ev.d.ID)
		if err != nil {
			h.t.Fatalf("event %s is not logged: %v", ev.d.ID, err)
		}
		if other, ok := owner[idx]; ok {
			h.t.Fatalf("events %s and %s share leaf %d", other, ev.d.ID, idx)
		}
		owner[idx] = ev.d.ID
		indexOf[ev.d.ID] = idx
		body, err := h.l.Entry(ctx, idx)
		if err != nil {
			h.t.Fatalf("entry %d: %v", idx, err)
		}
		if !bytes.Equal(body, ev.env) {
			h.t.Fatalf("leaf %d holds other bytes than event %s was published with", idx, ev.d.ID)
		}
	}
	want := 1 + uint64(len(evs)) + extra
	if size := h.l.Head().Size; size != want {
		h.t.Fatalf("tree size %d, want %d (the covenant and %d events)", size, want, uint64(len(evs))+extra)
	}
	if n := countKeys(h.t, h.store, 'e'); n != want {
		h.t.Fatalf("the store holds %d entries for a tree of %d leaves", n, want)
	}
	if n := countKeys(h.t, h.store, 'l'); n != want {
		h.t.Fatalf("the store holds %d leaf records for a tree of %d leaves", n, want)
	}
	if n := countKeys(h.t, h.store, 'd'); n != want-1 {
		h.t.Fatalf("the event-id index has %d ids for %d disclosures", n, want-1)
	}
	return indexOf
}

// counter reads one counter (or the sum of a counter vector) from
// collectors.
func counter(t *testing.T, name string, cs []prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestIngestEndToEnd(t *testing.T) {
	srv := natstest.RunServer(t)
	h := newHarness(t, srv, ingest.Config{})
	n := 2000
	if testing.Short() {
		n = 500
	}
	evs := h.events(n)
	groups := h.byParty(evs)
	if len(groups) < 3 {
		t.Fatalf("only %d parties publish; the test wants several publishers at once", len(groups))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// A publish that got no ack in time (possible on a starved machine)
	// is published again, as a party's system does; the ledger must then
	// still hold each event once.
	if failed := publishAsync(ctx, groups); len(failed) > 0 {
		t.Logf("%d publishes got no ack in time; publishing them again", len(failed))
		h.publishUntilAcked(failed)
	}
	waitForSize(t, h.l, uint64(n+1))

	indexOf := h.checkExactlyOnce(evs, 0)
	cp := h.checkRootFromStore()
	if cp.Size != uint64(n+1) {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, n+1)
	}
	// Work-queue retention: once acked, nothing stays on the bus.
	waitStreamEmpty(t, h.js, natsbus.Stream)

	// Receipts, for a sample of the events, from each discloser's own
	// Publisher; each verifies against the log keys alone. The same
	// question from another party is answered as pending.
	ctx, cancel = context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for i := 0; i < n; i += 37 {
		ev := evs[i]
		r := waitReceipt(t, h.publisher(ev.d.Discloser), ev.d.ID, ev.env)
		verifyReceipt(t, h.env.Keys, r, ev.env)
		if r.LeafIndex != indexOf[ev.d.ID] {
			t.Fatalf("receipt of %s names leaf %d, the index says %d", ev.d.ID, r.LeafIndex, indexOf[ev.d.ID])
		}
		other := h.otherParty(ev.d.Discloser)
		got := requestReceipt(ctx, t, h.nc, other, ev.d.ID, ev.env)
		if got.Status != natsbus.ReceiptPending || got.LeafIndex != 0 || len(got.Checkpoint) != 0 {
			t.Fatalf("party %s asking for %s's event got %+v, want a bare pending", other, ev.d.Discloser, got)
		}
	}
	if got := counter(t, "spoor_ingest_committed_total", h.in.Metrics()); got != float64(n) {
		t.Fatalf("spoor_ingest_committed_total = %v, want %d", got, n)
	}
}

// otherParty returns a covenant party other than party.
func (h *harness) otherParty(party string) string {
	for _, p := range h.parties {
		if p != party {
			return p
		}
	}
	h.t.Fatal("the covenant has one party")
	return ""
}

func TestIngestRecognisesDuplicates(t *testing.T) {
	srv := natstest.RunServer(t)
	h := newHarness(t, srv, ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ev := h.events(1)[0]
	p := h.publisher(ev.d.Discloser)
	if _, err := p.Publish(ctx, ev.d); err != nil {
		t.Fatal(err)
	}
	first := waitReceipt(t, p, ev.d.ID, ev.env)
	verifyReceipt(t, h.env.Keys, first, ev.env)

	// The same bytes again once the bus's de-duplication window has
	// passed: the bus stores them again (Duplicate false), and the ledger
	// must recognise them. nats-server forgets message ids on a timer, so
	// re-publish until the bus no longer calls it a duplicate.
	deadline := time.Now().Add(waitLong)
	for {
		time.Sleep(busConfig.Duplicates)
		res, err := p.Publish(ctx, ev.d)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bus still de-duplicates after its window")
		}
	}
	// And three copies at once, under other message ids (a client that
	// sets its own), so that they may share a batch: the ledger checks
	// against the batch being built as well as against its index.
	for range 3 {
		m := nats.NewMsg(natsbus.DisclosureSubject(ev.d.Discloser))
		m.Data = ev.env
		m.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
		if _, err := h.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("no acks for the copies")
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	// Acks follow the commit, so once the stream is empty every copy has
	// been through the sequencer.
	if got := counter(t, "spoor_ingest_duplicates_total", h.in.Metrics()); got != 4 {
		t.Fatalf("ingest counted %v duplicates, want 4", got)
	}
	if got := counter(t, "spoor_ledger_duplicates_total", h.l.Metrics()); got != 4 {
		t.Fatalf("the ledger counted %v duplicates, want 4", got)
	}
	h.checkExactlyOnce([]sent{ev}, 0)
	h.checkRootFromStore()
	again := waitReceipt(t, p, ev.d.ID, ev.env)
	if again.LeafIndex != first.LeafIndex {
		t.Fatalf("receipt after the copies names leaf %d, first %d", again.LeafIndex, first.LeafIndex)
	}
}

// hexRun matches what could be a pseudonym (64 hex characters) or a part
// of one long enough to matter.
var hexRun = regexp.MustCompile(`[0-9a-fA-F]{32,}`)

// rejectCase is one envelope the ledger must refuse.
type rejectCase struct {
	name    string
	subject string // the party whose subject it is published on
	data    []byte
	msgID   string
	eventID string // "" when the envelope is too broken to name one
	reason  events.Reason
	// logged is set for the one case whose id is in the log (the first
	// bytes stand): the ledger keeps no rejection record under it.
	logged bool
}

func TestIngestRejections(t *testing.T) {
	srv := natstest.RunServer(t)
	// A longer linger makes the refused envelopes and the good events
	// share batches.
	notes := &recordingNotifier{}
	h := newHarness(t, srv, ingest.Config{Linger: 20 * time.Millisecond, Notify: notes})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	// An event already in the log, for the "same id, other bytes" case.
	logged := h.events(1)[0]
	p := h.publisher(logged.d.Discloser)
	if _, err := p.Publish(ctx, logged.d); err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, h.env.Keys, waitReceipt(t, p, logged.d.ID, logged.env), logged.env)

	cases := h.rejectCases(logged)
	good := h.events(40)

	// Interleave good and bad on the bus, asynchronously so they arrive
	// together.
	publish := func(subject string, data []byte, msgID string) {
		m := nats.NewMsg(natsbus.DisclosureSubject(subject))
		m.Data = data
		if msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		if _, err := h.js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range good {
		publish(ev.d.Discloser, ev.env, natsbus.MsgID(ev.d.ID, ev.env))
		if i < len(cases) {
			c := cases[i]
			publish(c.subject, c.data, c.msgID)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("no publish acks")
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)

	// The good events are logged, each once; nothing refused entered the
	// log.
	h.checkExactlyOnce(append([]sent{logged}, good...), 0)
	h.checkRootFromStore()

	// Each refusal is on its party's rejections consumer with its reason,
	// and recorded for the status API.
	want := map[string][]rejectCase{}
	for _, c := range cases {
		want[c.subject] = append(want[c.subject], c)
	}
	for party, cs := range want {
		var got []*natsbus.Rejection
		if h.inCovenant(party) {
			got = readRejections(t, h.js, party, len(cs))
		} else {
			noRejectionOn(t, h.js, party)
			continue
		}
		for _, c := range cs {
			r := findRejection(got, c)
			if r == nil {
				t.Errorf("%s: no rejection on %s (got %d others)", c.name, natsbus.RejectedSubject(party), len(got))
				continue
			}
			if r.Reason != c.reason || r.Party != party || r.EventID != c.eventID {
				t.Errorf("%s: rejection %+v, want reason %s for party %s, event %q", c.name, r, c.reason, party, c.eventID)
			}
			if hexRun.MatchString(r.Message) {
				t.Errorf("%s: the rejection message carries what may be a pseudonym: %q", c.name, r.Message)
			}
		}
	}
	for _, c := range cases {
		if c.eventID == "" {
			continue
		}
		recorded := c.subject
		if !h.inCovenant(c.subject) {
			recorded = "" // kept without the token the sender chose
		}
		rej, err := h.l.Rejected(ctx, recorded, c.eventID)
		if c.logged {
			// The id stands in the log with its first bytes; the refusal
			// of the second is recorded with the hash of its bytes.
			if err != nil || rej.Reason != events.ReasonIDConflict {
				t.Errorf("%s: the conflict is not recorded: %+v, %v", c.name, rej, err)
			}
			if idx, err := h.l.LookupEvent(ctx, c.subject, c.eventID); err != nil {
				t.Errorf("%s: the first event is gone: %v", c.name, err)
			} else if body, _ := h.l.Entry(ctx, idx); !bytes.Equal(body, logged.env) {
				t.Errorf("%s: leaf %d no longer holds the first bytes", c.name, idx)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Ledger.Rejected: %v", c.name, err)
			continue
		}
		if rej.Reason != c.reason || rej.Party != recorded {
			t.Errorf("%s: recorded %+v, want reason %s for party %q", c.name, rej, c.reason, recorded)
		}
		if _, err := h.l.LookupEvent(ctx, c.subject, c.eventID); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("%s: a refused event is in the index: %v", c.name, err)
		}
	}
	if got := counter(t, "spoor_ingest_rejected_total", h.in.Metrics()); got != float64(len(cases)) {
		t.Errorf("spoor_ingest_rejected_total = %v, want %d", got, len(cases))
	}

	// The notifier heard of each refusal on a covenant party's subject,
	// by that party, with its reason and event id; of none on another
	// subject; and of the findings of every logged event that has any.
	notes.mu.Lock()
	defer notes.mu.Unlock()
	for _, c := range cases {
		got := notes.rejected[c.subject]
		found := slices.ContainsFunc(got, func(r webhook.RejectedEvent) bool {
			return r.Reason == string(c.reason) && r.EventID == c.eventID
		})
		if h.inCovenant(c.subject) != found {
			t.Errorf("%s: notified %v (party in covenant: %v): %+v", c.name, found, h.inCovenant(c.subject), got)
		}
	}
	withFindings := 0
	for _, ev := range append([]sent{logged}, good...) {
		idx, err := h.l.LookupEvent(ctx, ev.d.Discloser, ev.d.ID)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := h.l.Findings(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(notes.findings[ev.d.Discloser], func(f webhook.FindingEvent) bool {
			return f.EventID == ev.d.ID && f.LeafIndex == idx && len(f.Rules) == len(fs)
		})
		if (len(fs) > 0) != found {
			t.Errorf("event %s with %d findings: notified %v", ev.d.ID, len(fs), found)
		}
		withFindings += min(len(fs), 1)
		// The receipt carries the same findings (rule and field).
		if len(fs) > 0 {
			r := waitReceipt(t, h.publisher(ev.d.Discloser), ev.d.ID, ev.env)
			if len(r.Findings) != len(fs) {
				t.Errorf("event %s: the receipt carries %d findings, the ledger stored %d", ev.d.ID, len(r.Findings), len(fs))
			}
			for i := range min(len(r.Findings), len(fs)) {
				if r.Findings[i].Rule != fs[i].Rule || r.Findings[i].Field != fs[i].Field {
					t.Errorf("event %s: receipt finding %+v, stored %+v", ev.d.ID, r.Findings[i], fs[i])
				}
			}
		}
	}
	if withFindings == 0 {
		t.Error("no logged event has findings: the findings notices went untested")
	}
}

// recordingNotifier is an ingest.Notifier that keeps what it is told.
type recordingNotifier struct {
	mu       sync.Mutex
	rejected map[string][]webhook.RejectedEvent
	findings map[string][]webhook.FindingEvent
}

func (r *recordingNotifier) Rejected(_ context.Context, party string, _ time.Time, rs []webhook.RejectedEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[string][]webhook.RejectedEvent{}
	}
	r.rejected[party] = append(r.rejected[party], rs...)
	return nil
}

func (r *recordingNotifier) Findings(_ context.Context, party string, _ time.Time, fs []webhook.FindingEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.findings == nil {
		r.findings = map[string][]webhook.FindingEvent{}
	}
	r.findings[party] = append(r.findings[party], fs...)
	return nil
}

// rejectCases builds one envelope per rejection reason that ingest must
// tell apart. logged is an event already in the log.
func (h *harness) rejectCases(logged sent) []rejectCase {
	t := h.t
	t.Helper()
	msgID := func(id string, data []byte) string { return natsbus.MsgID(id, data) }
	var cases []rejectCase

	garbage := []byte(`{"payloadType":"application/vnd.spoor.disclosure.v1+json","payload":`)
	cases = append(cases, rejectCase{name: "malformed JSON", subject: h.parties[0], data: garbage,
		msgID: msgID(uuid.Must(uuid.NewV7()).String(), garbage), reason: events.ReasonMalformed})

	// A valid payload whose signature is by another key, under the keyid
	// of the party's key in force.
	ev := h.events(1)[0]
	e, err := events.ParseEnvelope(ev.env)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := events.GeneratePartyKey(ev.d.Discloser)
	if err != nil {
		t.Fatal(err)
	}
	forged := events.SignEnvelope(events.PayloadType, e.Payload, impostor.Private)
	forged = bytes.Replace(forged, []byte(impostor.KeyID()), []byte(e.KeyID), 1)
	cases = append(cases, rejectCase{name: "bad signature", subject: ev.d.Discloser, data: forged,
		msgID: msgID(ev.d.ID, forged), eventID: ev.d.ID, reason: events.ReasonBadSignature})

	// A party that is not in the covenant, on its own subject.
	stranger, err := events.GeneratePartyKey("school-buiten-convenant")
	if err != nil {
		t.Fatal(err)
	}
	d := *h.events(1)[0].d
	d.ID = uuid.Must(uuid.NewV7()).String()
	events.Seal(&d, stranger)
	strangeEnv, err := events.Sign(&d, stranger)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, rejectCase{name: "unknown party", subject: stranger.Party, data: strangeEnv,
		msgID: msgID(d.ID, strangeEnv), eventID: d.ID, reason: events.ReasonUnknownParty})

	// A party's good event on another party's subject.
	ev = h.events(1)[0]
	cases = append(cases, rejectCase{name: "wrong subject", subject: h.otherParty(ev.d.Discloser), data: ev.env,
		msgID: msgID(ev.d.ID, ev.env), eventID: ev.d.ID, reason: events.ReasonWrongSubject})

	// A good event of this covenant signed for another log.
	d = *h.events(1)[0].d
	d.Origin = "spoor.test/elders"
	otherLog := h.env.Sign(t, &d)
	cases = append(cases, rejectCase{name: "wrong origin", subject: d.Discloser, data: otherLog,
		msgID: msgID(d.ID, otherLog), eventID: d.ID, reason: events.ReasonWrongOrigin})

	// The logged event's id with other bytes.
	d = *logged.d
	d.Justification += " (aangevuld)"
	conflict := h.env.Sign(t, &d)
	cases = append(cases, rejectCase{name: "same id, other bytes", subject: d.Discloser, data: conflict,
		msgID: msgID(d.ID, conflict), eventID: d.ID, reason: events.ReasonIDConflict, logged: true})
	return cases
}

func (h *harness) inCovenant(party string) bool {
	for _, p := range h.parties {
		if p == party {
			return true
		}
	}
	return false
}

// readRejections reads exactly n rejections from party's consumer, acking
// them, and checks that no more follow.
func readRejections(t *testing.T, js jetstream.JetStream, party string, n int) []*natsbus.Rejection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := natsbus.Rejections(ctx, js, party)
	if err != nil {
		t.Fatal(err)
	}
	var out []*natsbus.Rejection
	read := func(max int, wait time.Duration) {
		batch, err := c.Fetch(max, jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			r, err := natsbus.ParseRejection(m.Data())
			if err != nil {
				t.Fatalf("rejection on %s: %v", m.Subject(), err)
			}
			out = append(out, r)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("fetch: %v", err)
		}
	}
	deadline := time.Now().Add(waitLong)
	for len(out) < n && time.Now().Before(deadline) {
		read(n-len(out), time.Second)
	}
	if len(out) != n {
		t.Fatalf("%d rejections for %s, want %d", len(out), party, n)
	}
	read(1, 200*time.Millisecond)
	if len(out) != n {
		t.Fatalf("an extra rejection for %s: %+v", party, out[n:])
	}
	return out
}

// lastRejections reads what the rejections stream holds for a party that
// has no consumer (one outside the covenant), as the operator can.
// noRejectionOn fails if a rejection was published on token's rejections
// subject: a token that names no party of the covenant is the sender's
// choice, and nothing is published under it (nobody reads such a subject,
// and its name would be kept in the stream's files).
func noRejectionOn(t *testing.T, js jetstream.JetStream, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := js.Stream(ctx, natsbus.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.GetLastMsgForSubject(ctx, natsbus.RejectedSubject(token)); err == nil {
		t.Errorf("a rejection was published on the subject the sender chose: %s", m.Data)
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatal(err)
	}
}

func findRejection(rs []*natsbus.Rejection, c rejectCase) *natsbus.Rejection {
	for _, r := range rs {
		if r.MsgID == c.msgID {
			return r
		}
	}
	return nil
}

func TestIngestRidesOutNATSRestart(t *testing.T) {
	storeDir := t.TempDir()
	srv := natstest.RunServer(t, func(o *server.Options) { o.StoreDir = storeDir })
	port := srv.Addr().(*net.TCPAddr).Port
	// Small batches: more commits, and more acks in flight when the
	// server goes away. A short AckWait brings back soon the messages
	// whose acks the old server never saw.
	bus := busConfig
	bus.AckWait = 2 * time.Second
	h := newHarnessWith(t, srv, bus, ledger.Config{MaxBatch: 32}, ingest.Config{Batch: 32})
	n := 1000
	if testing.Short() {
		n = 300
	}
	evs := h.events(n)
	before, after := h.byParty(evs[:n/2]), h.byParty(evs[n/2:])
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	// The first half is being published; as soon as the ledger has
	// committed its first batch, while more are fetched, committed and
	// acked, the server goes down and a new one starts on the same store
	// and port; then the second half is published. How far ingest got
	// before the restart varies from run to run and is logged.
	failedc := make(chan []sent, 1)
	go func() { failedc <- publishAsync(ctx, before) }()
	waitForSize(t, h.l, 2)
	srv.Shutdown()
	srv.WaitForShutdown()
	t.Logf("server stopped at tree size %d of %d", h.l.Head().Size, n+1)
	srv2 := natstest.RunServer(t, func(o *server.Options) { o.StoreDir = storeDir; o.Port = port })
	h.srv = srv2
	failed := <-failedc
	failed = append(failed, publishAsync(ctx, after)...)
	t.Logf("%d publishes failed across the restart; publishing them again", len(failed))
	h.publishUntilAcked(failed)

	waitForSize(t, h.l, uint64(n+1))
	h.checkExactlyOnce(evs, 0)
	h.checkRootFromStore()
	waitStreamEmpty(t, h.js, natsbus.Stream)
	// Receipts are served on the new server as well.
	for _, ev := range []sent{evs[0], evs[n/2], evs[n-1]} {
		verifyReceipt(t, h.env.Keys, waitReceipt(t, h.publisher(ev.d.Discloser), ev.d.ID, ev.env), ev.env)
	}
	t.Logf("ingest committed %v and recognised %v redelivered or re-published copies",
		counter(t, "spoor_ingest_committed_total", h.in.Metrics()), counter(t, "spoor_ingest_duplicates_total", h.in.Metrics()))
}

// TestIngestBatchMessages sends events as batch messages (natsbus.BatchHeader):
// each event is logged once and has its receipt, a refused event in a batch
// is reported on its own while the rest of the batch is logged, a batch
// whose header and body disagree is refused whole, and a batch delivered
// again is recognised event by event.
func TestIngestBatchMessages(t *testing.T) {
	srv := natstest.RunServer(t)
	h := newHarness(t, srv, ingest.Config{Batch: 100})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	// Every party's events in batches of up to 64, from its Publisher,
	// asynchronously; the ingest batch (100 events) is smaller than two
	// batch messages, which are never split.
	evs := h.events(300)
	var pending []*natsbus.PendingPublish
	for p, group := range h.byParty(evs) {
		for len(group) > 0 {
			k := min(64, len(group))
			ds := make([]*events.Disclosure, k)
			for i := range k {
				ds[i] = group[i].d
			}
			pp, err := p.PublishBatchAsync(ctx, ds)
			if err != nil {
				t.Fatal(err)
			}
			if got := pp.EventIDs(); len(got) != k || got[0] != ds[0].ID {
				t.Fatalf("pending batch names %d events starting %v, want %d starting %s", len(got), got[:1], k, ds[0].ID)
			}
			pending = append(pending, pp)
			group = group[k:]
		}
	}
	for _, pp := range pending {
		res, err := pp.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.EventIDs) != len(pp.EventIDs()) || res.EventID != res.EventIDs[0] {
			t.Fatalf("batch result %+v does not name its events", res)
		}
	}
	waitForSize(t, h.l, uint64(len(evs)+1))
	waitStreamEmpty(t, h.js, natsbus.Stream)
	h.checkExactlyOnce(evs, 0)
	for i := 0; i < len(evs); i += 29 {
		verifyReceipt(t, h.env.Keys, waitReceipt(t, h.publisher(evs[i].d.Discloser), evs[i].d.ID, evs[i].env), evs[i].env)
	}
	if got := counter(t, "spoor_ingest_committed_total", h.in.Metrics()); got != float64(len(evs)) {
		t.Fatalf("spoor_ingest_committed_total = %v, want %d", got, len(evs))
	}

	// A batch on one party's subject with an event of another party in the
	// middle: that one is refused (wrong subject), the others are logged,
	// and the stream is empty afterwards (the message was acked).
	mixed := h.events(12)
	party := mixed[0].d.Discloser
	var own []sent
	var stranger *sent
	for i := range mixed {
		if mixed[i].d.Discloser == party {
			own = append(own, mixed[i])
		} else if stranger == nil {
			stranger = &mixed[i]
		}
	}
	for stranger == nil {
		ev := h.events(1)[0]
		if ev.d.Discloser != party {
			stranger = &ev
		}
	}
	envs := [][]byte{}
	for i, ev := range own {
		envs = append(envs, ev.env)
		if i == len(own)/2 {
			envs = append(envs, stranger.env)
		}
	}
	if len(own) == 1 {
		envs = append(envs, stranger.env)
	}
	m, err := natsbus.BatchMessage(party, envs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	h.checkExactlyOnce(append(evs, own...), 0)
	rej := readRejections(t, h.js, party, 1)[0]
	if rej.Reason != events.ReasonWrongSubject || rej.EventID != stranger.d.ID ||
		rej.MsgID != m.Header.Get(jetstream.MsgIDHeader) || rej.Line != len(own)/2+2 {
		t.Fatalf("rejection %+v, want wrong_subject for %s with the batch's message id at line %d", rej, stranger.d.ID, len(own)/2+2)
	}
	if _, err := h.l.LookupEvent(ctx, stranger.d.Discloser, stranger.d.ID); err == nil {
		t.Fatal("the other party's event was logged from a batch on the wrong subject")
	}

	// The same batch again under another message id: every event of the
	// party is a duplicate, the stranger refused again.
	dups := counter(t, "spoor_ingest_duplicates_total", h.in.Metrics())
	m.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	if got := counter(t, "spoor_ingest_duplicates_total", h.in.Metrics()) - dups; got != float64(len(own)) {
		t.Fatalf("the batch again gave %v duplicates, want %d", got, len(own))
	}
	readRejections(t, h.js, party, 1)

	// Two envelopes of one batch refused for the same reason, with no
	// event id to tell them apart: each is reported, by its line.
	junk := nats.NewMsg(natsbus.DisclosureSubject(party))
	junk.Data = []byte("{\"a\":1}\n{\"b\":2}\n")
	junk.Header.Set(natsbus.BatchHeader, "2")
	junk.Header.Set(jetstream.MsgIDHeader, natsbus.BatchMsgID(junk.Data))
	if _, err := h.js.PublishMsg(ctx, junk); err != nil {
		t.Fatal(err)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	lines := map[int]bool{}
	for _, r := range readRejections(t, h.js, party, 2) {
		if r.Reason != events.ReasonMalformed || r.EventID != "" || r.MsgID != natsbus.BatchMsgID(junk.Data) {
			t.Errorf("rejection %+v, want malformed without an event id, with the batch's message id", r)
		}
		lines[r.Line] = true
	}
	if !lines[1] || !lines[2] {
		t.Fatalf("rejections for lines %v, want 1 and 2", lines)
	}

	// A header that announces more envelopes than the body holds: the
	// whole message is refused as malformed, nothing of it is logged.
	short := h.events(3)
	for short[0].d.Discloser != short[1].d.Discloser {
		short[1] = h.events(1)[0]
	}
	m, err = natsbus.BatchMessage(short[0].d.Discloser, [][]byte{short[0].env, short[1].env})
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(natsbus.BatchHeader, "3")
	size := h.l.Head().Size
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitStreamEmpty(t, h.js, natsbus.Stream)
	rej = readRejections(t, h.js, short[0].d.Discloser, 1)[0]
	if rej.Reason != events.ReasonMalformed || rej.EventID != "" || !strings.Contains(rej.Message, "header announces") || strings.Contains(rej.Message, "\"3\"") {
		t.Fatalf("rejection %+v, want a malformed batch without an event id", rej)
	}
	if got := h.l.Head().Size; got != size {
		t.Fatalf("the log grew from %d to %d on a malformed batch", size, got)
	}
	for _, ev := range short[:2] {
		if _, err := h.l.LookupEvent(ctx, ev.d.Discloser, ev.d.ID); err == nil {
			t.Fatalf("event %s of the malformed batch was logged", ev.d.ID)
		}
	}
}
