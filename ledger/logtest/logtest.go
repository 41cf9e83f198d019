// Package logtest is the conformance suite of the ledger's Merkle-log seam
// (ledger.MerkleBackend): one scenario that runs on the default (the tiles
// in the store only, no backend) and on every backend (Trillian, and an
// in-memory tree computed with golang.org/x/mod/sumdb/tlog), and whose
// roots and proofs must be byte-identical across them.
//
// Data flow: NewWorkload makes a test log's keys and covenant and a fixed
// set of signed events once; Run opens a real ledger (on the store its
// caller's Stores hands it, Pebble or the in-memory reference; real Ed25519 keys, a fixed clock) on one backend, feeds it the workload in
// fixed batches (new events, duplicates, an id conflict, a tombstone), closes
// and reopens it, simulates crashes between a batch's pending commit and its
// checkpoint (the backend fails before, or after, it integrated the leaves),
// makes the backend disagree once, and then checks every checkpoint's root,
// every inclusion proof and the consistency of every checkpoint with the
// next against x/mod's tlog, a Merkle implementation independent of the
// ledger and of Trillian. With a backend it also feeds a fresh backend from
// the stored leaves at Open and refuses a backend that is ahead. The Result
// is compared across backends with Result.Diff.
package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testenv"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/storetest"
	"github.com/spoor-ledger/spoor/verifier"
)

// Backend names one implementation under test.
type Backend struct {
	// Name is the subtest name.
	Name string
	// New returns a fresh, empty backend (for Trillian: a new tree), or
	// nil for the default, the tiles in Pebble only. Run calls it more
	// than once.
	New func(t testing.TB) ledger.MerkleBackend
}

// Workload is the fixed input of a run: the same keys, covenant and
// envelopes for every backend, so that the same leaf records result.
type Workload struct {
	env *testenv.Env
	// events are signed envelopes with their payloads, in order.
	events []signed
	// conflict reuses the id of events[7] with other bytes.
	conflict []byte
}

type signed struct {
	env []byte
	d   *events.Disclosure
}

// The batches of the scenario, as ranges of Workload.events. B crosses the
// first tile boundary; D starts inside a tile and crosses the second, so
// that the tiles written for its pending size overwrite partial tiles of
// the checkpoint before it.
var (
	batchA  = [2]int{0, 1}
	batchB  = [2]int{1, 301}
	batchC  = [2]int{301, 306} // plus duplicates and the conflict
	batchD  = [2]int{306, 506}
	batchE  = [2]int{506, 556}
	batchF  = [2]int{556, 566}
	nEvents = 566
)

// clock is the fixed integration time of every run.
var clock = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// NewWorkload makes the keys, covenant and events of a run.
func NewWorkload(t testing.TB) *Workload {
	t.Helper()
	w := &Workload{env: testenv.New(t)}
	// The events occur before the fixed time of recording: one dated
	// after it would be refused (occurred_in_future).
	w.env.Gen.Now = clock.Add(-time.Hour)
	for range nEvents {
		env, d := w.env.Event(t)
		w.events = append(w.events, signed{env, d})
	}
	// Same id, other bytes: the first one stands.
	d := *w.events[7].d
	d.OccurredAt = d.OccurredAt.Add(-time.Second)
	w.conflict = w.env.Sign(t, &d)
	return w
}

// Result is what a run observed, for comparison across backends.
type Result struct {
	// Sizes and Roots are those of every kept checkpoint, in order.
	Sizes []uint64
	Roots [][32]byte
	// Inclusion[i] is the proof of leaf i in the final tree.
	Inclusion [][][]byte
	// Consistency[i] is the proof from Sizes[i] to Sizes[i+1].
	Consistency [][][]byte
	// Bundle is the inzage bundle of the first event's child at the
	// final head, as BuildBundle wrote it (fixed clock and request, so
	// the bytes are the same on every backend).
	Bundle []byte
}

// Diff describes the first difference between r and o, or returns nil.
func (r *Result) Diff(o *Result) error {
	if fmt.Sprint(r.Sizes) != fmt.Sprint(o.Sizes) {
		return fmt.Errorf("checkpoint sizes %v vs %v", r.Sizes, o.Sizes)
	}
	for i := range r.Roots {
		if r.Roots[i] != o.Roots[i] {
			return fmt.Errorf("root at size %d: %x vs %x", r.Sizes[i], r.Roots[i][:8], o.Roots[i][:8])
		}
	}
	if err := diffProofs("inclusion proof of leaf", r.Inclusion, o.Inclusion); err != nil {
		return err
	}
	if err := diffProofs("consistency proof number", r.Consistency, o.Consistency); err != nil {
		return err
	}
	a, err := withoutCheckpoint(r.Bundle)
	if err != nil {
		return err
	}
	b, err := withoutCheckpoint(o.Bundle)
	if err != nil {
		return err
	}
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			return fmt.Errorf("the inzage bundles differ in %q", k)
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("the inzage bundles have %d vs %d fields", len(a), len(b))
	}
	return nil
}

// withoutCheckpoint returns a bundle's fields but its checkpoint, whose
// cosignature carries the wall-clock time of signing and so differs from
// run to run (its size and root are compared through Sizes and Roots).
func withoutCheckpoint(bundle []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(bundle, &m); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, ok := m["checkpoint"]; !ok {
		return nil, fmt.Errorf("bundle has no checkpoint field")
	}
	delete(m, "checkpoint")
	return m, nil
}

func diffProofs(what string, a, b [][][]byte) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d vs %d proofs (%s)", len(a), len(b), what)
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Errorf("%s %d: %d vs %d hashes", what, i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			if !bytes.Equal(a[i][j], b[i][j]) {
				return fmt.Errorf("%s %d: hash %d differs", what, i, j)
			}
		}
	}
	return nil
}

// run is one ledger directory under test.
type run struct {
	t      *testing.T
	w      *Workload
	data   storetest.Reopener
	stores storetest.Stores
	l      *ledger.Ledger
	store  ledger.Store
}

func (r *run) open(m ledger.MerkleBackend) error {
	s := r.data.Open(r.t)
	cfg := ledger.Config{
		Store: s, Signer: r.w.env.Signer, Keys: r.w.env.Keys, Covenant: r.w.env.Demo.Signed,
		IdleCosign: -1, MaxBatch: 1 << 16, Now: func() time.Time { return clock }, Merkle: m,
	}
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		s.Close()
		return err
	}
	r.l, r.store = l, s
	return nil
}

func (r *run) mustOpen(m ledger.MerkleBackend) {
	r.t.Helper()
	if err := r.open(m); err != nil {
		r.t.Fatalf("ledger.Open: %v", err)
	}
}

// close stops the ledger (a halted one reports why; that is expected
// after a simulated fault) and closes the store.
func (r *run) close() {
	r.t.Helper()
	_ = r.l.Close()
	if err := r.store.Close(); err != nil {
		r.t.Fatalf("closing the store: %v", err)
	}
	r.l, r.store = nil, nil
}

func (r *run) subs(rng [2]int) []ledger.Submission {
	r.t.Helper()
	out := make([]ledger.Submission, 0, rng[1]-rng[0])
	for _, e := range r.w.events[rng[0]:rng[1]] {
		out = append(out, r.w.env.Submission(r.t, r.l, e.env))
	}
	return out
}

func (r *run) submit(subs []ledger.Submission) ([]ledger.Outcome, error) {
	ctx := context.Background()
	p, err := r.l.Submit(ctx, subs)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

func (r *run) mustSubmit(subs []ledger.Submission) []ledger.Outcome {
	r.t.Helper()
	out, err := r.submit(subs)
	if err != nil {
		r.t.Fatalf("submit: %v", err)
	}
	return out
}

// fault makes the backend fail one way for the next Integrate.
type fault int

const (
	// failBefore: the backend is unreachable; nothing reached it.
	failBefore fault = iota
	// failAfter: the backend integrated the leaves, then the answer was
	// lost (a crash of the ledger just before it signs looks the same).
	failAfter
	// wrongRoot: the backend integrated the leaves but reports another
	// root.
	wrongRoot
)

// faulty wraps a backend and fails its Integrate calls of a batch as f
// says.
type faulty struct {
	ledger.MerkleBackend
	f fault
}

var errInjected = errors.New("logtest: injected backend fault")

func (b faulty) Integrate(ctx context.Context, first uint64, leaves [][]byte) ([32]byte, error) {
	if len(leaves) == 0 {
		// Open's root check, not a batch.
		return b.MerkleBackend.Integrate(ctx, first, leaves)
	}
	if b.f == failBefore {
		return [32]byte{}, errInjected
	}
	root, err := b.MerkleBackend.Integrate(ctx, first, leaves)
	if err != nil {
		return root, err
	}
	if b.f == failAfter {
		return [32]byte{}, errInjected
	}
	root[0] ^= 1
	return root, nil
}

// Run runs the scenario on one backend, over a fresh data location from
// stores, and returns what it observed.
func Run(t *testing.T, w *Workload, b Backend, stores storetest.Stores) *Result {
	t.Helper()
	ctx := context.Background()
	backend := b.New(t)
	r := &run{t: t, w: w, data: stores(t), stores: stores}
	r.mustOpen(backend)
	if h := r.l.Head(); h.Size != 1 {
		t.Fatalf("a new log has size %d, want 1 (the covenant)", h.Size)
	}

	r.mustSubmit(r.subs(batchA))
	r.mustSubmit(r.subs(batchB))

	// New events, two duplicates and an id conflict in one batch.
	subs := r.subs(batchC)
	subs = append(subs, r.w.env.Submission(t, r.l, w.events[0].env), r.w.env.Submission(t, r.l, w.events[5].env),
		r.w.env.Submission(t, r.l, w.conflict))
	out := r.mustSubmit(subs)
	n := batchC[1] - batchC[0]
	if !out[n].Duplicate || out[n].Index != 1 || !out[n+1].Duplicate || out[n+1].Index != 6 {
		t.Fatalf("duplicates: %+v %+v, want leaves 1 and 6", out[n], out[n+1])
	}
	var rej *events.RejectError
	if !errors.As(out[n+2].Err, &rej) || rej.Reason != events.ReasonIDConflict {
		t.Fatalf("conflict: %+v, want an id conflict", out[n+2])
	}

	// A tombstone: erase leaf 4 (events[3]).
	if _, err := r.l.Erase(ctx, 4, "test"); err != nil {
		t.Fatalf("Erase: %v", err)
	}

	// Restart.
	before := *r.l.Head()
	r.close()
	r.mustOpen(backend)
	if h := r.l.Head(); h.Size != before.Size || h.Root != before.Root {
		t.Fatalf("after reopen head is %d/%x, want %d/%x", h.Size, h.Root[:4], before.Size, before.Root[:4])
	}

	// Crashes between the pending commit and the checkpoint, and a
	// backend that disagrees. The default has no pending state: it
	// commits the same batches whole.
	for _, step := range []struct {
		rng [2]int
		f   fault
	}{{batchD, failBefore}, {batchE, failAfter}, {batchF, wrongRoot}} {
		if backend == nil {
			r.mustSubmit(r.subs(step.rng))
			continue
		}
		r.faultyBatch(backend, step.rng, step.f)
	}

	res := r.check()
	res.Bundle = r.bundle(w.events[0].d)

	if backend != nil {
		r.catchUp(b, res)
		r.ahead(backend)
	}
	r.close()
	return res
}

// faultyBatch submits rng through a backend failing as f says, checks
// that the ledger stopped without exposing the batch, and reopens it on
// the real backend, which must finish the pending batch.
func (r *run) faultyBatch(backend ledger.MerkleBackend, rng [2]int, f fault) {
	t := r.t
	ctx := context.Background()
	before := *r.l.Head()
	r.close()
	r.mustOpen(faulty{backend, f})
	_, err := r.submit(r.subs(rng))
	if err == nil {
		t.Fatalf("fault %d: the batch was acknowledged", f)
	}
	if f == wrongRoot && !errors.Is(err, ledger.ErrBackendMismatch) {
		t.Fatalf("a wrong root gave %v, want ErrBackendMismatch", err)
	}
	if f != wrongRoot && !errors.Is(err, errInjected) {
		t.Fatalf("fault %d gave %v", f, err)
	}
	<-r.l.Done()
	// Nothing of the pending batch is visible as logged.
	if h := r.l.Head(); h.Size != before.Size || h.Seq != before.Seq {
		t.Fatalf("fault %d: head moved to %d (seq %d) from %d (seq %d)", f, h.Size, h.Seq, before.Size, before.Seq)
	}
	id, discloser := r.w.events[rng[0]].d.ID, r.w.events[rng[0]].d.Discloser
	if _, err := r.l.LookupEvent(ctx, discloser, id); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("fault %d: a pending event is found: %v", f, err)
	}
	for _, read := range []func() error{
		func() error { _, err := r.l.Entry(ctx, before.Size); return err },
		func() error { _, err := r.l.LeafRecordBytes(ctx, before.Size); return err },
		func() error { _, err := r.l.InclusionProof(ctx, before.Size, before.Size+1); return err },
		func() error { _, err := r.l.Tile(ctx, 0, before.Size/256, int(before.Size%256)+1); return err },
		func() error { _, err := r.l.EntryBundle(ctx, before.Size/256, int(before.Size%256)+1); return err },
	} {
		if err := read(); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("fault %d: a read of pending leaf %d gave %v, want ErrNotFound", f, before.Size, err)
		}
	}
	pseudonym := r.w.events[rng[0]].d.Subject.Pseudonym
	idxs, err := r.l.BySubject(ctx, pseudonym)
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range idxs {
		if idx >= before.Size {
			t.Fatalf("fault %d: BySubject lists pending leaf %d", f, idx)
		}
	}
	r.close()

	// Recovery finishes the batch with the real backend.
	r.mustOpen(backend)
	want := before.Size + uint64(rng[1]-rng[0])
	if h := r.l.Head(); h.Size != want || h.Seq != before.Seq+1 {
		t.Fatalf("after recovery from fault %d head is %d (seq %d), want %d (seq %d)", f, h.Size, h.Seq, want, before.Seq+1)
	}
	if idx, err := r.l.LookupEvent(ctx, discloser, id); err != nil || idx != before.Size {
		t.Fatalf("after recovery the first event of the batch is at %d, %v; want %d", idx, err, before.Size)
	}
	// Submitting the batch again (ingest redelivers what it never acked)
	// gives duplicates at the recovered indices.
	out := r.mustSubmit(r.subs(rng))
	for i, o := range out {
		if !o.Duplicate || o.Index != before.Size+uint64(i) {
			t.Fatalf("redelivered event %d after recovery: %+v", i, o)
		}
	}
}

// check verifies every checkpoint, inclusion proof and consistency proof
// against x/mod's tlog and returns them.
func (r *run) check() *Result {
	t := r.t
	ctx := context.Background()
	head := r.l.Head()
	var hs memHashes
	leafHashes := make([]tlog.Hash, head.Size)
	for i := range head.Size {
		rec, err := r.l.LeafRecordBytes(ctx, i)
		if err != nil {
			t.Fatalf("leaf record %d: %v", i, err)
		}
		leafHashes[i] = tlog.RecordHash(rec)
		add, err := tlog.StoredHashes(int64(i), rec, hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, add...)
	}
	res := &Result{}
	err := r.l.Checkpoints(ctx, func(_ uint64, note []byte) error {
		cp, err := verifier.OpenCheckpoint(note, r.w.env.Keys)
		if err != nil {
			return err
		}
		if n := len(res.Sizes); n > 0 && res.Sizes[n-1] == cp.Size {
			return nil // a re-signing at the same size
		}
		res.Sizes = append(res.Sizes, cp.Size)
		res.Roots = append(res.Roots, cp.Hash)
		return nil
	})
	if err != nil {
		t.Fatalf("checkpoints: %v", err)
	}
	if len(res.Sizes) == 0 || res.Sizes[len(res.Sizes)-1] != head.Size {
		t.Fatalf("the checkpoints %v do not end at the head %d", res.Sizes, head.Size)
	}
	for i, size := range res.Sizes {
		th, err := tlog.TreeHash(int64(size), hs)
		if err != nil {
			t.Fatal(err)
		}
		if [32]byte(th) != res.Roots[i] {
			t.Fatalf("checkpoint at size %d has root %x, tlog computes %x", size, res.Roots[i][:8], th[:8])
		}
	}
	final := tlog.Hash(head.Root)
	for i := range head.Size {
		p, err := r.l.InclusionProof(ctx, i, head.Size)
		if err != nil {
			t.Fatalf("inclusion proof %d: %v", i, err)
		}
		if err := tlog.CheckRecord(toTlog(p), int64(head.Size), final, int64(i), leafHashes[i]); err != nil {
			t.Fatalf("inclusion proof of leaf %d in %d does not verify with tlog: %v", i, head.Size, err)
		}
		res.Inclusion = append(res.Inclusion, p)
	}
	for i := 0; i+1 < len(res.Sizes); i++ {
		o, n := res.Sizes[i], res.Sizes[i+1]
		p, err := r.l.ConsistencyProof(ctx, o, n)
		if err != nil {
			t.Fatalf("consistency proof %d -> %d: %v", o, n, err)
		}
		if err := tlog.CheckTree(toTlog(p), int64(n), tlog.Hash(res.Roots[i+1]), int64(o), tlog.Hash(res.Roots[i])); err != nil {
			t.Fatalf("consistency proof %d -> %d does not verify with tlog: %v", o, n, err)
		}
		res.Consistency = append(res.Consistency, p)
	}
	// The tiles served are the leaf hashes, up to the head and no further.
	for n := uint64(0); n*256 < head.Size; n++ {
		w := min(head.Size-n*256, 256)
		tile, err := r.l.Tile(ctx, 0, n, int(w))
		if err != nil {
			t.Fatalf("tile 0/%d width %d: %v", n, w, err)
		}
		for j := range w {
			if !bytes.Equal(tile[j*32:(j+1)*32], leafHashes[n*256+j][:]) {
				t.Fatalf("tile 0/%d hash %d is not leaf %d's hash", n, j, n*256+j)
			}
		}
	}
	return res
}

// catchUp opens the ledger on a fresh backend, which Open must fill from
// the stored leaf records before serving, with the same proofs after.
func (r *run) catchUp(b Backend, res *Result) {
	t := r.t
	ctx := context.Background()
	head := *r.l.Head()
	r.close()
	fresh := b.New(t)
	r.mustOpen(fresh)
	if size, err := fresh.Size(ctx); err != nil || size != head.Size {
		t.Fatalf("after Open the fresh backend holds %d leaves (%v), want %d", size, err, head.Size)
	}
	if h := r.l.Head(); h.Size != head.Size || h.Seq != head.Seq {
		t.Fatalf("catching up the backend changed the head: %d/%d, was %d/%d", h.Size, h.Seq, head.Size, head.Seq)
	}
	for _, i := range []uint64{0, 1, head.Size / 2, head.Size - 1} {
		p, err := r.l.InclusionProof(ctx, i, head.Size)
		if err != nil {
			t.Fatalf("inclusion proof %d from the fresh backend: %v", i, err)
		}
		if diffProofs("inclusion proof of leaf", [][][]byte{p}, [][][]byte{res.Inclusion[i]}) != nil {
			t.Fatalf("the fresh backend's proof of leaf %d differs", i)
		}
	}
	if mem, ok := fresh.(*MemoryBackend); ok {
		// Restored from an older backup: it lost its newest leaves.
		r.close()
		mem.Truncate(head.Size / 3)
		r.mustOpen(fresh)
		if size, _ := fresh.Size(ctx); size != head.Size {
			t.Fatalf("a truncated backend holds %d leaves after Open, want %d", size, head.Size)
		}
	}
}

// ahead opens a new, empty ledger on the backend that holds the whole
// log: Open must refuse it.
func (r *run) ahead(backend ledger.MerkleBackend) {
	other := &run{t: r.t, w: r.w, data: r.stores(r.t), stores: r.stores}
	err := other.open(backend)
	if err == nil {
		other.close()
		r.t.Fatal("a ledger behind its backend opened")
	}
	if !errors.Is(err, ledger.ErrBackendAhead) {
		r.t.Fatalf("a ledger behind its backend: %v, want ErrBackendAhead", err)
	}
}

// memHashes is an in-memory tlog.HashReader.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

func toTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		copy(out[i][:], p[i])
	}
	return out
}

// bundle builds the inzage bundle of d's child (through the backend's
// proofs when there is one) and checks it the way a parent's verifier
// does, with the pinned keys.
func (r *run) bundle(d *events.Disclosure) []byte {
	t := r.t
	e := r.w.env
	req := answer.BundleRequest{
		IDType:     events.IDTypeBSN,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: d.Subject.Pseudonym}},
		Request: verifier.InzageRequest{ID: "inzage-conformance", Relation: verifier.RelationParent,
			RequestedAt: clock.Add(-time.Hour), ReleasedAt: clock},
		LogVkey:      e.LogVkey,
		CosignerVkey: e.CosVkey,
	}
	data, _, err := answer.New(answer.Config{Ledger: r.l}).BuildBundle(context.Background(), req)
	if err != nil {
		t.Fatalf("BuildBundle: %v", err)
	}
	vb, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	found := false
	for _, x := range vb.Bundle.Entries {
		if x.Index == 1 { // events[0] is leaf 1, after the covenant
			found = true
		}
	}
	if !found {
		t.Fatalf("the bundle of the first event's child lacks leaf 1 (%d entries)", len(vb.Bundle.Entries))
	}
	return data
}
