package main

// TestNATSClusterNodeLoss is the cluster test of issue 9: the ledger runs as
// `spoor serve --nats a,b,c --replicas 3` against three nats-server
// processes clustered on loopback, with the users and permissions of the
// shipped deploy/nats/accounts.conf. Parties publish continuously; one NATS
// node (the leader of the SPOOR stream) is killed with SIGKILL while events
// flow, and the parties keep publishing, retrying a failed publish with the
// same bytes. The promise checked is the receipt's: every event the bus
// acknowledged is committed, and every receipted event is in the log exactly
// once, at the leaf its receipt names. Then the lost node is started again
// and must catch up.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
)

// The load and the patience of the cluster test.
const (
	// clusterProducers publish one event each per clusterTick: some 300
	// events a second, steady enough to have events in every stage of the
	// pipeline when the node dies.
	clusterProducers = 3
	clusterTick      = 10 * time.Millisecond
	clusterWaiters   = 32
	// clusterBefore is how long the load runs before the kill. After it,
	// the load runs until clusterResumed more events have been acked by
	// the bus (at most clusterResume), and then clusterAfter longer. An
	// abrupt kill of a stream's leader leaves the stream without one
	// until the remaining replicas have elected another (a Raft election
	// timeout, some seconds), so the flow stops for that long.
	clusterBefore  = 3 * time.Second
	clusterResumed = 100
	clusterResume  = 30 * time.Second
	clusterAfter   = 2 * time.Second
	// clusterPatience is how long a waiter asks for a receipt before it
	// publishes the event again (same bytes) and queues it anew.
	clusterPatience = 5 * time.Second
	// clusterDrain bounds the wait for the last receipts. It exceeds the
	// ledger consumer's AckWait (30 s): a message delivered by the killed
	// leader whose ack was lost is delivered again only after it.
	clusterDrain = 60 * time.Second
)

func TestNATSClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster test runs three nats-server processes and spoor serve; skipped with -short")
	}
	began := time.Now()
	ctx := t.Context()
	cl, users, spoorBin, dir := startTestCluster(t)

	ledgerPW := users.plain["SPOOR_LEDGER_PASSWORD"]
	srv := newServeProc(t, spoorBin, dir,
		"--nats", cl.urls("ledger", ledgerPW), "--replicas", "3", "--retention-interval", "0")
	startServe(t, srv)

	h := newClusterHarness(t, cl, srv, users)
	defer h.stop()

	// The streams the ledger made have three replicas, and the SPOOR
	// stream has a leader: that is the node to lose.
	admin := h.ledgerJS(ctx)
	victim := ""
	for _, name := range []string{natsbus.Stream, natsbus.RejectedStream} {
		info, err := streamInfo(ctx, admin, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 {
			t.Fatalf("stream %s has %d replicas, want 3 (spoor serve --replicas 3)", name, info.Config.Replicas)
		}
		if name == natsbus.Stream {
			if info.Cluster == nil || info.Cluster.Leader == "" {
				t.Fatalf("stream %s has no leader", name)
			}
			victim = info.Cluster.Leader
		}
	}

	h.startLoad(ctx)
	sleepCtx(ctx, clusterBefore)
	before := h.snapshot()
	if err := cl.node(victim).kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("killed nats-server %s (leader of stream %s) with SIGKILL after %s of load: %d events made, %d acked by the bus, %d receipted",
		victim, natsbus.Stream, clusterBefore, before.made, before.acked, before.receipted)

	// When the bus and the ledger had each taken clusterResumed more
	// events after the kill: the first is the bus's failover, the gap to
	// the second the ledger's (its consumer and connection moving over).
	var busBack, ledgerBack time.Duration
	for time.Since(killedAt) < clusterResume && sleepCtx(ctx, 20*time.Millisecond) {
		s := h.snapshot()
		if busBack == 0 && s.acked >= before.acked+clusterResumed {
			busBack = time.Since(killedAt)
		}
		if ledgerBack == 0 && s.receipted >= before.receipted+clusterResumed {
			ledgerBack = time.Since(killedAt)
		}
		if busBack != 0 && ledgerBack != 0 {
			break
		}
	}
	if busBack == 0 || ledgerBack == 0 {
		t.Errorf("in the %s after node %s died, %d more events were not both acked by the bus (after %s) and receipted (after %s)",
			clusterResume, victim, clusterResumed, busBack, ledgerBack)
	} else {
		t.Logf("after the kill, %d more events were acked by the bus within %s and receipted within %s",
			clusterResumed, busBack.Round(time.Millisecond), ledgerBack.Round(time.Millisecond))
	}
	sleepCtx(ctx, clusterAfter)
	h.stopProducers()
	after := h.snapshot()
	t.Logf("load stopped %s after the kill: %d events made, %d acked by the bus, %d receipted",
		time.Since(killedAt).Round(time.Millisecond), after.made, after.acked, after.receipted)

	drainStart := time.Now()
	if err := h.drain(clusterDrain); err != nil {
		t.Error(err)
	}
	t.Logf("every acked event receipted %s after the load stopped (%s after the kill)",
		time.Since(drainStart).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))

	// The stream lives on two nodes, under a new leader.
	info, err := streamInfo(ctx, admin, natsbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == victim {
		t.Errorf("stream %s after the kill: cluster %+v, want a leader other than %s", natsbus.Stream, info.Cluster, victim)
	} else {
		t.Logf("stream %s: new leader %s", natsbus.Stream, info.Cluster.Leader)
	}

	// The lost node comes back and catches up: the meta group and the
	// stream count it current again.
	restart := time.Now()
	if err := cl.start(cl.node(victim)); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.waitMetaLeader(ctx, 30*time.Second); err != nil {
		t.Errorf("after %s came back: %v", victim, err)
	} else if err := waitStreamCurrent(ctx, admin, natsbus.Stream, 3, 30*time.Second); err != nil {
		t.Errorf("after %s came back: %v", victim, err)
	} else {
		t.Logf("%s restarted and current again in the meta group and stream %s after %s",
			victim, natsbus.Stream, time.Since(restart).Round(time.Millisecond))
	}

	st := h.checkLog(ctx)
	if warn := srv.warnings(10); warn != "" {
		t.Logf("spoor serve warned (first lines):\n%s", warn)
	}
	if err := srv.interrupt(15 * time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("cluster test: %d events made, %d acked by the bus (%d as duplicates of a retry), %d publishes retried, %d events published again after no receipt in %s, %d receipted and verified",
		len(h.events), h.acked.Load(), h.busDuplicates.Load(), h.publishRetries.Load(), h.republished.Load(), clusterPatience, h.receipted.Load())
	t.Logf("cluster test: the log holds %d entries (%d disclosures); each receipted event exactly once; %d client connection errors while the node was down",
		st.size, st.disclosures, h.connErrors.Load())
	t.Logf("cluster test took %s", time.Since(began).Round(time.Millisecond))
}

// clusterEvent is one event of the test. The goroutine that holds it owns
// its mutable fields; the final checks read them after all have ended.
type clusterEvent struct {
	id, party string
	env       []byte
	hash      [32]byte

	acked     bool // the bus acknowledged a publish of it
	receipted bool
	leaf      uint64
}

// clusterHarness is the parties' side of the test: one NATS connection per
// party (its own user), the producers, the receipt waiters, and what they saw.
type clusterHarness struct {
	t   *testing.T
	cl  *natsCluster
	srv *serveProc

	keys    *verifier.LogKeys
	fgToken string
	gen     *synth.Generator
	genMu   sync.Mutex
	parties map[string]*events.PartyKey
	pubs    map[string]*natsbus.Publisher
	conns   []*nats.Conn

	mu     sync.Mutex
	events map[string]*clusterEvent

	queue       chan *clusterEvent
	outstanding atomic.Int64 // acked by the bus, not yet receipted

	stopLoad, stopWaiters context.CancelFunc
	producers, waiters    sync.WaitGroup

	acked, receipted, republished, publishRetries, busDuplicates, connErrors atomic.Int64
}

// newClusterHarness reads what the ledger wrote on its first start (keys,
// FG token, demo party keys) and connects every party as its own NATS user,
// with its own inbox prefix, as the deployment requires.
func newClusterHarness(t *testing.T, cl *natsCluster, srv *serveProc, users *clusterUsers) *clusterHarness {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(srv.data, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	keys, err := verifier.ParseLogKeys(read("log.vkey"), read("cosigner.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := demo.Load(filepath.Join(srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 9, 200)
	if err != nil {
		t.Fatal(err)
	}
	h := &clusterHarness{
		t: t, cl: cl, srv: srv, keys: keys, fgToken: read("fg.token"), gen: gen,
		parties: m.Parties, pubs: map[string]*natsbus.Publisher{},
		events: map[string]*clusterEvent{}, queue: make(chan *clusterEvent, 1<<16),
	}
	for party, k := range m.Parties {
		pw, err := users.partyPassword(party)
		if err != nil {
			t.Fatal(err)
		}
		// No reconnect buffer: while a connection fails over, a publish
		// fails at once and is retried, instead of waiting in a buffer.
		nc, err := nats.Connect(cl.urls("", ""),
			nats.UserInfo(party, pw),
			nats.CustomInboxPrefix(natsbus.InboxPrefix(party)),
			nats.Name("spoor-cluster-test-"+party),
			nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { h.connErrors.Add(1) }))
		if err != nil {
			t.Fatalf("party %s couldn't connect to the cluster: %v", party, err)
		}
		h.conns = append(h.conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		p, err := natsbus.NewPublisher(js, k)
		if err != nil {
			t.Fatal(err)
		}
		h.pubs[party] = p
	}
	return h
}

// ledgerJS connects as the ledger's user, to read stream information.
func (h *clusterHarness) ledgerJS(ctx context.Context) jetstream.JetStream {
	h.t.Helper()
	nc, err := nats.Connect(h.cl.urls("ledger", h.cl.users.plain["SPOOR_LEDGER_PASSWORD"]),
		nats.Name("spoor-cluster-test-admin"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	h.conns = append(h.conns, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	return js
}

// streamInfo asks for a stream's information, retrying while the cluster
// elects leaders.
func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	var last error
	for range 50 {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(rctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(rctx)
			if err == nil {
				cancel()
				return info, nil
			}
		}
		cancel()
		last = err
		if !sleepCtx(ctx, 200*time.Millisecond) {
			break
		}
	}
	return nil, fmt.Errorf("couldn't read stream %s: %w", name, last)
}

// waitStreamCurrent waits until a stream has a leader and all its other
// replicas are current.
func waitStreamCurrent(ctx context.Context, js jetstream.JetStream, name string, replicas int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		info, err := streamInfo(ctx, js, name)
		if err != nil {
			return err
		}
		current := 0
		if c := info.Cluster; c != nil && c.Leader != "" {
			current = 1
			for _, p := range c.Replicas {
				if p.Current && !p.Offline {
					current++
				}
			}
			last = fmt.Sprintf("leader %s, %d of %d replicas current", c.Leader, current, replicas)
		}
		if current == replicas {
			return nil
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("stream %s not fully current within %s (%s)", name, timeout, last)
}

// startLoad starts the producers and the receipt waiters.
func (h *clusterHarness) startLoad(ctx context.Context) {
	var loadCtx, waitCtx context.Context
	loadCtx, h.stopLoad = context.WithCancel(ctx)
	waitCtx, h.stopWaiters = context.WithCancel(ctx)
	for range clusterProducers {
		h.producers.Add(1)
		go h.produce(loadCtx, waitCtx)
	}
	for range clusterWaiters {
		h.waiters.Add(1)
		go h.await(waitCtx)
	}
}

func (h *clusterHarness) stopProducers() {
	if h.stopLoad != nil {
		h.stopLoad()
	}
	h.producers.Wait()
}

// stop ends every goroutine and closes the connections.
func (h *clusterHarness) stop() {
	h.stopProducers()
	if h.stopWaiters != nil {
		h.stopWaiters()
	}
	h.waiters.Wait()
	for _, nc := range h.conns {
		nc.Close()
	}
}

type clusterCounts struct{ made, acked, receipted int64 }

func (h *clusterHarness) snapshot() clusterCounts {
	h.mu.Lock()
	made := int64(len(h.events))
	h.mu.Unlock()
	return clusterCounts{made: made, acked: h.acked.Load(), receipted: h.receipted.Load()}
}

// newEvent makes, seals and signs the next synthetic event.
func (h *clusterHarness) newEvent() (*clusterEvent, error) {
	h.genMu.Lock()
	d, _ := h.gen.Next()
	h.genMu.Unlock()
	key, ok := h.parties[d.Discloser]
	if !ok {
		return nil, fmt.Errorf("synthetic event from %q, which has no demo key", d.Discloser)
	}
	events.Seal(d, key)
	env, err := events.Sign(d, key)
	if err != nil {
		return nil, err
	}
	ev := &clusterEvent{id: d.ID, party: d.Discloser, env: env, hash: sha256.Sum256(env)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.events[ev.id]; dup {
		return nil, fmt.Errorf("the generator made event id %s twice", ev.id)
	}
	h.events[ev.id] = ev
	return ev, nil
}

// produce publishes a new event every tick until loadCtx ends. An event,
// once made, is published until the bus acks it (runCtx bounds that).
func (h *clusterHarness) produce(loadCtx, runCtx context.Context) {
	defer h.producers.Done()
	tick := time.NewTicker(clusterTick)
	defer tick.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-tick.C:
		}
		ev, err := h.newEvent()
		if err != nil {
			h.t.Errorf("couldn't make an event: %v", err)
			return
		}
		if !h.publish(runCtx, ev) {
			return
		}
		ev.acked = true
		h.acked.Add(1)
		h.outstanding.Add(1)
		h.queue <- ev
	}
}

// publish publishes ev's envelope, the same bytes every time, until the bus
// acks it or ctx ends.
func (h *clusterHarness) publish(ctx context.Context, ev *clusterEvent) bool {
	p := h.pubs[ev.party]
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := p.PublishEnvelope(actx, ev.party, ev.env)
		cancel()
		if err == nil {
			if res.Duplicate {
				h.busDuplicates.Add(1)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		h.publishRetries.Add(1)
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return false
		}
	}
}

// await takes events from the queue and asks for their receipts; an event
// without one in time is published again and queued anew.
func (h *clusterHarness) await(ctx context.Context) {
	defer h.waiters.Done()
	for {
		var ev *clusterEvent
		select {
		case ev = <-h.queue:
		case <-ctx.Done():
			return
		}
		if h.tryReceipt(ctx, ev) {
			h.outstanding.Add(-1)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !h.publish(ctx, ev) {
			return
		}
		h.republished.Add(1)
		h.queue <- ev
	}
}

// tryReceipt waits up to clusterPatience for ev's receipt and verifies it
// as a party would. It reports whether ev is settled.
func (h *clusterHarness) tryReceipt(ctx context.Context, ev *clusterEvent) bool {
	actx, cancel := context.WithTimeout(ctx, clusterPatience)
	defer cancel()
	r, err := h.pubs[ev.party].WaitReceipt(actx, ev.id, ev.hash)
	if err != nil {
		return false
	}
	if r.Status != natsbus.ReceiptCommitted {
		h.t.Errorf("event %s: the ledger answered %s (%s); every event of the test is valid", ev.id, r.Status, r.Reason)
		return true
	}
	if err := h.verifyReceipt(ev, r); err != nil {
		h.t.Errorf("receipt of event %s: %v", ev.id, err)
		return true
	}
	ev.receipted, ev.leaf, ev.env = true, r.LeafIndex, nil
	h.receipted.Add(1)
	return true
}

// verifyReceipt checks the checkpoint against the log's keys, the leaf
// record against the envelope published, and the inclusion proof.
func (h *clusterHarness) verifyReceipt(ev *clusterEvent, r *natsbus.Receipt) error {
	cp, err := verifier.OpenCheckpoint(r.Checkpoint, h.keys)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if cp.Size != r.TreeSize {
		return fmt.Errorf("the receipt says tree size %d, its checkpoint %d", r.TreeSize, cp.Size)
	}
	rec, err := verifier.ParseLeafRecord(r.LeafRecord)
	if err != nil {
		return fmt.Errorf("leaf record: %w", err)
	}
	if rec.Type != verifier.EntryDisclosure || rec.BodyHash != ev.hash {
		return fmt.Errorf("the leaf record (type %s) does not commit to the envelope published", rec.Type)
	}
	return verifier.VerifyInclusion(r.LeafIndex, r.TreeSize, verifier.LeafHash(r.LeafRecord), r.InclusionProof, cp.Hash)
}

// drain waits until every event the bus acked has its receipt, then stops
// the waiters.
func (h *clusterHarness) drain(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for h.outstanding.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	h.stopWaiters()
	h.waiters.Wait()
	if n := h.outstanding.Load(); n > 0 {
		var some []string
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.acked && !ev.receipted && len(some) < 5 {
				some = append(some, ev.id)
			}
		}
		h.mu.Unlock()
		return fmt.Errorf("%d events acked by the bus had no receipt %s after the load stopped; some: %s",
			n, timeout, strings.Join(some, ", "))
	}
	return nil
}

type clusterLog struct{ size, disclosures int }

// checkLog reads every entry as the FG does (GET /v1/entries) and checks
// that each disclosure in the log is one the test published, with the same
// bytes, that no event id is in it twice, and that each receipted event is
// at the leaf its receipt named.
func (h *clusterHarness) checkLog(ctx context.Context) clusterLog {
	t := h.t
	var all []*httpapi.EntryResponse
	from := uint64(0)
	for {
		b, err := getWithToken(ctx, fmt.Sprintf("%s/v1/entries?from=%d&limit=1000", h.srv.url(), from), h.fgToken)
		if err != nil {
			t.Fatal(err)
		}
		var page httpapi.EntriesResponse
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("GET /v1/entries: %v", err)
		}
		all = append(all, page.Entries...)
		if page.Next == nil {
			break
		}
		if *page.Next <= from {
			t.Fatalf("GET /v1/entries?from=%d answered next=%d", from, *page.Next)
		}
		from = *page.Next
	}
	at := map[string][]uint64{}
	st := clusterLog{size: len(all)}
	for i, e := range all {
		if e.Index != uint64(i) {
			t.Fatalf("entry %d of /v1/entries says index %d", i, e.Index)
		}
		rec, err := verifier.ParseLeafRecord(e.LeafRecord)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if rec.Type != verifier.EntryDisclosure {
			continue
		}
		st.disclosures++
		// The API serves the envelope's exact bytes.
		if sha256.Sum256(e.Envelope) != rec.BodyHash {
			t.Errorf("entry %d: the envelope does not hash to its leaf record", i)
			continue
		}
		parsed, err := events.ParseEnvelope(e.Envelope)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		d, err := events.DecodeDisclosure(parsed.Payload)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		at[d.ID] = append(at[d.ID], uint64(i))
		if ev, ok := h.events[d.ID]; !ok {
			t.Errorf("event %s at leaf %d was not published by the test", d.ID, i)
		} else if ev.hash != rec.BodyHash {
			t.Errorf("event %s at leaf %d has other bytes than the test published", d.ID, i)
		}
	}
	for id, idxs := range at {
		if len(idxs) > 1 {
			t.Errorf("event %s is in the log %d times, at leaves %v", id, len(idxs), idxs)
		}
	}
	for _, ev := range h.events {
		if !ev.receipted {
			continue
		}
		if idxs := at[ev.id]; len(idxs) != 1 || idxs[0] != ev.leaf {
			t.Errorf("receipted event %s (leaf %d) is in the log at leaves %v", ev.id, ev.leaf, idxs)
		}
	}
	return st
}

// TestClusterReplicasFlag: more than one replica needs an external cluster,
// and JetStream allows at most five; spoor serve refuses anything else
// before it touches the data folder.
func TestClusterReplicasFlag(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		replicas int
		nats     string
	}{{3, ""}, {0, "nats://127.0.0.1:1"}, {6, "nats://127.0.0.1:1"}, {-1, ""}} {
		data := filepath.Join(t.TempDir(), "data")
		err := runServe(t.Context(), log, &serveFlags{data: data, replicas: c.replicas, natsURL: c.nats})
		if err == nil || !strings.Contains(err.Error(), "--replicas") {
			t.Errorf("--replicas %d with --nats %q: %v, want a refusal naming --replicas", c.replicas, c.nats, err)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("--replicas %d: the data folder was created before the refusal", c.replicas)
		}
	}
}
