// Package replicationtest is the conformance suite of the replication seam
// (ledger.Replicator and the follower that applies what it published): one
// scenario per clause, run on any implementation of a replicated stream,
// and a reference implementation in memory (MemStream) that shows the
// suite does not depend on NATS.
//
// An implementation hands the suite a Stream: the Replicator an active
// ledger publishes with, and CatchUp, which brings a standby ledger to the
// end of the stream as a failover does (publish what the ledger's own
// outbox holds beyond the stream, apply every complete batch, skip the
// parts of a batch its publisher never finished). The stores come from a
// storetest.Stores, so the suite imports no backend.
//
// # Clauses and their tests
//
//	| clause    | test      | what must hold                                                                  |
//	|-----------|-----------|---------------------------------------------------------------------------------|
//	| apply     | Apply     | a standby that catches up holds the active's head and store byte for byte       |
//	|           |           | (but the outbox), across a batch split in parts and an erasure's deletes          |
//	| fence     | Fence     | once another ledger published, a stale active's batch is refused, never          |
//	|           |           | acknowledged, and its sequencer halts with its head unchanged                   |
//	| promote   | Promote   | a promoted standby continues the same tree; a new standby follows the whole     |
//	|           |           | stream, before and after the failover, to the promoted ledger's head            |
//	| outbox    | Outbox    | a batch committed but never published is published by the same store at its     |
//	|           |           | next catch-up, and a standby then reaches the same head                         |
//	| diverged  | Diverged  | a store holding a batch the stream does not (another ledger took over after it  |
//	|           |           | stopped before publishing) is refused at catch-up                               |
package replicationtest

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testenv"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/storetest"
)

// Stream is one replicated stream of one log, as an implementation provides
// it to the suite.
type Stream interface {
	// Publisher returns a Replicator that publishes onto the stream as
	// the active ledger does.
	Publisher() ledger.Replicator
	// CatchUp brings standby (opened with ledger.OpenStandby; keys its
	// data key folder) to the end of the stream: it publishes what the
	// standby's own outbox holds beyond the stream, applies every complete
	// batch and skips the parts of an unfinished one. It refuses a store
	// that holds a batch the stream does not.
	CatchUp(ctx context.Context, standby *ledger.Ledger, keys *ledger.DataKeys) error
}

// Harness is what Run needs: a fresh stream per test and the stores.
type Harness struct {
	// New returns a fresh, empty stream for the log named origin.
	New func(t *testing.T, origin string) Stream
	// Stores gives each ledger of a test its store.
	Stores storetest.Stores
}

// Run runs every clause's test on h.
func Run(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Apply", testApply},
		{"Fence", testFence},
		{"Promote", testPromote},
		{"Outbox", testOutbox},
		{"Diverged", testDiverged},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

// node is one ledger of a test: its store and data key folder.
type node struct {
	data  storetest.Reopener
	store ledger.Store
	keys  *ledger.DataKeys
	l     *ledger.Ledger
}

func newNode(t *testing.T, h Harness) *node {
	t.Helper()
	keys, err := ledger.OpenDataKeys(filepath.Join(t.TempDir(), "datakeys"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{data: h.Stores(t), keys: keys}
	n.store = n.data.Open(t)
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	if n.l != nil {
		n.l.Close()
		n.l = nil
	}
	if n.store != nil {
		n.store.Close()
		n.store = nil
	}
}

func (n *node) config(env *testenv.Env, r ledger.Replicator) ledger.Config {
	return ledger.Config{Store: n.store, Signer: env.Signer, Keys: env.Keys, Covenant: env.Demo.Signed,
		AdminVkey: env.Demo.AdminVkey, DataKeys: n.keys, Replicator: r, IdleCosign: -1,
		MaxBatch: 4096, MaxBatchAge: 5 * time.Millisecond}
}

func (n *node) openActive(t *testing.T, env *testenv.Env, r ledger.Replicator) {
	t.Helper()
	l, err := ledger.Open(t.Context(), n.config(env, r))
	if err != nil {
		t.Fatalf("ledger.Open: %v", err)
	}
	n.l = l
}

func (n *node) openStandby(t *testing.T, env *testenv.Env, r ledger.Replicator) {
	t.Helper()
	l, err := ledger.OpenStandby(t.Context(), n.config(env, r))
	if err != nil {
		t.Fatalf("ledger.OpenStandby: %v", err)
	}
	n.l = l
}

// reopenStandby closes n's ledger and store and opens the same data again
// as a standby.
func (n *node) reopenStandby(t *testing.T, env *testenv.Env, r ledger.Replicator) {
	t.Helper()
	n.close()
	n.store = n.data.Open(t)
	n.openStandby(t, env, r)
}

func catchUp(t *testing.T, s Stream, n *node) {
	t.Helper()
	if err := s.CatchUp(t.Context(), n.l, n.keys); err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
}

func submit(t *testing.T, env *testenv.Env, l *ledger.Ledger, n int) {
	t.Helper()
	if _, err := env.SubmitEvents(t, l, n); err != nil {
		t.Fatalf("submitting %d events: %v", n, err)
	}
}

// sameHead fails unless b's head is a's.
func sameHead(t *testing.T, what string, a, b *ledger.Ledger) {
	t.Helper()
	ha, hb := a.Head(), b.Head()
	if ha == nil || hb == nil || ha.Size != hb.Size || ha.Root != hb.Root || !bytes.Equal(ha.Note, hb.Note) {
		t.Fatalf("%s: heads differ: %v and %v", what, ha, hb)
	}
}

// SameStore fails unless two stores hold the same keys and values, but
// for the active's outbox (only an active has one).
func SameStore(t *testing.T, a, b ledger.Store) {
	t.Helper()
	type kv struct{ k, v []byte }
	read := func(s ledger.Store) []kv {
		var out []kv
		err := s.Scan(t.Context(), []byte{0}, nil, func(k, v []byte) error {
			if string(k) == "mreplica-outbox" {
				return nil
			}
			out = append(out, kv{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ka, kb := read(a), read(b)
	if len(ka) != len(kb) {
		t.Fatalf("the stores hold %d and %d keys", len(ka), len(kb))
	}
	for i := range ka {
		if !bytes.Equal(ka[i].k, kb[i].k) || !bytes.Equal(ka[i].v, kb[i].v) {
			t.Fatalf("the stores differ at key %q", ka[i].k)
		}
	}
}

// testApply: small batches, one larger than a part (split), and an
// erasure's deletes go across; the standby ends byte for byte equal.
func testApply(t *testing.T, h Harness) {
	env := testenv.New(t)
	s := h.New(t, env.Demo.Signed.Covenant.Origin)
	a, b := newNode(t, h), newNode(t, h)
	a.openActive(t, env, s.Publisher())
	submit(t, env, a.l, 3)
	submit(t, env, a.l, 1500) // more than ledger.MaxReplicaPart: several parts
	b.openStandby(t, env, nil)
	catchUp(t, s, b)
	sameHead(t, "after a split batch", a.l, b.l)
	if a.l.ReplicaPosition() != b.l.ReplicaPosition() || a.l.ReplicaPosition() <= a.l.Head().Seq {
		t.Errorf("positions: active %d, standby %d, for %d checkpoints (a split batch takes more than one)",
			a.l.ReplicaPosition(), b.l.ReplicaPosition(), a.l.Head().Seq)
	}
	// An erasure: the envelope's delete and the tombstone go across.
	if _, err := a.l.Erase(t.Context(), 7, "avg-17-1-a"); err != nil {
		t.Fatalf("erasing: %v", err)
	}
	submit(t, env, a.l, 2)
	catchUp(t, s, b)
	sameHead(t, "after an erasure", a.l, b.l)
	SameStore(t, a.store, b.store)
}

// testFence: a stale active cannot publish once another ledger has.
func testFence(t *testing.T, h Harness) {
	env := testenv.New(t)
	s := h.New(t, env.Demo.Signed.Covenant.Origin)
	a, b := newNode(t, h), newNode(t, h)
	a.openActive(t, env, s.Publisher())
	submit(t, env, a.l, 3)
	b.openStandby(t, env, s.Publisher())
	catchUp(t, s, b)
	if err := b.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	submit(t, env, b.l, 2)
	before := a.l.Head()
	if out, err := env.SubmitEvents(t, a.l, 2); err == nil {
		t.Fatalf("the stale active's batch was acknowledged: %+v", out)
	}
	select {
	case <-a.l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stale active's sequencer did not halt")
	}
	if a.l.Head() != before {
		t.Error("the stale active published a new head")
	}
	if _, err := env.SubmitEvents(t, a.l, 1); err == nil {
		t.Error("the halted ledger took more events")
	}
	// The stream holds only the new active's batches: a fresh standby
	// reaches its head.
	c := newNode(t, h)
	c.openStandby(t, env, nil)
	catchUp(t, s, c)
	sameHead(t, "a standby after the fencing", b.l, c.l)
}

// testPromote: the promoted standby continues the tree, and a standby
// that follows the whole stream reaches it.
func testPromote(t *testing.T, h Harness) {
	env := testenv.New(t)
	s := h.New(t, env.Demo.Signed.Covenant.Origin)
	a, b := newNode(t, h), newNode(t, h)
	a.openActive(t, env, s.Publisher())
	submit(t, env, a.l, 40)
	head := a.l.Head()
	a.close() // the active stops
	b.openStandby(t, env, s.Publisher())
	catchUp(t, s, b)
	if err := b.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := env.SubmitEvents(t, b.l, 5)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Index != head.Size || b.l.Head().Size != head.Size+5 {
		t.Errorf("the promoted ledger logged at %d (size %d), want %d (size %d)", out[0].Index, b.l.Head().Size, head.Size, head.Size+5)
	}
	c := newNode(t, h)
	c.openStandby(t, env, nil)
	catchUp(t, s, c)
	sameHead(t, "a standby of the whole stream", b.l, c.l)
	SameStore(t, b.store, c.store)
}

// crashBeforePublish forwards the first n batches and then fails every
// later one without publishing: the active "crashes" between its durable
// commit and its publish.
type crashBeforePublish struct {
	r ledger.Replicator
	n int
}

var errCrashed = errors.New("replicationtest: crashed before the publish")

func (c *crashBeforePublish) Replicate(ctx context.Context, out *ledger.ReplicaOut) error {
	if c.n == 0 {
		return errCrashed
	}
	c.n--
	return c.r.Replicate(ctx, out)
}

// unpublished runs an active that publishes two batches (the covenant and
// 3 events) and commits a third of 600 events without publishing it.
func unpublished(t *testing.T, h Harness, env *testenv.Env, s Stream) *node {
	t.Helper()
	a := newNode(t, h)
	a.openActive(t, env, &crashBeforePublish{r: s.Publisher(), n: 2})
	submit(t, env, a.l, 3)
	if _, err := env.SubmitEvents(t, a.l, 600); err == nil {
		t.Fatal("the batch that was not published was acknowledged")
	}
	return a
}

// testOutbox: the same store publishes its unpublished batch first.
func testOutbox(t *testing.T, h Harness) {
	env := testenv.New(t)
	s := h.New(t, env.Demo.Signed.Covenant.Origin)
	a := unpublished(t, h, env, s)
	a.reopenStandby(t, env, s.Publisher())
	local := a.l.Head()
	catchUp(t, s, a)
	if err := a.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, h)
	b.openStandby(t, env, nil)
	catchUp(t, s, b)
	if got := b.l.Head(); got.Size != local.Size || got.Root != local.Root {
		t.Errorf("the standby's head %d differs from the restarted active's %d", got.Size, local.Size)
	}
}

// testDiverged: another ledger took over; the old store is refused.
func testDiverged(t *testing.T, h Harness) {
	env := testenv.New(t)
	s := h.New(t, env.Demo.Signed.Covenant.Origin)
	a := unpublished(t, h, env, s)
	b := newNode(t, h)
	b.openStandby(t, env, s.Publisher())
	catchUp(t, s, b)
	if err := b.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	submit(t, env, b.l, 1)
	a.reopenStandby(t, env, s.Publisher())
	if err := s.CatchUp(t.Context(), a.l, a.keys); err == nil {
		t.Error("the old active's store, holding a batch the stream does not, caught up")
	}
}
