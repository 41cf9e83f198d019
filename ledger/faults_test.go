package ledger_test

// Injected faults under a running ledger: the Pebble store sits on
// errorfs over a crashable in-memory filesystem, and the WAL's writes or
// fsyncs start failing (or the disk fills up) in the middle of the run.
// The promises checked are the ones docs/guarantees.md makes:
//
//   - a failed write or fsync is fail-stop: the batch's waiters get the
//     error, the sequencer stops (Done, Err), and no checkpoint that was
//     not persisted is ever released (Head stays at the last durable one);
//   - Open, on the crashed filesystem, recovers: the acknowledged events
//     are there exactly once, the failed batch is there whole or not at
//     all, and the log continues as an extension of every checkpoint that
//     was released before the fault;
//   - the clock going backwards across a restart does not make the log's
//     integration times go backwards.

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// walFault fails the given operations on WAL files (*.log) once armed.
type walFault struct {
	kinds map[errorfs.OpKind]bool
	err   error
	armed atomic.Bool
	hits  atomic.Int64
}

func (f *walFault) MaybeError(op errorfs.Op) error {
	if f.armed.Load() && f.kinds[op.Kind] && strings.HasSuffix(op.Path, ".log") {
		f.hits.Add(1)
		return f.err
	}
	return nil
}

func (f *walFault) String() string { return "WAL fault: " + f.err.Error() }

// signLog records every checkpoint the ledger signs, released or not.
type signLog struct {
	signer ledger.CheckpointSigner
	mu     sync.Mutex
	notes  [][]byte
}

func (s *signLog) Sign(origin string, size uint64, root [32]byte) ([]byte, error) {
	n, err := s.signer.Sign(origin, size, root)
	if err == nil {
		s.mu.Lock()
		s.notes = append(s.notes, n)
		s.mu.Unlock()
	}
	return n, err
}

func (s *signLog) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.notes)
}

// faultEvents makes n signed synthetic events.
func faultEvents(t *testing.T, e *testledger.Env, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = e.Event(t)
	}
	return out
}

// faultSubmit submits envelopes as one request and waits for its outcome.
func faultSubmit(t *testing.T, e *testledger.Env, l *ledger.Ledger, envs [][]byte) ([]ledger.Outcome, error) {
	t.Helper()
	return e.SubmitEnvelopes(t, l, envs)
}

// eventID returns the id inside an envelope.
func eventID(t *testing.T, env []byte) (discloser, id string) {
	t.Helper()
	e, err := events.ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	d, err := events.DecodeDisclosure(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return d.Discloser, d.ID
}

// loggedOnce reports whether env's event is in the log, and checks that it
// is there with exactly its bytes.
func loggedOnce(t *testing.T, l *ledger.Ledger, env []byte) bool {
	t.Helper()
	ctx := context.Background()
	discloser, id := eventID(t, env)
	idx, err := l.LookupEvent(ctx, discloser, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("LookupEvent: %v", err)
	}
	body, err := l.Entry(ctx, idx)
	if err != nil {
		t.Fatalf("entry %d: %v", idx, err)
	}
	if !bytes.Equal(body, env) {
		t.Fatalf("leaf %d holds other bytes than the event", idx)
	}
	return true
}

// checkExtends checks that the newer checkpoint's tree extends the older
// one's, with a consistency proof from the ledger.
func checkExtends(t *testing.T, e *testledger.Env, l *ledger.Ledger, older, newer []byte) {
	t.Helper()
	oc, err := verifier.OpenCheckpoint(older, e.Keys)
	if err != nil {
		t.Fatalf("older checkpoint: %v", err)
	}
	nc, err := verifier.OpenCheckpoint(newer, e.Keys)
	if err != nil {
		t.Fatalf("newer checkpoint: %v", err)
	}
	if nc.Size < oc.Size {
		t.Fatalf("the log went back from size %d to %d", oc.Size, nc.Size)
	}
	if oc.Size == nc.Size {
		if oc.Hash != nc.Hash {
			t.Fatalf("two roots for size %d: a fork", oc.Size)
		}
		return
	}
	p, err := l.ConsistencyProof(context.Background(), oc.Size, nc.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifyConsistency(oc.Size, nc.Size, oc.Hash, nc.Hash, p); err != nil {
		t.Fatalf("checkpoint of size %d does not extend the one of size %d: %v", nc.Size, oc.Size, err)
	}
}

func TestFailedCommitIsFailStop(t *testing.T) {
	ops := func(kinds ...errorfs.OpKind) map[errorfs.OpKind]bool {
		m := map[errorfs.OpKind]bool{}
		for _, k := range kinds {
			m[k] = true
		}
		return m
	}
	cases := []struct {
		name  string
		kinds map[errorfs.OpKind]bool
		err   error
		// idle: the fault hits the idle re-cosign (a commit without
		// events) instead of a batch of events.
		idle bool
	}{
		{name: "WAL write error", kinds: ops(errorfs.OpFileWrite, errorfs.OpFileWriteAt), err: errorfs.ErrInjected},
		{name: "WAL fsync error", kinds: ops(errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo), err: errorfs.ErrInjected},
		{name: "full disk", kinds: ops(errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate), err: syscall.ENOSPC},
		{name: "fsync error on idle re-cosign", kinds: ops(errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo), err: errorfs.ErrInjected, idle: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := testledger.New(t)
			mem := vfs.NewCrashableMem()
			fault := &walFault{kinds: c.kinds, err: c.err}
			store, err := pebblestore.Open("ledger", pebblestore.Config{FS: errorfs.Wrap(mem, fault)})
			if err != nil {
				t.Fatal(err)
			}
			signer := &signLog{signer: e.Signer}
			cfg := ledger.Config{Store: store, Signer: signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1}
			if c.idle {
				cfg.IdleCosign = 20 * time.Millisecond
			}
			l, err := ledger.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}

			// Before the fault: a batch is committed and its checkpoint
			// released, as a receipt would carry it.
			before := faultEvents(t, e, 20)
			if _, err := faultSubmit(t, e, l, before); err != nil {
				t.Fatalf("commit before the fault: %v", err)
			}
			released := l.Head()
			signedBefore := signer.count()

			fault.armed.Store(true)
			failed := faultEvents(t, e, 20)
			if c.idle {
				select {
				case <-l.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the ledger kept running although its idle re-cosign cannot be made durable")
				}
				failed = nil
			} else {
				if _, err := faultSubmit(t, e, l, failed); err == nil {
					t.Fatal("the batch's waiters were told it committed although the WAL failed")
				} else if !errors.Is(err, c.err) {
					t.Errorf("the waiters' error %q does not name the disk's error %q", err, c.err)
				}
				select {
				case <-l.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the sequencer did not stop after a failed commit")
				}
			}
			if fault.hits.Load() == 0 {
				t.Fatal("the fault was never hit: the test injects nothing")
			}
			if err := l.Err(); err == nil || !errors.Is(err, c.err) {
				t.Errorf("Err() = %v, want the disk's error %q", err, c.err)
			}
			t.Logf("the ledger stopped: %v", l.Err())
			if h := l.Head(); h.Seq != released.Seq || !bytes.Equal(h.Note, released.Note) {
				t.Fatalf("Head moved to seq %d after the failed commit; only durable checkpoints may be released", h.Seq)
			}
			if signer.count() <= signedBefore {
				t.Fatal("no checkpoint was signed for the failed commit: the fault hit somewhere else")
			}
			// Nothing more is taken, and reads of a store that may hold an
			// undurable batch are refused rather than served.
			if _, err := faultSubmit(t, e, l, faultEvents(t, e, 1)); err == nil {
				t.Error("a stopped ledger took a submission")
			}
			if _, err := l.LeafRecordBytes(context.Background(), released.Size); !errors.Is(err, ledger.ErrStoreFailed) && !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("reading beyond the released checkpoint: %v", err)
			}
			if err := l.Checkpoints(context.Background(), func(uint64, []byte) error { return nil }); !errors.Is(err, ledger.ErrStoreFailed) {
				t.Errorf("listing checkpoints after the failure: %v, want ErrStoreFailed", err)
			}
			if err := l.Close(); err == nil {
				t.Error("Close hid the failure")
			}
			if err := store.Close(); err != nil {
				t.Errorf("store Close after the failure: %v", err)
			}

			// The process or the machine goes down. After a power loss only
			// what was fsync'd survives; after a process crash the page
			// cache does, so a batch whose fsync failed may be there after
			// all. Either way the restart recovers.
			for _, crash := range []struct {
				name string
				cfg  vfs.CrashCloneCfg
			}{
				{"power loss", vfs.CrashCloneCfg{}},
				{"process crash", vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))}},
			} {
				t.Run(crash.name, func(t *testing.T) {
					checkRecovery(t, e, mem.CrashClone(crash.cfg), released, before, failed)
				})
			}
		})
	}
}

// checkRecovery opens the ledger on a crashed filesystem and checks what
// survived, then retries every event as the publishers would.
func checkRecovery(t *testing.T, e *testledger.Env, crashed vfs.FS, released *ledger.Head, before, failed [][]byte) {
	store, err := pebblestore.Open("ledger", pebblestore.Config{FS: crashed})
	if err != nil {
		t.Fatalf("reopening the store: %v", err)
	}
	defer store.Close()
	l, err := ledger.Open(context.Background(), ledger.Config{Store: store, Signer: e.Signer, Keys: e.Keys,
		Covenant: e.Demo.Signed, IdleCosign: -1})
	if err != nil {
		t.Fatalf("ledger.Open after the fault: %v", err)
	}
	defer l.Close()
	recovered := l.Head()
	checkExtends(t, e, l, released.Note, recovered.Note)
	for _, env := range before {
		if !loggedOnce(t, l, env) {
			t.Fatalf("event %s was acknowledged before the fault but is gone", func() string { _, id := eventID(t, env); return id }())
		}
	}
	present := 0
	for _, env := range failed {
		if loggedOnce(t, l, env) {
			present++
		}
	}
	if present != 0 && present != len(failed) {
		t.Fatalf("%d of the %d events of the failed batch survived: a batch is all or nothing", present, len(failed))
	}
	t.Logf("released size %d; recovered size %d with %d of the failed batch's %d events", released.Size, recovered.Size, present, len(failed))

	// The publishers retry what was not acknowledged: each event is then
	// in the log once, and the log extends what was released.
	outs, err := faultSubmit(t, e, l, append(append([][]byte{}, before...), failed...))
	if err != nil {
		t.Fatalf("retrying after the restart: %v", err)
	}
	for i, o := range outs {
		if o.Err != nil {
			t.Fatalf("retry %d: %v", i, o.Err)
		}
		if i < len(before) && !o.Duplicate {
			t.Fatalf("retry of acknowledged event %d was logged a second time", i)
		}
	}
	want := 1 + uint64(len(before)+len(failed))
	if got := l.Head().Size; got != want {
		t.Fatalf("tree size %d after the retries, want %d (covenant and each event once)", got, want)
	}
	checkExtends(t, e, l, released.Note, l.Head().Note)
	checkExtends(t, e, l, recovered.Note, l.Head().Note)
}

// TestClockBackwardsAcrossRestart: a restart on a machine whose clock is an
// hour behind the last integration time keeps integration times monotonic
// and says so in its metric.
func TestClockBackwardsAcrossRestart(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	if _, err := faultSubmit(t, e, l, faultEvents(t, e, 5)); err != nil {
		t.Fatal(err)
	}
	last, err := l.LeafRecord(context.Background(), l.Head().Size-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(l.Close(), s.Close()); err != nil {
		t.Fatal(err)
	}

	behind := last.IntegratedAt.Add(-time.Hour)
	l, s = e.Open(t, ledger.Config{IdleCosign: -1, Now: func() time.Time { return behind }})
	defer s.Close()
	defer l.Close()
	outs, err := faultSubmit(t, e, l, faultEvents(t, e, 5))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		rec, err := l.LeafRecord(context.Background(), o.Index)
		if err != nil {
			t.Fatal(err)
		}
		if rec.IntegratedAt.Before(last.IntegratedAt) {
			t.Fatalf("leaf %d integrated at %v, before the last leaf before the restart (%v)", o.Index, rec.IntegratedAt, last.IntegratedAt)
		}
	}
	if got := faultCounter(t, l, "spoor_ledger_clock_backwards_total"); got < 1 {
		t.Fatalf("spoor_ledger_clock_backwards_total = %v after a clock an hour behind", got)
	}
}

// faultCounter reads one of the ledger's counters.
func faultCounter(t *testing.T, l *ledger.Ledger, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
