package main

// TestCrashRecovery is the crash test of issue 4 and the crash loop of
// issue 8: `spoor serve` runs as a child process while publishers in this
// process send disclosures continuously; the server is killed with SIGKILL
// at the named crash points of the commit path and at random moments, and
// restarted on the same data folder and ports each time. The promises it
// checks are the ones a receipt makes: an event whose receipt was returned
// is in the log exactly once, and every checkpoint anyone saw is a prefix of
// every later one. It also checks what the publishers' retries promise: that
// every event published is receipted in the end.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

var (
	long = flag.Bool("long", false,
		"TestCrashRecovery: kill the server at random 100 times instead of 3")
	crashSeed = flag.Uint64("crashseed", 0,
		"TestCrashRecovery: seed of the kill schedule and the events; 0 takes one from the clock")
)

// The load and the patience of the crash test.
const (
	// crashProducers each publish a burst of crashBurst events at once
	// every crashProduceTick: some 500 events a second when the machine
	// keeps up. Bursts make the ledger commit batches of several events,
	// so that "mid-batch" and "mid-ack" fall inside a batch.
	crashProducers   = 2
	crashBurst       = 8
	crashProduceTick = 30 * time.Millisecond
	// crashWaiters ask for receipts in parallel.
	crashWaiters = 48
	// receiptPatience is how long a waiter asks for one receipt before it
	// publishes the event again and puts it back in the queue.
	receiptPatience = 4 * time.Second
	// publishAttempt bounds one publish; a failed one is retried.
	publishAttempt = 2 * time.Second
	// crashReadyTimeout bounds a (re)start until GET /healthz answers.
	crashReadyTimeout = 30 * time.Second
	// crashpointTimeout bounds how long a run armed with a crash point may
	// take to reach it under load.
	crashpointTimeout = 30 * time.Second
	// drainTimeout bounds the wait, at the end, for the receipts of every
	// published event. It exceeds the ledger consumer's AckWait (30 s):
	// messages the ledger had fetched when it was killed are delivered
	// again only when their ack wait has passed.
	drainTimeout = 45 * time.Second
)

// crashRun is one start of the server and how it ends: at a named crash
// point (SPOOR_CRASHPOINT=point:n) or, when point is empty, by a SIGKILL
// from the test after a random delay.
type crashRun struct {
	point string
	n     int
}

func (r crashRun) env() string {
	if r.point == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", r.point, r.n)
}

func (r crashRun) String() string {
	if r.point == "" {
		return "random kill"
	}
	return "crash point " + r.env()
}

// crashSchedule returns the named crash points once each and randomKills
// random kills, in a random order. Each crash point fires at a hit far
// enough in that it happens under load, not during the start.
func crashSchedule(rng *rand.Rand, randomKills int) []crashRun {
	runs := []crashRun{
		{point: crashpoint.AfterCommit},
		{point: crashpoint.MidBatch},
		{point: crashpoint.DuringSigning},
		{point: crashpoint.MidAck},
		// Inside the commit with the subject index on (spoor serve's
		// default): after the index update, after the store's fsync.
		{point: crashpoint.IndexApplied},
		{point: crashpoint.AfterStoreCommit},
	}
	for i := range runs {
		runs[i].n = 20 + rng.IntN(150)
	}
	for range randomKills {
		runs = append(runs, crashRun{})
	}
	rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
	return runs
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs spoor serve as a child process for about a minute; skipped with -short")
	}
	began := time.Now()
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crashseed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0xc0ffee))
	randomKills := 3
	if *long {
		randomKills = 100
	}
	runs := crashSchedule(rng, randomKills)

	bin := buildSpoor(t)
	built := time.Since(began)
	// A short idle re-cosign interval adds checkpoints of one size with
	// later times, which the consistency checks must accept.
	srv := newServeProc(t, bin, t.TempDir(), "--idle-cosign", "1s")
	h := &crashHarness{t: t, srv: srv, seed: seed, events: map[string]*trackedEvent{}}
	h.queue.wake = make(chan struct{}, 1)
	ctx := t.Context()
	defer h.stopAll()

	var named, random, startupCrashes int
	for i, r := range runs {
		runStart := time.Now()
		floor := h.watch.maxSize()
		if err := srv.start(r.env()); err != nil {
			t.Fatal(err)
		}
		if err := srv.waitReady(crashReadyTimeout); err != nil {
			if i > 0 && r.point != "" && errors.Is(err, errExited) && killedBySIGKILL(srv.state) {
				// The crash point fired while the ledger was starting
				// (the load resumes as soon as NATS accepts
				// connections); that is a crash all the same.
				named++
				startupCrashes++
				t.Logf("run %d: %s: killed while starting", i+1, r)
				continue
			}
			t.Fatalf("run %d (%s): %v", i+1, r, err)
		}
		if i == 0 {
			h.setup(ctx)
		} else {
			h.checkFloor(ctx, floor)
		}
		if r.point != "" {
			st, err := srv.waitExit(crashpointTimeout)
			if err != nil {
				t.Fatalf("run %d: %s was not reached under load: %v", i+1, r, err)
			}
			if !killedBySIGKILL(st) {
				t.Fatalf("run %d: spoor serve exited with %s, not killed by its %s", i+1, st, r)
			}
			named++
		} else {
			delay := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond)))
			select {
			case <-time.After(delay):
			case <-srv.exited:
				t.Fatalf("run %d: spoor serve exited by itself (%s)", i+1, srv.state)
			}
			if err := srv.kill(); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
			random++
		}
		t.Logf("run %d: %s: killed after %s; largest checkpoint seen %d; %d events made, %d receipted so far",
			i+1, r, time.Since(runStart).Round(time.Millisecond), h.watch.maxSize(), h.made(), h.receipted.Load())
	}

	// A clean run: the load goes on for a moment, then stops, and the test
	// waits until every published event has its receipt.
	floor := h.watch.maxSize()
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(crashReadyTimeout); err != nil {
		t.Fatalf("final run: %v", err)
	}
	h.checkFloor(ctx, floor)
	sleepCtx(ctx, time.Second)
	h.stopProducers()
	drainStart := time.Now()
	if err := h.drain(drainTimeout); err != nil {
		t.Error(err)
	}
	drained := time.Since(drainStart)
	if err := srv.interrupt(15 * time.Second); err != nil {
		t.Fatalf("final run: %v", err)
	}
	if !srv.runLogContains("stopped cleanly") {
		t.Errorf("spoor serve exited 0 on Ctrl-C but did not log that it stopped cleanly")
	}

	// Check the end state through a freshly started process.
	floor = h.watch.maxSize()
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(crashReadyTimeout); err != nil {
		t.Fatalf("restart after the clean stop: %v", err)
	}
	h.checkFloor(ctx, floor)
	h.stopPolling()
	verifyStart := time.Now()
	v := h.verifyEnd(ctx)
	verified := time.Since(verifyStart)
	if err := srv.interrupt(15 * time.Second); err != nil {
		t.Error(err)
	}

	t.Logf("crash test: %d kills (%d at named crash points, %d of them while starting; %d at random), %d restarts",
		named+random, named, startupCrashes, random, srv.starts-1)
	t.Logf("crash test: %d events published, %d receipted and verified; %d publishes retried, %d events published again after no receipt in %s, %d acked by the bus as duplicates",
		len(h.events), h.receipted.Load(), h.publishRetries.Load(), h.republished.Load(), receiptPatience, h.busDuplicates.Load())
	t.Logf("crash test: final tree size %d (%d disclosures in batches of %.1f on average, at most %d; %d other entries)",
		v.size, v.disclosures, v.meanBatch, v.maxBatch, v.others)
	t.Logf("crash test: %d distinct checkpoints seen (%d sizes; %d GET /checkpoint polls answered), each size consistent with the next by the ledger's proof and by tiles",
		v.checkpoints, v.sizes, h.polls.Load())
	t.Logf("crash test: took %s: build %s, drain after the load %s, final checks %s",
		time.Since(began).Round(time.Millisecond), built.Round(time.Millisecond), drained.Round(time.Millisecond), verified.Round(time.Millisecond))
}

// trackedEvent is one event the test made. The waiter that holds it owns
// its mutable fields; the final checks read them after every waiter ended.
type trackedEvent struct {
	id    string
	party string
	hash  [32]byte // SHA-256 of the envelope
	env   []byte   // the envelope, kept until the event is receipted

	receipted bool
	leaf      uint64
}

// crashHarness is the test's side of the crash loop: the publishers, the
// receipt waiters, the checkpoint poller and what they saw.
type crashHarness struct {
	t    *testing.T
	srv  *serveProc
	seed uint64

	keys    *verifier.LogKeys
	fgToken string
	nc      *nats.Conn
	pubs    map[string]*natsbus.Publisher
	parties map[string]*events.PartyKey

	genMu sync.Mutex
	gen   *synth.Generator

	mu     sync.Mutex
	events map[string]*trackedEvent

	queue       eventQueue
	outstanding atomic.Int64 // published, not yet receipted
	watch       checkpointWatch

	stopLoad, stopWaiters, stopPoll context.CancelFunc
	producers, waiters, poller      sync.WaitGroup

	receipted, republished, publishRetries, busDuplicates, polls, natsErrors atomic.Int64
}

// setup reads what the first start of the server wrote (verifier keys, FG
// token, demo keys), connects to NATS and starts the load, the receipt
// waiters and the checkpoint poller.
func (h *crashHarness) setup(ctx context.Context) {
	t := h.t
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(h.srv.data, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	keys, err := verifier.ParseLogKeys(read("log.vkey"), read("cosigner.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	h.keys, h.watch.keys = keys, keys
	h.fgToken = read("fg.token")
	m, err := demo.Load(filepath.Join(h.srv.data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	h.gen, err = synth.New(m.Signed.Covenant, m.SubjectKey, h.seed, 300)
	if err != nil {
		t.Fatal(err)
	}
	h.parties = m.Parties

	// No reconnect buffer: while the server is down a publish fails at once
	// and is retried, rather than waiting in the client's buffer.
	// The connection's asynchronous errors (a write to a killed server)
	// are expected here; they are counted, not printed.
	h.nc, err = nats.Connect(h.srv.natsURL(), nats.Name("spoor-crash-test"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { h.natsErrors.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	h.pubs = map[string]*natsbus.Publisher{}
	for party, k := range m.Parties {
		p, err := natsbus.NewPublisher(js, k)
		if err != nil {
			t.Fatal(err)
		}
		h.pubs[party] = p
	}

	var loadCtx, waitCtx, pollCtx context.Context
	loadCtx, h.stopLoad = context.WithCancel(ctx)
	waitCtx, h.stopWaiters = context.WithCancel(ctx)
	pollCtx, h.stopPoll = context.WithCancel(ctx)
	for range crashProducers {
		h.producers.Add(1)
		go h.produce(loadCtx, waitCtx)
	}
	for range crashWaiters {
		h.waiters.Add(1)
		go h.await(waitCtx)
	}
	h.poller.Add(1)
	go h.poll(pollCtx)
}

// made returns how many events the test has made so far.
func (h *crashHarness) made() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// stopProducers ends the load and waits for the producers.
func (h *crashHarness) stopProducers() {
	if h.stopLoad != nil {
		h.stopLoad()
	}
	h.producers.Wait()
}

// stopPolling ends the checkpoint poller.
func (h *crashHarness) stopPolling() {
	if h.stopPoll != nil {
		h.stopPoll()
	}
	h.poller.Wait()
}

// stopAll ends every goroutine of the harness and closes the connection.
// It cancels everything before it waits, since a producer may be retrying
// a publish with the waiters' context while the server is down.
func (h *crashHarness) stopAll() {
	for _, stop := range []context.CancelFunc{h.stopLoad, h.stopWaiters, h.stopPoll} {
		if stop != nil {
			stop()
		}
	}
	h.producers.Wait()
	h.waiters.Wait()
	h.poller.Wait()
	if h.nc != nil {
		h.nc.Close()
	}
}

// newEvent makes, seals and signs the next synthetic event and registers it.
func (h *crashHarness) newEvent() (*trackedEvent, error) {
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
	ev := &trackedEvent{id: d.ID, party: d.Discloser, hash: sha256.Sum256(env), env: env}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.events[ev.id]; dup {
		return nil, fmt.Errorf("the generator made event id %s twice", ev.id)
	}
	h.events[ev.id] = ev
	return ev, nil
}

// produce publishes a burst of new events every tick until loadCtx ends.
func (h *crashHarness) produce(loadCtx, runCtx context.Context) {
	defer h.producers.Done()
	tick := time.NewTicker(crashProduceTick)
	defer tick.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-tick.C:
		}
		burst := make([]*trackedEvent, crashBurst)
		for i := range burst {
			ev, err := h.newEvent()
			if err != nil {
				h.t.Errorf("couldn't make an event: %v", err)
				return
			}
			burst[i] = ev
		}
		// Once made, an event is published until the bus takes it, even
		// when the load stops meanwhile: the test promised it.
		var wg sync.WaitGroup
		for _, ev := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if h.publish(runCtx, ev) {
					h.outstanding.Add(1)
					h.queue.push(ev)
				}
			}()
		}
		wg.Wait()
		if runCtx.Err() != nil {
			return
		}
	}
}

// publish publishes ev's envelope, the same bytes every time, until the bus
// acks it or ctx ends. A failure (the server is down or restarting) is
// retried after a short pause.
func (h *crashHarness) publish(ctx context.Context, ev *trackedEvent) bool {
	p := h.pubs[ev.party]
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
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

// await takes events from the queue and asks for their receipts. An event
// without a receipt in time is published again (the bus may have lost it
// in the crash, or it waits for redelivery) and goes to the back of the
// queue, so a stuck event does not hold up the others.
func (h *crashHarness) await(ctx context.Context) {
	defer h.waiters.Done()
	for {
		ev := h.queue.pop(ctx)
		if ev == nil {
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
		h.queue.push(ev)
	}
}

// tryReceipt waits up to receiptPatience for ev's receipt and checks it.
// It reports whether the event is settled (committed, or wrongly rejected,
// which is an error of the test).
func (h *crashHarness) tryReceipt(ctx context.Context, ev *trackedEvent) bool {
	actx, cancel := context.WithTimeout(ctx, receiptPatience)
	defer cancel()
	r, err := h.pubs[ev.party].WaitReceipt(actx, ev.id, ev.hash)
	if err != nil {
		// WaitReceipt returns at once on errors other than "no answer
		// yet" (a connection that is reconnecting, say); pause so that
		// such an error does not turn into a stream of republishes.
		if actx.Err() == nil {
			sleepCtx(actx, 200*time.Millisecond)
		}
		return false
	}
	if r.Status != natsbus.ReceiptCommitted {
		h.t.Errorf("event %s: the ledger answered %s (%s); every event the test publishes is valid, and a republish has the same bytes",
			ev.id, r.Status, r.Reason)
		return true
	}
	if err := h.checkReceipt(ev, r); err != nil {
		h.t.Errorf("receipt of event %s: %v", ev.id, err)
	}
	return true
}

// checkReceipt verifies a committed receipt the way a party would: the
// checkpoint against the pinned keys, the leaf record against the envelope
// it published, and the inclusion proof against the checkpoint.
func (h *crashHarness) checkReceipt(ev *trackedEvent, r *natsbus.Receipt) error {
	if r.EventID != ev.id {
		return fmt.Errorf("the receipt is for event %s", r.EventID)
	}
	cp, err := h.watch.add(r.Checkpoint)
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
	if rec.Type != verifier.EntryDisclosure {
		return fmt.Errorf("leaf record of type %s, want a disclosure", rec.Type)
	}
	if rec.BodyHash != ev.hash {
		return errors.New("the leaf record's body hash is not SHA-256 of the envelope the test published")
	}
	if err := verifier.VerifyInclusion(r.LeafIndex, r.TreeSize, verifier.LeafHash(r.LeafRecord), r.InclusionProof, cp.Hash); err != nil {
		return err
	}
	ev.receipted, ev.leaf, ev.env = true, r.LeafIndex, nil
	h.receipted.Add(1)
	return nil
}

// poll fetches GET /checkpoint every 50 ms while the server is up. Every
// checkpoint must verify, and none may be smaller than one seen before the
// request was sent: a receipt or a served checkpoint is durable, so not even
// a crash may take the log back behind it.
func (h *crashHarness) poll(ctx context.Context) {
	defer h.poller.Done()
	hc := &http.Client{Timeout: time.Second}
	for sleepCtx(ctx, 50*time.Millisecond) {
		floor := h.watch.maxSize()
		note, err := getBytes(ctx, hc, h.srv.url()+"/checkpoint", "")
		if err != nil {
			continue // down or restarting
		}
		cp, err := h.watch.add(note)
		if err != nil {
			h.t.Errorf("GET /checkpoint: %v", err)
			continue
		}
		if cp.Size < floor {
			h.t.Errorf("GET /checkpoint served tree size %d after a checkpoint of size %d had been seen", cp.Size, floor)
		}
		h.polls.Add(1)
	}
}

// checkFloor checks, right after a restart, that the log is not smaller
// than the largest checkpoint seen before the kill.
func (h *crashHarness) checkFloor(ctx context.Context, floor uint64) {
	note, err := getBytes(ctx, http.DefaultClient, h.srv.url()+"/checkpoint", "")
	if err != nil {
		h.t.Errorf("after restart %d: %v", h.srv.starts-1, err)
		return
	}
	cp, err := h.watch.add(note)
	if err != nil {
		h.t.Errorf("after restart %d: GET /checkpoint: %v", h.srv.starts-1, err)
		return
	}
	if cp.Size < floor {
		h.t.Errorf("after restart %d the log has size %d, but a checkpoint of size %d was seen before the kill", h.srv.starts-1, cp.Size, floor)
	}
}

// drain waits until every published event has been receipted, then stops
// the waiters.
func (h *crashHarness) drain(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for h.outstanding.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	h.stopWaiters()
	h.waiters.Wait()
	n := h.outstanding.Load()
	if n == 0 {
		return nil
	}
	var missing []string
	h.mu.Lock()
	for _, ev := range h.events {
		if !ev.receipted && len(missing) < 5 {
			missing = append(missing, ev.id)
		}
	}
	h.mu.Unlock()
	return fmt.Errorf("%d published events had no receipt %s after the load stopped (publishers retried all along); some: %s",
		n, timeout, strings.Join(missing, ", "))
}

// endState is what verifyEnd found.
type endState struct {
	size, disclosures, others uint64
	checkpoints, sizes        int
	meanBatch                 float64
	maxBatch                  int
}

// verifyEnd checks the log at the end against everything the test saw.
func (h *crashHarness) verifyEnd(ctx context.Context) endState {
	t := h.t
	t.Helper()
	client := &tlogclient.Client{URL: h.srv.url(), Keys: h.keys}
	final, err := client.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.watch.add(final.Note); err != nil {
		t.Fatal(err)
	}
	st := endState{size: final.Size}

	// Every entry, read as the FG reads them, and every leaf record
	// authenticated against the final checkpoint through the tiles.
	entries := h.fetchEntries(ctx)
	if uint64(len(entries)) < final.Size {
		t.Fatalf("GET /v1/entries listed %d entries, the checkpoint has %d", len(entries), final.Size)
	}
	for leaf, err := range client.LeafRecords(ctx, final.Tree(), 0, final.Size) {
		if err != nil {
			t.Fatalf("leaf records from the tiles: %v", err)
		}
		if !bytes.Equal(leaf.Data, entries[leaf.Index].LeafRecord) {
			t.Errorf("leaf %d: /v1/entries gives another leaf record than the tiles", leaf.Index)
		}
	}
	at := map[string][]uint64{}
	hashes := make([][32]byte, final.Size)
	var integrated []time.Time // integration time of each disclosure leaf, in order
	for i, e := range entries[:final.Size] {
		if e.Index != uint64(i) {
			t.Fatalf("entry %d of /v1/entries says index %d", i, e.Index)
		}
		rec, err := verifier.ParseLeafRecord(e.LeafRecord)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if rec.Type != verifier.EntryDisclosure {
			st.others++
			continue
		}
		st.disclosures++
		integrated = append(integrated, rec.IntegratedAt)
		// The API serves the envelope's exact bytes.
		hashes[i] = sha256.Sum256(e.Envelope)
		if hashes[i] != rec.BodyHash {
			t.Errorf("entry %d: the envelope does not hash to its leaf record", i)
			continue
		}
		id, err := envelopeEventID(e.Envelope)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		at[id] = append(at[id], uint64(i))
	}
	for id, idxs := range at {
		ev, ok := h.events[id]
		switch {
		case len(idxs) > 1:
			t.Errorf("event %s is in the log %d times, at leaves %v", id, len(idxs), idxs)
		case !ok:
			t.Errorf("event %s at leaf %d was not published by the test", id, idxs[0])
		case hashes[idxs[0]] != ev.hash:
			t.Errorf("event %s at leaf %d has other bytes than the test published", id, idxs[0])
		}
	}
	st.meanBatch, st.maxBatch = batchSizes(integrated)
	var receipted []*trackedEvent
	for _, ev := range h.events {
		if !ev.receipted {
			continue
		}
		receipted = append(receipted, ev)
		if idxs := at[ev.id]; len(idxs) != 1 || idxs[0] != ev.leaf {
			t.Errorf("receipted event %s (leaf %d) is in the log at leaves %v", ev.id, ev.leaf, idxs)
		}
	}
	h.checkStatuses(ctx, receipted)
	st.checkpoints, st.sizes = h.checkCheckpoints(ctx, client)
	return st
}

// batchSizes estimates the sizes of the committed batches from the leaves'
// integration times: the sequencer gives every leaf of a batch the same
// time, and (at millisecond precision) later batches a later one.
func batchSizes(integrated []time.Time) (mean float64, largest int) {
	batches, run := 0, 0
	for i, at := range integrated {
		if i > 0 && at.Equal(integrated[i-1]) {
			run++
		} else {
			batches++
			run = 1
		}
		largest = max(largest, run)
	}
	if batches == 0 {
		return 0, 0
	}
	return float64(len(integrated)) / float64(batches), largest
}

// envelopeEventID returns the event id inside a disclosure envelope. It
// reads only the id: the envelope's bytes are already checked against the
// leaf record, and the ledger checked the rest when it took the event.
func envelopeEventID(env []byte) (string, error) {
	e, err := events.ParseEnvelope(env)
	if err != nil {
		return "", err
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		return "", fmt.Errorf("envelope payload: %w", err)
	}
	if !events.ValidEventID(p.ID) {
		return "", errors.New("envelope payload has no valid event id")
	}
	return p.ID, nil
}

// fetchEntries pages through GET /v1/entries with the FG's token.
func (h *crashHarness) fetchEntries(ctx context.Context) []*httpapi.EntryResponse {
	t := h.t
	t.Helper()
	var all []*httpapi.EntryResponse
	from := uint64(0)
	for {
		b, err := getBytes(ctx, http.DefaultClient, fmt.Sprintf("%s/v1/entries?from=%d&limit=1000", h.srv.url(), from), h.fgToken)
		if err != nil {
			t.Fatal(err)
		}
		var page httpapi.EntriesResponse
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("GET /v1/entries: %v", err)
		}
		all = append(all, page.Entries...)
		if page.Next == nil {
			return all
		}
		if *page.Next <= from {
			t.Fatalf("GET /v1/entries?from=%d answered next=%d", from, *page.Next)
		}
		from = *page.Next
	}
}

// checkStatuses asks GET /v1/events/<id>/status for every receipted event,
// a few requests at a time.
func (h *crashHarness) checkStatuses(ctx context.Context, evs []*trackedEvent) {
	next := make(chan *trackedEvent)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range next {
				b, err := getBytes(ctx, http.DefaultClient, h.srv.url()+"/v1/events/"+ev.id+"/status?sha256="+hex.EncodeToString(ev.hash[:]), "")
				if err != nil {
					h.t.Errorf("status of event %s: %v", ev.id, err)
					continue
				}
				var s httpapi.StatusResponse
				if err := json.Unmarshal(b, &s); err != nil {
					h.t.Errorf("status of event %s: %v", ev.id, err)
					continue
				}
				if s.Status != "committed" || s.LeafIndex == nil || *s.LeafIndex != ev.leaf {
					h.t.Errorf("status of receipted event %s (leaf %d): %s", ev.id, ev.leaf, b)
				}
			}
		}()
	}
	for _, ev := range evs {
		next <- ev
	}
	close(next)
	wg.Wait()
}

// checkCheckpoints checks every checkpoint seen during the run against the
// others: one root per size, cosigned times that never go back as the tree
// grows, and each size consistent with the next larger one, both by the
// ledger's proof (GET /v1/proof/consistency) and by a proof computed from
// the tiles. Consistency composes, so the chain shows that every checkpoint
// is a prefix of every later one.
func (h *crashHarness) checkCheckpoints(ctx context.Context, client *tlogclient.Client) (count, sizes int) {
	t := h.t
	cps := h.watch.all()
	slices.SortFunc(cps, func(a, b *verifier.Checkpoint) int {
		if a.Size != b.Size {
			return cmpUint(a.Size, b.Size)
		}
		return a.CosignedAt.Compare(b.CosignedAt)
	})
	var chain []*verifier.Checkpoint // one per size
	var latestSmaller time.Time      // latest cosigned time of the smaller sizes
	for i, cp := range cps {
		if i > 0 && cps[i-1].Size == cp.Size {
			if cps[i-1].Hash != cp.Hash {
				t.Errorf("two checkpoints of size %d with different roots", cp.Size)
			}
			continue
		}
		if i > 0 && cps[i-1].CosignedAt.After(latestSmaller) {
			latestSmaller = cps[i-1].CosignedAt
		}
		if cp.CosignedAt.Before(latestSmaller) {
			t.Errorf("checkpoint of size %d is cosigned at %s, before one of a smaller size (%s)", cp.Size, cp.CosignedAt, latestSmaller)
		}
		chain = append(chain, cp)
	}
	type pair struct{ old, new *verifier.Checkpoint }
	next := make(chan pair)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := h.checkConsistency(ctx, client, p.old, p.new); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := 1; i < len(chain); i++ {
		next <- pair{chain[i-1], chain[i]}
	}
	close(next)
	wg.Wait()
	return len(cps), len(chain)
}

// checkConsistency checks that old is a prefix of new in both ways.
func (h *crashHarness) checkConsistency(ctx context.Context, client *tlogclient.Client, old, new *verifier.Checkpoint) error {
	b, err := getBytes(ctx, http.DefaultClient, fmt.Sprintf("%s/v1/proof/consistency?old=%d&new=%d", h.srv.url(), old.Size, new.Size), "")
	if err != nil {
		return err
	}
	var resp httpapi.ConsistencyResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return fmt.Errorf("consistency proof %d -> %d: %w", old.Size, new.Size, err)
	}
	if err := verifier.VerifyConsistency(old.Size, new.Size, old.Hash, new.Hash, resp.Proof); err != nil {
		return fmt.Errorf("the ledger's consistency proof: %w", err)
	}
	p, err := client.ProveConsistency(ctx, old.Size, new.Tree())
	if err != nil {
		return err
	}
	if err := verifier.VerifyConsistency(old.Size, new.Size, old.Hash, new.Hash, p); err != nil {
		return fmt.Errorf("the consistency proof from tiles: %w", err)
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// getBytes GETs url (with a bearer token, when given) and returns the body
// of a 200 answer.
func getBytes(ctx context.Context, hc *http.Client, url, token string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// checkpointWatch keeps every distinct checkpoint the test saw, verified.
type checkpointWatch struct {
	keys *verifier.LogKeys // set before the first add

	mu   sync.Mutex
	seen map[string]*verifier.Checkpoint
	max  uint64
}

// add opens note with the pinned keys and keeps it.
func (w *checkpointWatch) add(note []byte) (*verifier.Checkpoint, error) {
	w.mu.Lock()
	cp, ok := w.seen[string(note)]
	w.mu.Unlock()
	if ok {
		return cp, nil
	}
	cp, err := verifier.OpenCheckpoint(note, w.keys)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]*verifier.Checkpoint{}
	}
	w.seen[string(note)] = cp
	w.max = max(w.max, cp.Size)
	return cp, nil
}

// maxSize returns the largest tree size seen so far.
func (w *checkpointWatch) maxSize() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// all returns every checkpoint seen.
func (w *checkpointWatch) all() []*verifier.Checkpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*verifier.Checkpoint, 0, len(w.seen))
	for _, cp := range w.seen {
		out = append(out, cp)
	}
	return out
}

// eventQueue is the unbounded FIFO of events awaiting their receipts. A
// re-queued event goes to the back.
type eventQueue struct {
	mu    sync.Mutex
	items []*trackedEvent
	wake  chan struct{} // capacity 1: "there may be items"
}

func (q *eventQueue) push(ev *trackedEvent) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next event, waiting for one, or nil when ctx ends.
func (q *eventQueue) pop(ctx context.Context) *trackedEvent {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			ev := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				// Pass the wake-up on: one token may stand for many
				// pushes, and other waiters may be asleep.
				q.signal()
			}
			return ev
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil
		}
	}
}
