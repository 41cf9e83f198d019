package ledger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func entryKey(idx uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, idx) }

type twoYears struct {
	e       *testledger.Env
	clock   *fakeClock
	l       *ledger.Ledger
	s       *pebblestore.Store
	keysDir string
	// marker[idx] is a unique string in each disclosure's justification.
	marker map[uint64]string
	cats   map[uint64][]string
	at     map[uint64]time.Time
}

// simulateTwoYears runs 24 months of traffic on a fake clock.
func simulateTwoYears(t *testing.T, encrypt bool) *twoYears {
	t.Helper()
	e := testledger.New(t)
	clock := &fakeClock{now: time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)}
	w := &twoYears{e: e, clock: clock, keysDir: filepath.Join(e.Dir, "datakeys"),
		marker: map[uint64]string{}, cats: map[uint64][]string{}, at: map[uint64]time.Time{}}
	cfg := ledger.Config{IdleCosign: -1, Now: clock.Now}
	if encrypt {
		dk, err := ledger.OpenDataKeys(w.keysDir)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataKeys = dk
	}
	s, err := pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{NoCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Signer, cfg.Keys, cfg.Covenant = s, e.Signer, e.Keys, e.Demo.Signed
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.l, w.s = l, s
	for week := 0; week < 104; week++ {
		e.Gen.Now = clock.Now()
		var subs []ledger.Submission
		for range 6 {
			d, _ := e.Gen.Next()
			env := e.Sign(t, d)
			subs = append(subs, e.Submission(t, l, env))
		}
		out := submit(t, l, subs)
		for i, o := range out {
			d := subs[i].Disclosure
			// The envelope's signature, in base64 as stored, is unique.
			env, err := events.ParseEnvelope(subs[i].Envelope)
			if err != nil {
				t.Fatal(err)
			}
			w.marker[o.Index] = base64.StdEncoding.EncodeToString(env.Sig)
			w.cats[o.Index] = d.Categories
			w.at[o.Index] = clock.Now().UTC().Truncate(time.Millisecond)
		}
		clock.Add(7 * 24 * time.Hour)
	}
	// Three months on, so that the first months of the 730-day
	// categories are due as well.
	clock.Add(90 * 24 * time.Hour)
	return w
}

func (w *twoYears) expired(idx uint64) bool {
	days := w.e.Demo.Signed.Covenant.RetentionDaysFor(w.cats[idx])
	return !w.clock.Now().Before(w.at[idx].Add(time.Duration(days) * 24 * time.Hour))
}

func TestRetentionTwoYears(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated years of traffic")
	}
	w := simulateTwoYears(t, true)
	ctx := context.Background()
	l := w.l
	defer func() { l.Close(); w.s.Close() }()

	before := l.Head()
	// A backup taken before retention: it must become unreadable too.
	backup := filepath.Join(t.TempDir(), "backup")
	if err := w.s.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	keysBefore, _ := filepath.Glob(filepath.Join(w.keysDir, "*.key"))

	dry, err := l.RunRetention(ctx, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wantExpired int
	for idx := range w.marker {
		if w.expired(idx) {
			wantExpired++
		}
	}
	if dry.Expired != wantExpired || dry.Tombstoned != 0 || wantExpired == 0 {
		t.Fatalf("dry run: %d expired, %d tombstoned; want %d expired, none tombstoned", dry.Expired, dry.Tombstoned, wantExpired)
	}
	rep, err := l.RunRetention(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("retention: checked %d, tombstoned %d, keys destroyed %d of %d, by rule %v",
		rep.Checked, rep.Tombstoned, len(rep.KeysDestroyed), len(keysBefore), rep.ByRule)
	if rep.Tombstoned != wantExpired {
		t.Fatalf("tombstoned %d, want %d", rep.Tombstoned, wantExpired)
	}
	if len(rep.KeysDestroyed) == 0 {
		t.Fatal("no data key destroyed although whole months expired")
	}
	after := l.Head()
	if after.Size != before.Size+uint64(wantExpired) {
		t.Fatalf("tree went from %d to %d; want +%d tombstones", before.Size, after.Size, wantExpired)
	}

	bs, err := pebblestore.Open(backup, pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	dk, _ := ledger.OpenDataKeys(w.keysDir)
	unreadable := 0
	for idx := range w.marker {
		if !w.expired(idx) {
			env, err := l.Entry(ctx, idx)
			if err != nil || !bytes.Contains(env, []byte("payload")) {
				t.Fatalf("kept envelope %d unreadable: %v", idx, err)
			}
			continue
		}
		// Gone from every read path of the store.
		if _, err := l.Entry(ctx, idx); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("erased envelope %d still readable: %v", idx, err)
		}
		if _, err := w.s.Get(ctx, entryKey(idx)); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("erased envelope %d still in the store", idx)
		}
		tomb, err := l.ErasedBy(ctx, idx)
		if err != nil {
			t.Fatalf("erased %d has no tombstone: %v", idx, err)
		}
		rec, _ := l.LeafRecord(ctx, tomb)
		if rec.Type != verifier.EntryTombstone || rec.ErasedIndex != idx || !strings.HasPrefix(rec.RuleID, "retention:") {
			t.Fatalf("tombstone %d = %+v", tomb, rec)
		}
		// The copy in the backup cannot be decrypted once its month's key is gone.
		sealed, err := bs.Get(ctx, entryKey(idx))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.OpenSealedForTest(dk, idx, sealed); errors.Is(err, ledger.ErrKeyDestroyed) {
			unreadable++
		}
	}
	t.Logf("%d of %d erased envelopes are unreadable in the backup (their month's key is destroyed)", unreadable, wantExpired)
	if unreadable == 0 {
		t.Fatal("no erased envelope became unreadable in the backup")
	}

	// Every remaining entry still verifies, against the old and the new checkpoint.
	checkAllProofs(t, l, before)
	checkAllProofs(t, l, after)
	oldRoot := before.Root
	p, err := l.ConsistencyProof(ctx, before.Size, after.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifyConsistency(before.Size, after.Size, oldRoot, after.Root, p); err != nil {
		t.Fatalf("the tree did not only grow: %v", err)
	}

	// A second run finds nothing: no tombstone twice.
	again, err := l.RunRetention(ctx, false, nil)
	if err != nil || again.Tombstoned != 0 {
		t.Fatalf("second run tombstoned %d (%v)", again.Tombstoned, err)
	}
}

func checkAllProofs(t *testing.T, l *ledger.Ledger, h *ledger.Head) {
	t.Helper()
	ctx := context.Background()
	for idx := uint64(0); idx < h.Size; idx++ {
		rec, err := l.LeafRecordBytes(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.InclusionProof(ctx, idx, h.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifier.VerifyInclusion(idx, h.Size, verifier.LeafHash(rec), p, h.Root); err != nil {
			t.Fatalf("leaf %d against size %d: %v", idx, h.Size, err)
		}
	}
}

// TestRetentionDeletesPlaintext proves the deletion path on its own, with
// encryption off: after retention and compaction no table file holds an
// erased envelope's text, while kept ones are still found.
func TestRetentionDeletesPlaintext(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated years of traffic")
	}
	w := simulateTwoYears(t, false)
	defer func() { w.l.Close(); w.s.Close() }()
	if _, err := w.l.RunRetention(context.Background(), false, nil); err != nil {
		t.Fatal(err)
	}
	var tables [][]byte
	files, _ := filepath.Glob(filepath.Join(w.e.Dir, "ledger", "*.sst"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, b)
	}
	if len(tables) == 0 {
		t.Fatal("no table files after compaction")
	}
	found := func(m string) bool {
		for _, b := range tables {
			if bytes.Contains(b, []byte(m)) {
				return true
			}
		}
		return false
	}
	kept, gone := 0, 0
	for idx, m := range w.marker {
		switch {
		case w.expired(idx) && found(m):
			t.Fatalf("erased envelope %d (%s) is still in a table file", idx, m)
		case w.expired(idx):
			gone++
		case found(m):
			kept++
		}
	}
	if kept == 0 || gone == 0 {
		t.Fatalf("kept markers found %d, erased %d: the grep proves nothing", kept, gone)
	}
	t.Logf("%d erased envelopes absent from %d table files; %d kept ones present", gone, len(tables), kept)
}

// failingStore fails every Commit after the first n, as a crash would stop
// the process: fail-stop.
type failingStore struct {
	ledger.Store
	left atomic.Int64
}

func (f *failingStore) Commit(ctx context.Context, b *ledger.Batch) error {
	if f.left.Add(-1) < 0 {
		return errors.New("injected crash before commit")
	}
	return f.Store.Commit(ctx, b)
}

func TestRetentionCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated years of traffic")
	}
	w := simulateTwoYears(t, true)
	ctx := context.Background()
	w.l.Close()
	dk, _ := ledger.OpenDataKeys(w.keysDir)
	// Let two commits through, then fail every commit (fail-stop).
	fs := &failingStore{Store: w.s}
	fs.left.Store(2)
	l, err := ledger.Open(ctx, ledger.Config{Store: fs, Signer: w.e.Signer, Keys: w.e.Keys, Covenant: w.e.Demo.Signed,
		IdleCosign: -1, Now: w.clock.Now, DataKeys: dk, RetentionBatch: 5})
	if err != nil {
		t.Fatal(err)
	}
	// Two chunks of five tombstones commit, then the "crash".
	rep, err := l.RunRetention(ctx, false, nil)
	if err == nil {
		t.Fatal("retention ran through an injected crash")
	}
	if rep == nil || rep.Tombstoned != 10 {
		t.Fatalf("before the crash %v tombstones committed, want 10", rep)
	}
	l.Close()
	// Restart on the same store and run again.
	l, err = ledger.Open(ctx, ledger.Config{Store: w.s, Signer: w.e.Signer, Keys: w.e.Keys, Covenant: w.e.Demo.Signed,
		IdleCosign: -1, Now: w.clock.Now, DataKeys: dk, RetentionBatch: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close(); w.s.Close() }()
	if _, err := l.RunRetention(ctx, false, nil); err != nil {
		t.Fatal(err)
	}
	tombs := map[uint64]int{}
	h := l.Head()
	for idx := uint64(0); idx < h.Size; idx++ {
		rec, err := l.LeafRecord(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == verifier.EntryTombstone {
			tombs[rec.ErasedIndex]++
		}
	}
	for idx := range w.marker {
		switch {
		case w.expired(idx) && tombs[idx] != 1:
			t.Fatalf("expired leaf %d has %d tombstones", idx, tombs[idx])
		case !w.expired(idx) && tombs[idx] != 0:
			t.Fatalf("kept leaf %d has a tombstone", idx)
		case w.expired(idx):
			if _, err := l.Entry(ctx, idx); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("expired leaf %d left undeleted", idx)
			}
		}
	}
	t.Logf("after a crash mid-run and a restart: %d tombstones, each erased leaf exactly once", len(tombs))
}

func TestEraseOnRequest(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()
	env, d := e.Event(t)
	out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	idx := out[0].Index
	tomb, err := l.Erase(ctx, idx, "avg-17-1-d")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := l.LeafRecord(ctx, tomb)
	if rec.Type != verifier.EntryTombstone || rec.ErasedIndex != idx || rec.RuleID != "erasure:avg-17-1-d" {
		t.Fatalf("tombstone = %+v", rec)
	}
	if _, err := l.Entry(ctx, idx); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("erased envelope readable: %v", err)
	}
	if got, _ := l.BySubject(ctx, d.Subject.Pseudonym); len(got) != 0 {
		t.Fatalf("subject index still lists %v", got)
	}
	notices, err := l.ErasureNotices(ctx, d.Subject.Pseudonym)
	if err != nil || len(notices) != 1 || notices[0].ErasedIndex != idx || notices[0].TombstoneIndex != tomb {
		t.Fatalf("erasure notices = %+v, %v", notices, err)
	}
	if _, err := l.Erase(ctx, idx, "avg-17-1-d"); !errors.Is(err, ledger.ErrAlreadyErased) {
		t.Fatalf("second erasure: %v, want ErrAlreadyErased", err)
	}
	// A re-publish of the erased event is still recognised as logged.
	again := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	if !again[0].Duplicate || again[0].Index != idx {
		t.Fatalf("re-published erased event: %+v", again[0])
	}
	if _, err := l.Erase(ctx, 0, "avg-17-1-d"); err == nil {
		t.Fatal("the covenant entry was erased")
	}
}

func TestBundleShowsErasure(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()
	env, d := e.Event(t)
	env2, _ := e.Event(t)
	out := submit(t, l, []ledger.Submission{e.Submission(t, l, env), e.Submission(t, l, env2)})
	if _, err := l.Erase(ctx, out[0].Index, "avg-17-1-a"); err != nil {
		t.Fatal(err)
	}
	_, vb, err := answer.New(answer.Config{Ledger: l}).BuildBundle(ctx, answer.BundleRequest{IDType: events.IDTypeBSN,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}},
		Request: verifier.InzageRequest{ID: "01a20a16-b2f9-7ea5-bdf8-412a07c9250a", Relation: verifier.RelationParent,
			RequestedAt: time.Now().UTC().Truncate(time.Second), ReleasedAt: time.Now().UTC().Truncate(time.Second)},
		LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	if err != nil {
		t.Fatal(err)
	}
	if len(vb.Erased) != 1 || vb.Erased[0].ErasedIndex != out[0].Index {
		t.Fatalf("bundle erased = %+v, want the erased leaf %d", vb.Erased, out[0].Index)
	}
	for _, vd := range vb.Disclosures {
		if vd.Index == out[0].Index {
			t.Fatal("the erased disclosure is still in the bundle")
		}
	}
}

func TestAuditChecksRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated years of traffic")
	}
	w := simulateTwoYears(t, true)
	ctx := context.Background()
	defer func() { w.l.Close(); w.s.Close() }()
	audit := func() *audit.Report {
		rep, err := audit.Run(ctx, w.l.AuditSource(), audit.Config{Keys: w.e.Keys,
			AdminVkey: w.e.Demo.AdminVkey, Now: w.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// Before retention ran, the overdue envelopes are reported.
	overdue := 0
	for _, p := range audit().Problems {
		if p.Check == "retention-overdue" {
			overdue++
		}
	}
	if overdue == 0 {
		t.Fatal("the audit did not see envelopes past their retention")
	}
	if _, err := w.l.RunRetention(ctx, false, nil); err != nil {
		t.Fatal(err)
	}
	if rep := audit(); !rep.OK {
		t.Fatalf("audit after retention: %v", rep.Problems)
	}
	// An early erasure under a retention rule is caught.
	env, _ := w.e.Event(t)
	out := submit(t, w.l, []ledger.Submission{w.e.Submission(t, w.l, env)})
	submit(t, w.l, []ledger.Submission{{Tombstone: &ledger.TombstoneRequest{ErasedIndex: out[0].Index, RuleID: "retention:default"}}})
	early := false
	for _, p := range audit().Problems {
		early = early || p.Check == "tombstone-early"
	}
	if !early {
		t.Fatal("a tombstone before the retention period ended was not reported")
	}
	t.Logf("audit saw %d overdue envelopes before retention, none after, and an early tombstone", overdue)
}
