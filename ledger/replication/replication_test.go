package replication

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/replicationtest"
	"github.com/spoor-ledger/spoor/verifier"
)

// node is one ledger of a test: its own Pebble and data key folder.
type node struct {
	dir   string
	store *pebblestore.Store
	keys  *ledger.DataKeys
	l     *ledger.Ledger
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	s, err := pebblestore.Open(filepath.Join(dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ledger.OpenDataKeys(filepath.Join(dir, "datakeys"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{dir: dir, store: s, keys: keys}
	t.Cleanup(func() {
		if n.l != nil {
			n.l.Close()
		}
		n.store.Close()
	})
	return n
}

func (n *node) config(env *testledger.Env, r ledger.Replicator) ledger.Config {
	return ledger.Config{Store: n.store, Signer: env.Signer, Keys: env.Keys, Covenant: env.Demo.Signed,
		AdminVkey: env.Demo.AdminVkey,
		DataKeys:  n.keys, Replicator: r, IdleCosign: -1, MaxBatch: 4096, MaxBatchAge: 5 * time.Millisecond}
}

// follow steps f until its ledger's head has size.
func follow(t *testing.T, f *Follower, l *ledger.Ledger, size uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.Head() == nil || l.Head().Size < size {
		if time.Now().After(deadline) {
			t.Fatalf("standby did not reach size %d (at %v)", size, l.Head())
		}
		if _, err := f.Step(t.Context(), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

func setupNATS(t *testing.T, origin string) *Setup {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	setup, err := Ensure(t.Context(), js, Config{Origin: origin, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return setup
}

// TestActiveAndStandby runs an active ledger that replicates to SPOOR_LOG
// and a standby that applies it, in one process against a real
// nats-server: the standby ends with the same head, tiles, entries and
// indices, byte for byte; a batch larger than one part (split) and an
// erasure (deletes) go across; the standby reads the sealed envelopes with
// the data keys it got from the bucket. Then the active stops, the standby
// catches up, is promoted and continues the same tree.
func TestActiveAndStandby(t *testing.T) {
	env := testledger.New(t)
	origin := env.Demo.Signed.Covenant.Origin
	setup := setupNATS(t, origin)

	a := newNode(t, "active")
	var err error
	a.l, err = ledger.Open(t.Context(), a.config(env, NewPublisher(setup, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, "standby")
	b.l, err = ledger.OpenStandby(t.Context(), b.config(env, NewPublisher(setup, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := NewFollower(setup, b.l, b.keys, nil)

	for _, n := range []int{1, 7, 1500} {
		if _, err := env.SubmitEvents(t, a.l, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.l.Erase(t.Context(), 3, "test-erasure"); err != nil {
		t.Fatal(err)
	}
	// An inzage request registered on the active ledger, not yet released
	// when it fails: the standby must have it to release it after the
	// failover.
	req := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: env.Demo.SubjectKey.ID, Pseudonym: env.Gen.Children()[0].Pseudonym}},
		Scope:       verifier.BundleScope{CentralDesk: true},
		RequestedBy: "desk-1", RequestedByCredential: "c1"}
	if err := answer.New(answer.Config{Ledger: a.l}).RegisterAccess(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	head := a.l.Head()
	info, err := setup.Stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs <= uint64(head.Seq) {
		t.Errorf("the stream holds %d messages for %d checkpoints: the 1500-event batch was not split", info.State.Msgs, head.Seq)
	}
	follow(t, f, b.l, head.Size)
	if got := b.l.Head(); got.Size != head.Size || got.Root != head.Root || !bytes.Equal(got.Note, head.Note) {
		t.Fatalf("standby head %d %x, active %d %x", got.Size, got.Root[:4], head.Size, head.Root[:4])
	}
	replicationtest.SameStore(t, a.store, b.store)
	for i := uint64(0); i < head.Size; i++ {
		ea, errA := a.l.Entry(t.Context(), i)
		eb, errB := b.l.Entry(t.Context(), i)
		if (errA == nil) != (errB == nil) || !bytes.Equal(ea, eb) {
			t.Fatalf("entry %d: active %v, standby %v", i, errA, errB)
		}
	}
	if _, err := b.l.Entry(t.Context(), 3); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("the erased entry on the standby: %v, want ErrNotFound", err)
	}
	standbyDesk := answer.New(answer.Config{Ledger: b.l, LogVkey: env.LogVkey, CosignerVkey: env.CosVkey})
	if got, err := standbyDesk.Access(t.Context(), req.ID); err != nil || got.Status != answer.AccessRegistered || got.RequestedBy != "desk-1" {
		t.Fatalf("the access request on the standby: %+v, %v", got, err)
	}

	// Failover: the active stops; the standby applies the rest (nothing
	// here) and continues the tree.
	if err := a.l.Close(); err != nil {
		t.Fatal(err)
	}
	a.l = nil
	if err := f.CatchUp(t.Context(), NewPublisher(setup, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := env.SubmitEvents(t, b.l, 5)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Index != head.Size {
		t.Errorf("the promoted ledger logged at %d, want %d", out[0].Index, head.Size)
	}
	if got := b.l.Head().Size; got != head.Size+5 {
		t.Errorf("promoted head size %d, want %d", got, head.Size+5)
	}
	if b.l.ReplicaPosition() <= info.State.LastSeq {
		t.Errorf("the promoted ledger did not publish (position %d)", b.l.ReplicaPosition())
	}
	// The request registered before the failover is released, and
	// answered, by the new active ledger.
	released, err := standbyDesk.ReleaseAccess(t.Context(), req.Scope, req.ID, answer.DeskUser{Name: "desk-2", Credential: "c2"}, answer.Release{})
	if err != nil {
		t.Fatalf("releasing on the promoted ledger: %v", err)
	}
	bundle, err := standbyDesk.AccessBundle(t.Context(), released)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.VerifyBundle(bundle, env.Keys, env.Demo.AdminVkey); err != nil {
		t.Fatalf("the answer of the promoted ledger: %v", err)
	}
}

// TestStaleActiveIsFenced: a standby is promoted while the old active is
// still running (a network partition, a paused process). The first one to
// publish wins; the other's next publish fails the expected-last-sequence
// check, its batch is never acknowledged and its sequencer halts.
func TestStaleActiveIsFenced(t *testing.T) {
	env := testledger.New(t)
	setup := setupNATS(t, env.Demo.Signed.Covenant.Origin)
	a := newNode(t, "old")
	var err error
	a.l, err = ledger.Open(t.Context(), a.config(env, NewPublisher(setup, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.SubmitEvents(t, a.l, 3); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, "new")
	b.l, err = ledger.OpenStandby(t.Context(), b.config(env, NewPublisher(setup, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := NewFollower(setup, b.l, b.keys, nil)
	if err := f.CatchUp(t.Context(), NewPublisher(setup, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := env.SubmitEvents(t, b.l, 2); err != nil {
		t.Fatal(err)
	}
	before := a.l.Head()
	out, err := env.SubmitEvents(t, a.l, 2)
	if err == nil {
		t.Fatalf("the stale active's batch was acknowledged: %+v", out)
	}
	if !errors.Is(err, ErrFenced) {
		t.Errorf("stale active: %v, want ErrFenced", err)
	}
	select {
	case <-a.l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stale active's sequencer did not halt")
	}
	if a.l.Head() != before {
		t.Error("the stale active published a new head")
	}
	if _, err := env.SubmitEvents(t, a.l, 1); err == nil {
		t.Error("the halted ledger took more events")
	}
	if _, err := env.SubmitEvents(t, b.l, 1); err != nil {
		t.Errorf("the new active: %v", err)
	}
}

// TestLease: one of two holders gets the lease; the other gets it only
// after the first stops renewing and the TTL has passed, and the first
// then cannot renew.
func TestLease(t *testing.T) {
	setup := setupNATS(t, "example.org/lease-test")
	ttl := 600 * time.Millisecond
	one := NewLease(setup, "example.org/lease-test", "one", ttl)
	two := NewLease(setup, "example.org/lease-test", "two", ttl)
	ok, _, err := one.TryAcquire(t.Context())
	if err != nil || !ok {
		t.Fatalf("first acquire: %v %v", ok, err)
	}
	ok, holder, err := two.TryAcquire(t.Context())
	if err != nil || ok || holder != "one" {
		t.Fatalf("second acquire while held: %v %q %v", ok, holder, err)
	}
	if err := one.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if one.Valid() {
		t.Error("a lease not renewed for its TTL still counts as valid")
	}
	ok, _, err = two.TryAcquire(t.Context())
	if err != nil || !ok {
		t.Fatalf("acquire after expiry: %v %v", ok, err)
	}
	if err := one.Renew(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renewal by the old holder: %v, want ErrLeaseLost", err)
	}
	if err := two.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	ok, _, err = one.TryAcquire(t.Context())
	if err != nil || !ok {
		t.Fatalf("acquire after release: %v %v", ok, err)
	}
}

// TestKeySync: the active's destroyed data key is purged from the bucket,
// and the standby destroys its copy.
func TestKeySync(t *testing.T) {
	env := testledger.New(t)
	setup := setupNATS(t, env.Demo.Signed.Covenant.Origin)
	a := newNode(t, "active")
	pub := NewPublisher(setup, nil, nil)
	var err error
	a.l, err = ledger.Open(t.Context(), a.config(env, pub))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.SubmitEvents(t, a.l, 3); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, "standby")
	b.l, err = ledger.OpenStandby(t.Context(), b.config(env, nil))
	if err != nil {
		t.Fatal(err)
	}
	f := NewFollower(setup, b.l, b.keys, nil)
	follow(t, f, b.l, a.l.Head().Size)
	ids, err := a.keys.IDs()
	if err != nil || len(ids) == 0 {
		t.Fatalf("active data keys: %v %v", ids, err)
	}
	for _, id := range ids {
		if !b.keys.Has(id) {
			t.Fatalf("the standby lacks data key %s", id)
		}
	}
	// Retention destroys a key on the active (here by hand).
	if err := a.keys.Destroy(ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := pub.KeySync(t.Context(), a.keys); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.DataKeys.Get(t.Context(), ids[0]); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the destroyed key is still in %s: %v", DataKeysBucket, err)
	}
	if err := f.KeySync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.keys.Has(ids[0]) {
		t.Error("the standby kept the destroyed key")
	}
}

// crashBeforePublish forwards the first n batches to pub and then fails
// every later one without publishing anything: the active "crashes"
// between its durable commit and its publish.
type crashBeforePublish struct {
	pub *Publisher
	n   int
}

func (c *crashBeforePublish) Replicate(ctx context.Context, out *ledger.ReplicaOut) error {
	if c.n == 0 {
		return errors.New("crashed before the publish")
	}
	c.n--
	return c.pub.Replicate(ctx, out)
}

// reopenStandby closes n's ledger and store and opens the same store
// again as a standby.
func (n *node) reopenStandby(t *testing.T, env *testledger.Env, r ledger.Replicator) {
	t.Helper()
	n.l.Close()
	n.store.Close()
	s, err := pebblestore.Open(filepath.Join(n.dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n.store = s
	n.l, err = ledger.OpenStandby(t.Context(), n.config(env, r))
	if err != nil {
		t.Fatal(err)
	}
}

// unpublishedBatch runs an active ledger that commits a batch of 3 events
// and publishes it, then commits a batch of 600 and fails before publishing
// it, as a crash between the two would leave it.
func unpublishedBatch(t *testing.T) (*testledger.Env, *Setup, *node) {
	t.Helper()
	env := testledger.New(t)
	setup := setupNATS(t, env.Demo.Signed.Covenant.Origin)
	a := newNode(t, "a")
	var err error
	a.l, err = ledger.Open(t.Context(), a.config(env, &crashBeforePublish{pub: NewPublisher(setup, nil, nil), n: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.SubmitEvents(t, a.l, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := env.SubmitEvents(t, a.l, 600); err == nil {
		t.Fatal("the batch that was not published was acknowledged")
	}
	return env, setup, a
}

// TestCrashBetweenCommitAndPublish: an active ledger whose batch is durable
// but not on the stream publishes it first when it takes the lease again
// (the outbox), and a standby then reaches the same head. If another
// ledger took over in between, the old store refuses (ErrDiverged).
func TestCrashBetweenCommitAndPublish(t *testing.T) {
	t.Run("same ledger again", func(t *testing.T) {
		env, setup, a := unpublishedBatch(t)
		var err error
		a.reopenStandby(t, env, NewPublisher(setup, nil, nil))
		local := a.l.Head()
		fa := NewFollower(setup, a.l, a.keys, nil)
		if err := fa.CatchUp(t.Context(), NewPublisher(setup, nil, nil)); err != nil {
			t.Fatal(err)
		}
		_, last, err := setup.bounds(t.Context())
		if err != nil || last != a.l.ReplicaPosition() {
			t.Fatalf("after catching up the stream ends at %d, the store is at %d (%v)", last, a.l.ReplicaPosition(), err)
		}
		if err := a.l.Promote(t.Context()); err != nil {
			t.Fatal(err)
		}
		b := newNode(t, "b")
		b.l, err = ledger.OpenStandby(t.Context(), b.config(env, nil))
		if err != nil {
			t.Fatal(err)
		}
		follow(t, NewFollower(setup, b.l, b.keys, nil), b.l, local.Size)
		if got := b.l.Head(); got.Root != local.Root {
			t.Errorf("the standby's head %d differs from the restarted active's %d", got.Size, local.Size)
		}
	})
	t.Run("another ledger took over", func(t *testing.T) {
		env, setup, a := unpublishedBatch(t)
		var err error
		b := newNode(t, "b")
		b.l, err = ledger.OpenStandby(t.Context(), b.config(env, NewPublisher(setup, nil, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := NewFollower(setup, b.l, b.keys, nil).CatchUp(t.Context(), NewPublisher(setup, nil, nil)); err != nil {
			t.Fatal(err)
		}
		if err := b.l.Promote(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := env.SubmitEvents(t, b.l, 1); err != nil {
			t.Fatal(err)
		}
		a.reopenStandby(t, env, NewPublisher(setup, nil, nil))
		err = NewFollower(setup, a.l, a.keys, nil).CatchUp(t.Context(), NewPublisher(setup, nil, nil))
		if !errors.Is(err, ErrDiverged) {
			t.Errorf("the old active's store after another took over: %v, want ErrDiverged", err)
		}
	})
}
