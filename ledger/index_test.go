package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// testClock is a settable clock for the ledger.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// indexVRF opens the test log's VRF key, in the data folder as spoor
// serve keeps it.
func indexVRF(t testing.TB, e *testledger.Env) *subjectindex.VRFKey {
	t.Helper()
	k, err := subjectindex.OpenVRFKey(datadir.Dir(e.Dir).IndexVRFKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// lastIndexHead checks that the log's last leaf is an index head stating
// its own leaf index and the ledger's VRF key, and returns its body.
func lastIndexHead(t *testing.T, l *ledger.Ledger) *verifier.IndexHeadBody {
	t.Helper()
	ctx := context.Background()
	last := l.Head().Size - 1
	rec, err := l.LeafRecord(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Type != verifier.EntryIndexHead {
		t.Fatalf("the last leaf %d is a %s, want an index head", last, rec.Type)
	}
	body, err := l.Entry(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	h, err := verifier.ParseIndexHeadBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if h.TreeSize != last || h.Origin != l.Origin() || h.VRFKey != fmt.Sprintf("%x", l.IndexVRFKey().Bytes()) {
		t.Fatalf("index head %d states %+v", last, h)
	}
	return h
}

// recompute recomputes the index from the log and checks it against the
// last head.
func recompute(t *testing.T, l *ledger.Ledger) *ledger.IndexRecomputation {
	t.Helper()
	r, err := l.RecomputeIndex(context.Background())
	if err != nil {
		t.Fatalf("the index differs from a recomputation: %v", err)
	}
	return r
}

// TestSubjectIndexHeads: with the index on, every batch of disclosures
// ends with an index head whose root equals a recomputation from the
// envelopes; an erasure marks the entry erased (with its tombstone) and the
// first batch after the covenant's notice period drops it; Open checks the
// stored index and refuses one that was altered.
func TestSubjectIndexHeads(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	clock := &testClock{t: time.Now().UTC()}
	cfg := ledger.Config{IdleCosign: -1, IndexVRF: indexVRF(t, e), Now: clock.Now}
	l, s := e.Open(t, cfg)
	var first uint64
	total := 0
	for batch := range 4 {
		outs, err := e.SubmitEvents(t, l, 10)
		if err != nil {
			t.Fatal(err)
		}
		total += 10
		if batch == 0 {
			first = outs[0].Index
		}
		h := lastIndexHead(t, l)
		if h.TreeSize != outs[9].Index+1 {
			t.Fatalf("batch %d: the head is leaf %d, want right after the batch's last disclosure %d", batch, h.TreeSize, outs[9].Index)
		}
		r := recompute(t, l)
		if r.HeadLeaf != h.TreeSize || r.Root != h.RootHash() || r.Items != total {
			t.Fatalf("batch %d: recomputation %+v, head %+v, %d disclosures", batch, r, h, total)
		}
	}
	size := l.Head().Size
	// A batch without disclosures (a re-sent duplicate) writes no head.
	env, _ := e.Event(t)
	if _, err := e.SubmitEnvelopes(t, l, [][]byte{env, env}); err != nil {
		t.Fatal(err)
	}
	total++
	before := l.Head().Size
	if _, err := e.SubmitEnvelopes(t, l, [][]byte{env}); err != nil || l.Head().Size != before {
		t.Fatalf("a duplicate grew the log from %d to %d (%v)", before, l.Head().Size, err)
	}
	_ = size

	tomb, err := l.Erase(ctx, first, "request")
	if err != nil {
		t.Fatal(err)
	}
	h := lastIndexHead(t, l)
	if h.TreeSize != tomb+1 {
		t.Fatalf("the erasure's head is leaf %d, want %d", h.TreeSize, tomb+1)
	}
	if r := recompute(t, l); r.Erased != 1 || r.Items != total {
		t.Fatalf("after the erasure: %+v, want 1 erased of %d", r, total)
	}
	// Within the notice period the entry stays; after it, the next
	// batch drops it.
	sc, _ := l.Covenant()
	clock.add(time.Duration(sc.Covenant.Retention.ErasureNoticeDays-1) * 24 * time.Hour)
	if _, err := e.SubmitEvents(t, l, 1); err != nil {
		t.Fatal(err)
	}
	total++
	if r := recompute(t, l); r.Erased != 1 {
		t.Fatalf("dropped before the notice period ended: %+v", r)
	}
	clock.add(2 * 24 * time.Hour)
	if _, err := e.SubmitEvents(t, l, 1); err != nil {
		t.Fatal(err)
	}
	total++
	if r := recompute(t, l); r.Erased != 0 || r.Items != total-1 {
		t.Fatalf("after the notice period: %+v, want no erased item and %d items", r, total-1)
	}
	lastIndexHead(t, l)
	l.Close()
	s.Close()

	// Open checks the stored index against the last head.
	l, s = e.Open(t, cfg)
	recompute(t, l)
	l.Close()
	s.Close()

	// One altered node record: Open refuses the store.
	raw, err := pebblestore.Open(datadir.Dir(e.Dir).Ledger(), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var key, val []byte
	if err := raw.Scan(ctx, []byte("gn"), []byte("go"), func(k, v []byte) error {
		if key == nil && len(v) > 1 {
			key, val = append([]byte(nil), k...), append([]byte(nil), v...)
		}
		return nil
	}); err != nil || key == nil {
		t.Fatalf("no index node in the store (%v)", err)
	}
	val[len(val)-1] ^= 1
	if err := raw.Commit(ctx, &ledger.Batch{Ops: []ledger.Op{{Key: key, Value: val}}}); err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Signer, cfg.Keys, cfg.Covenant = raw, e.Signer, e.Keys, e.Demo.Signed
	if l, err := ledger.Open(ctx, cfg); !errors.Is(err, ledger.ErrCorrupt) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Open on an altered index: %v, want ErrCorrupt", err)
	}
	raw.Close()
}

// TestSubjectIndexBuild: Open with the index on over a log made without it
// builds the index once and logs the first head; entries logged later
// while the index was off again are caught up at the next Open.
func TestSubjectIndexBuild(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	outs, err := e.SubmitEvents(t, l, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Erase(ctx, outs[3].Index, "request"); err != nil {
		t.Fatal(err)
	}
	size := l.Head().Size
	l.Close()
	s.Close()

	cfg := ledger.Config{IdleCosign: -1, IndexVRF: indexVRF(t, e)}
	l, s = e.Open(t, cfg)
	h := lastIndexHead(t, l)
	if h.TreeSize != size {
		t.Fatalf("the first head is leaf %d, want %d (right after the log as it was)", h.TreeSize, size)
	}
	if r := recompute(t, l); r.Items != 29 || r.Erased != 0 {
		t.Fatalf("built index: %+v, want the 29 stored disclosures (the one erased before the index is not in it)", r)
	}
	l.Close()
	s.Close()

	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	if _, err := e.SubmitEvents(t, l, 5); err != nil {
		t.Fatal(err)
	}
	l.Close()
	s.Close()
	l, s = e.Open(t, cfg)
	defer s.Close()
	defer l.Close()
	lastIndexHead(t, l)
	if r := recompute(t, l); r.Items != 34 {
		t.Fatalf("caught-up index: %+v, want 34 items", r)
	}
}

// indexCrashDir and indexCrashMode, in the environment of this test
// binary, make TestSubjectIndexCrash the child that works on the log in
// that folder until its crash point kills it.
const (
	indexCrashDir  = "SPOOR_TEST_INDEX_CRASH_DIR"
	indexCrashMode = "SPOOR_TEST_INDEX_CRASH_MODE"
)

// TestSubjectIndexCrash kills a real process (SIGKILL) at each crash point
// inside a batch's commit with the index on: after the index update is
// computed (index-applied), after the checkpoint is signed and before the
// commit (during-signing), after the Store commit's fsync and before
// anyone is told (after-store-commit), and between two chunks of the build
// over an existing log (index-build-chunk). After each, Open must recover a
// store whose last index head equals a recomputation from the log, and go
// on logging with heads.
func TestSubjectIndexCrash(t *testing.T) {
	if dir := os.Getenv(indexCrashDir); dir != "" {
		indexCrashChild(t, dir, os.Getenv(indexCrashMode))
		return
	}
	if testing.Short() {
		t.Skip("builds and runs a crash child; skipped with -short")
	}
	child := crashChild(t)
	for _, c := range []struct {
		point, mode string
		hit         int
	}{
		{crashpoint.IndexApplied, "batches", 3},
		{crashpoint.DuringSigning, "batches", 3},
		{crashpoint.AfterStoreCommit, "batches", 3},
		{crashpoint.IndexBuildChunk, "build", 1},
	} {
		t.Run(c.point, func(t *testing.T) {
			e := testledger.New(t)
			l, s := e.Open(t, ledger.Config{IdleCosign: -1})
			n := 20
			if c.mode == "build" {
				// More than one chunk of the build (4096 leaves).
				n = 5000
			}
			for range n / 1000 {
				if _, err := e.SubmitEvents(t, l, 1000); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.SubmitEvents(t, l, n%1000); err != nil {
				t.Fatal(err)
			}
			l.Close()
			s.Close()

			cmd := exec.Command(child, "-test.run", "^TestSubjectIndexCrash$", "-test.v")
			cmd.Env = append(os.Environ(), indexCrashDir+"="+e.Dir, indexCrashMode+"="+c.mode,
				fmt.Sprintf("%s=%s:%d", "SPOOR_CRASHPOINT", c.point, c.hit))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %s (%v):\n%s", c.point, err, out)
			}

			cfg := ledger.Config{IdleCosign: -1, IndexVRF: indexVRF(t, e)}
			l, s = e.Open(t, cfg)
			defer s.Close()
			defer l.Close()
			h := lastIndexHead(t, l)
			r := recompute(t, l)
			if r.HeadLeaf != h.TreeSize || r.Root != h.RootHash() {
				t.Fatalf("after the crash: head %+v, recomputation %+v", h, r)
			}
			// Events the child never made: its were logged or lost.
			for range 200 {
				e.Gen.Next()
			}
			if _, err := e.SubmitEvents(t, l, 5); err != nil {
				t.Fatal(err)
			}
			h2 := lastIndexHead(t, l)
			if h2.TreeSize != h.TreeSize+6 {
				t.Fatalf("five new disclosures after the crash: head %d, want %d", h2.TreeSize, h.TreeSize+6)
			}
			if r := recompute(t, l); r.HeadLeaf != h2.TreeSize {
				t.Fatalf("after logging on: %+v", r)
			}
			t.Logf("%s: recovered at index head %d (%d lists, %d items), then logged on to head %d", c.point, h.TreeSize, r.Lists, r.Items, h2.TreeSize)
		})
	}
}

// indexCrashChild opens the log in dir with the index on and works until
// its crash point kills it: batches of disclosures with an erasure, or
// (mode build) the build at Open.
func indexCrashChild(t *testing.T, dir, mode string) {
	e := testledger.Load(t, dir)
	// Fresh events: skip those the parent logged.
	skip := 20
	if mode == "build" {
		skip = 5000
	}
	for range skip {
		e.Gen.Next()
	}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: indexVRF(t, e)})
	defer s.Close()
	defer l.Close()
	for i := range 10 {
		if _, err := e.SubmitEvents(t, l, 7); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := l.Erase(context.Background(), 5, "request"); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatalf("mode %s: ten batches were committed without reaching the crash point", mode)
}

// TestSubjectIndexAudit: the FG's audit recomputes the last index head
// from the envelopes and the stored lists (audit.IndexSource) and finds
// it right; after one list in a copy of the store is altered (an entry
// left out, the list still well formed), the audit of that store raises
// index-recompute, where Open would refuse the store too.
func TestSubjectIndexAudit(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	vrf := indexVRF(t, e)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: vrf})
	for range 3 {
		if _, err := e.SubmitEvents(t, l, 40); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Erase(ctx, 3, "request"); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Run(ctx, l.AuditSource(), audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Index.Recomputed || rep.Index.Heads < 4 || rep.Index.Items != 120 || rep.Index.LastHead != l.Head().Size-1 {
		t.Fatalf("audit of an honest index: ok %v, %+v, problems %v", rep.OK, rep.Index, rep.Problems)
	}
	l.Close()
	s.Close()

	raw, err := pebblestore.Open(datadir.Dir(e.Dir).Ledger(), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var key, val []byte
	if err := raw.Scan(ctx, []byte("gl"), []byte("gm"), func(k, v []byte) error {
		if l, err := vsi.ParseList(v); err == nil && len(l.Items) > 1 && key == nil {
			l.Items = l.Items[1:]
			key = bytes.Clone(k)
			val, _ = l.MarshalBinary()
		}
		return nil
	}); err != nil || key == nil {
		t.Fatalf("no list of two items in the store (%v)", err)
	}
	if err := raw.Commit(ctx, &ledger.Batch{Ops: []ledger.Op{{Key: key, Value: val}}}); err != nil {
		t.Fatal(err)
	}
	src := ledger.NewStoreAuditSource(raw, nil).WithIndex(vrf)
	rep, err = audit.Run(ctx, src, audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.ProblemCounts[audit.CheckIndexRecompute] < 2 {
		t.Fatalf("audit of an altered list: ok %v, problems %v; want index-recompute (the list, the root)", rep.OK, rep.Problems)
	}
	for _, p := range rep.Problems {
		t.Logf("%s: %s", p.Check, p.Message)
	}
}

// TestSubjectIndexStandby: a standby applies the active's batches, index
// writes and heads included; promoted with the active's VRF key it checks
// the replicated index against the last head and logs on with heads of
// its own; a standby with another VRF key refuses to be promoted (its map
// keys would name other lists).
func TestSubjectIndexStandby(t *testing.T) {
	e := testledger.New(t)
	vrf := indexVRF(t, e)
	rep := &memReplicator{}
	l, s := e.Open(t, ledger.Config{Replicator: rep, IdleCosign: -1, IndexVRF: vrf})
	for range 3 {
		if _, err := e.SubmitEvents(t, l, 10); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	l.Close()
	s.Close()

	standby := func(key *subjectindex.VRFKey) *ledger.Ledger {
		st, err := pebblestore.Open(filepath.Join(t.TempDir(), "standby"), pebblestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		sl, err := ledger.OpenStandby(t.Context(), ledger.Config{Store: st, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1, IndexVRF: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sl.Close(); st.Close() })
		for i, p := range rep.parts {
			if _, err := sl.Apply(t.Context(), uint64(i+1), p); err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
		}
		if sl.Head().Size != head.Size {
			t.Fatalf("standby at %d, active at %d", sl.Head().Size, head.Size)
		}
		return sl
	}
	// A batch whose shipped index writes do not give the root its head
	// states is refused before anything of it is stored.
	{
		st, err := pebblestore.Open(filepath.Join(t.TempDir(), "tampered"), pebblestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		sl, err := ledger.OpenStandby(t.Context(), ledger.Config{Store: st, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1, IndexVRF: vrf})
		if err != nil {
			t.Fatal(err)
		}
		last := len(rep.parts) - 1
		for i, p := range rep.parts[:last] {
			if _, err := sl.Apply(t.Context(), uint64(i+1), p); err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
		}
		p := bytes.Clone(rep.parts[last])
		// The root node's record: key 'g' 'n' and depth 0 (4 bytes, after
		// its length), then the value's length and the value.
		i := bytes.Index(p, []byte{0x04, 'g', 'n', 0, 0})
		if i < 0 {
			t.Fatal("no root node write in the last batch")
		}
		p[i+5+1+10] ^= 1
		_, err = sl.Apply(t.Context(), uint64(last+1), p)
		if !errors.Is(err, ledger.ErrReplicaMismatch) || !strings.Contains(err.Error(), "index head") {
			t.Fatalf("a batch with an altered index node: %v, want ErrReplicaMismatch naming the index head", err)
		}
		sl.Close()
		st.Close()
	}
	if err := standby(subjectindex.GenerateVRFKey()).Promote(t.Context()); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("promoting a standby with another VRF key: %v, want ErrCorrupt", err)
	}
	sl := standby(vrf)
	if err := sl.Promote(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		e.Gen.Next()
	}
	if _, err := e.SubmitEvents(t, sl, 5); err != nil {
		t.Fatal(err)
	}
	h := lastIndexHead(t, sl)
	if r := recompute(t, sl); r.HeadLeaf != h.TreeSize || r.Items != 35 {
		t.Fatalf("after promotion: %+v", r)
	}
}

// TestSubjectIndexForkCaught: two copies of one log (the same keys, the
// same events at the same times) whose index heads differ (here: another
// VRF key, as an operator showing one verifier another index would have)
// have different roots at the same size, so a verifier holding a
// checkpoint of each finds them inconsistent, as for any other entry. The
// same copies without the index agree: the difference is the head alone.
func TestSubjectIndexForkCaught(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	e := testledger.New(t)
	twin := e.Twin(t)
	envs := make([][]byte, 12)
	for i := range envs {
		envs[i], _ = e.Event(t)
	}
	run := func(env *testledger.Env, vrf *subjectindex.VRFKey) *ledger.Head {
		l, s := env.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: vrf, Now: now})
		defer s.Close()
		defer l.Close()
		if _, err := env.SubmitEnvelopes(t, l, envs[:6]); err != nil {
			t.Fatal(err)
		}
		if _, err := env.SubmitEnvelopes(t, l, envs[6:]); err != nil {
			t.Fatal(err)
		}
		return l.Head()
	}
	a, b := run(e, nil), run(twin, nil)
	if a.Size != b.Size || a.Root != b.Root {
		t.Fatalf("the copies without the index differ: %d %x, %d %x", a.Size, a.Root[:8], b.Size, b.Root[:8])
	}
	c := run(e.Twin(t), subjectindex.GenerateVRFKey())
	d := run(e.Twin(t), subjectindex.GenerateVRFKey())
	if c.Size != d.Size {
		t.Fatalf("the copies with the index have sizes %d and %d", c.Size, d.Size)
	}
	if c.Root == d.Root {
		t.Fatal("two different index heads at the same size give one root")
	}
	if err := verifier.VerifyConsistency(c.Size, d.Size, c.Root, d.Root, nil); err == nil {
		t.Fatal("a verifier shown both checkpoints finds them consistent")
	}
}

// TestSubjectIndexAuditOverHTTP: the FG's audit over the HTTP API (as the
// dashboard runs it) recomputes the last index head through GET
// /v1/index/lists (paged) and POST /v1/index/map-keys, with the FG's
// token; a ledger without the index answers 404 there and the audit says
// it did not recompute.
func TestSubjectIndexAuditOverHTTP(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	sl := e.ServeWith(t, ledger.Config{IdleCosign: -1, IndexVRF: indexVRF(t, e)})
	for range 3 {
		if _, err := e.SubmitEvents(t, sl.L, 40); err != nil {
			t.Fatal(err)
		}
	}
	src := &audit.HTTPSource{URL: sl.Srv.URL, Token: testledger.FGToken}
	rep, err := audit.Run(ctx, src, audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Index.Recomputed || rep.Index.Items != 120 {
		t.Fatalf("audit over HTTP: ok %v, %+v, problems %v", rep.OK, rep.Index, rep.Problems)
	}
	// The lists page by page give the same.
	var n int
	if err := src.IndexLists(ctx, func(vsi.MapKey, []byte) error { n++; return nil }); err != nil || n != rep.Index.Lists {
		t.Fatalf("IndexLists: %d lists (%v), the audit saw %d", n, err, rep.Index.Lists)
	}
	// Pages of 7 give every list once, in order.
	var after *vsi.MapKey
	paged, last := 0, ""
	for {
		page, next, err := sl.L.IndexListPage(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page {
			if l.MapKey <= last {
				t.Fatalf("list %s after %s", l.MapKey, last)
			}
			last = l.MapKey
			paged++
		}
		if next == nil {
			break
		}
		after = next
	}
	if paged != n {
		t.Fatalf("pages of 7 gave %d lists, one page %d", paged, n)
	}
	// Without the token: refused.
	if err := (&audit.HTTPSource{URL: sl.Srv.URL}).IndexLists(ctx, func(vsi.MapKey, []byte) error { return nil }); !errors.Is(err, audit.ErrUnauthorized) {
		t.Fatalf("the lists without the FG's token: %v", err)
	}
}
