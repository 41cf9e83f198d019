package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

func submit(t *testing.T, l *ledger.Ledger, subs []ledger.Submission) []ledger.Outcome {
	t.Helper()
	ctx := context.Background()
	p, err := l.Submit(ctx, subs)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	out, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return out
}

// memHashes is an in-memory tlog.HashReader for the independent
// implementation in golang.org/x/mod/sumdb/tlog.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

// tlogFromStore rebuilds the tree with x/mod's tlog from the stored leaf
// records, checking each disclosure's envelope against its record.
func tlogFromStore(t *testing.T, l *ledger.Ledger, size uint64) memHashes {
	t.Helper()
	ctx := context.Background()
	var hs memHashes
	for i := uint64(0); i < size; i++ {
		rec, err := l.LeafRecordBytes(ctx, i)
		if err != nil {
			t.Fatalf("leaf record %d: %v", i, err)
		}
		r, err := verifier.ParseLeafRecord(rec)
		if err != nil {
			t.Fatalf("leaf record %d: %v", i, err)
		}
		body, err := l.Entry(ctx, i)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if sha256.Sum256(body) != r.BodyHash {
			t.Fatalf("entry %d does not match its leaf record", i)
		}
		added, err := tlog.StoredHashes(int64(i), rec, hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, added...)
	}
	return hs
}

func TestSequenceProofsAndReopen(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	ctx := context.Background()

	if h := l.Head(); h.Size != 1 {
		t.Fatalf("new log has size %d, want 1 (the covenant)", h.Size)
	}
	rec, err := l.LeafRecord(ctx, 0)
	if err != nil || rec.Type != verifier.EntryCovenant || rec.CovenantIndex != 0 {
		t.Fatalf("leaf 0 = %+v, %v; want the covenant entry naming itself", rec, err)
	}

	// Concurrent submitters, as ingest batches would arrive.
	const workers, perWorker, batch = 4, 150, 25
	var mu sync.Mutex
	indexOf := map[string]uint64{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i += batch {
				subs := make([]ledger.Submission, batch)
				for j := range subs {
					env, _ := e.Event(t)
					subs[j] = e.Submission(t, l, env)
				}
				out := submit(t, l, subs)
				mu.Lock()
				for j, o := range out {
					if o.Err != nil || o.Duplicate {
						t.Errorf("outcome %+v for a new event", o)
					}
					indexOf[subs[j].Disclosure.ID] = o.Index
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	want := uint64(1 + workers*perWorker)
	head := l.Head()
	if head.Size != want || len(indexOf) != workers*perWorker {
		t.Fatalf("size %d with %d events; want %d", head.Size, len(indexOf), want)
	}
	seen := map[uint64]bool{}
	for _, idx := range indexOf {
		if idx == 0 || idx >= want || seen[idx] {
			t.Fatalf("index %d is out of range or handed out twice", idx)
		}
		seen[idx] = true
	}

	// The root from x/mod's tlog over the stored records is the checkpoint's.
	hs := tlogFromStore(t, l, head.Size)
	root, err := tlog.TreeHash(int64(head.Size), hs)
	if err != nil {
		t.Fatal(err)
	}
	if root != tlog.Hash(head.Root) {
		t.Fatalf("tlog root %x != checkpoint root %x", root[:8], head.Root[:8])
	}
	cp, err := verifier.OpenCheckpoint(head.Note, e.Keys)
	if err != nil || cp.Size != head.Size || cp.Hash != head.Root {
		t.Fatalf("checkpoint does not open or disagrees: %v", err)
	}

	// Every inclusion proof verifies, for the head and an older size.
	for idx := uint64(0); idx < head.Size; idx++ {
		recBytes, _ := l.LeafRecordBytes(ctx, idx)
		p, err := l.InclusionProof(ctx, idx, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifier.VerifyInclusion(idx, head.Size, verifier.LeafHash(recBytes), p, head.Root); err != nil {
			t.Fatalf("inclusion proof of %d: %v", idx, err)
		}
	}
	for _, old := range []uint64{1, 2, 255, 256, 257, 300, head.Size} {
		oldRoot, _ := tlog.TreeHash(int64(old), hs)
		p, err := l.ConsistencyProof(ctx, old, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifier.VerifyConsistency(old, head.Size, oldRoot, head.Root, p); err != nil {
			t.Fatalf("consistency %d -> %d: %v", old, head.Size, err)
		}
	}

	// Reopen: same head, and it keeps growing from there.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	if h := l.Head(); h.Size != head.Size || h.Root != head.Root {
		t.Fatalf("reopened head %d %x, want %d %x", h.Size, h.Root[:8], head.Size, head.Root[:8])
	}
	env, _ := e.Event(t)
	out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	if out[0].Index != head.Size {
		t.Fatalf("first index after reopen = %d, want %d", out[0].Index, head.Size)
	}
	n := 0
	if err := l.Checkpoints(ctx, func(seq uint64, note []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("only %d checkpoints kept", n)
	}
}

func TestTilesMatchIndependentImplementation(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	ctx := context.Background()
	// 700 leaves: two full level-0 tiles and a partial one, and a partial
	// level-1 tile.
	for l.Head().Size < 700 {
		var subs []ledger.Submission
		for range min(100, 700-int(l.Head().Size)) {
			env, _ := e.Event(t)
			subs = append(subs, e.Submission(t, l, env))
		}
		submit(t, l, subs)
	}
	size := int64(l.Head().Size)
	hs := tlogFromStore(t, l, uint64(size))
	for _, tile := range tlog.NewTiles(8, 0, size) {
		want, err := tlog.ReadTileData(tile, hs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Tile(ctx, tile.L, uint64(tile.N), tile.W)
		if err != nil {
			t.Fatalf("tile %v: %v", tile.Path(), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("tile %s differs from x/mod tlog's", tile.Path())
		}
	}
	// Beyond the checkpoint nothing is served.
	if _, err := l.Tile(ctx, 0, 2, 256); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("tile beyond the tree: %v, want ErrNotFound", err)
	}
	b, err := l.EntryBundle(ctx, 0, 256)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := verifier.ParseEntryBundle(b)
	if err != nil || len(entries) != 256 {
		t.Fatalf("entry bundle: %d entries, %v", len(entries), err)
	}
}

func TestDuplicatesAndConflicts(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer func() {
		l.Close()
		s.Close()
	}()

	env, d := e.Event(t)
	sub := e.Submission(t, l, env)
	// The same bytes twice in one batch, then again in a later batch.
	out := submit(t, l, []ledger.Submission{sub, sub})
	if out[0].Err != nil || out[0].Duplicate || !out[1].Duplicate || out[1].Index != out[0].Index {
		t.Fatalf("in-batch duplicate: %+v", out)
	}
	out2 := submit(t, l, []ledger.Submission{sub})
	if !out2[0].Duplicate || out2[0].Index != out[0].Index {
		t.Fatalf("later duplicate: %+v", out2)
	}
	// The same id with other bytes is refused; the first one stands.
	d2 := *d
	d2.Justification += " (gewijzigd)"
	env2 := e.Sign(t, &d2)
	out3 := submit(t, l, []ledger.Submission{e.Submission(t, l, env2)})
	var re *events.RejectError
	if !errors.As(out3[0].Err, &re) || re.Reason != events.ReasonIDConflict {
		t.Fatalf("same id, other bytes: %+v", out3[0])
	}
	if l.Head().Size != 2 {
		t.Fatalf("size %d, want 2", l.Head().Size)
	}
	stored, err := l.Entry(context.Background(), out[0].Index)
	if err != nil || !bytes.Equal(stored, env) {
		t.Fatalf("stored envelope is not the first one: %v", err)
	}

	// After a restart the sequencer's id filter is rebuilt from the store:
	// the duplicate and the conflict must still be found.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	out4 := submit(t, l, []ledger.Submission{e.Submission(t, l, env), e.Submission(t, l, env2)})
	if !out4[0].Duplicate || out4[0].Index != out[0].Index {
		t.Fatalf("duplicate after a restart: %+v", out4[0])
	}
	if !errors.As(out4[1].Err, &re) || re.Reason != events.ReasonIDConflict {
		t.Fatalf("same id, other bytes, after a restart: %+v", out4[1])
	}
	if l.Head().Size != 2 {
		t.Fatalf("size %d after a restart, want 2", l.Head().Size)
	}
}

func TestRejectionRecorded(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	id := "019a0000-0000-7000-8000-000000000001"
	out := submit(t, l, []ledger.Submission{{Reject: &ledger.Rejection{EventID: id, Party: "gemeente-amersfoort",
		Reason: events.ReasonBadSignature, Message: "signature does not verify", At: time.Now().UTC()}}})
	if out[0].Err == nil {
		t.Fatal("a rejection submission has no error outcome")
	}
	r, err := l.Rejected(context.Background(), "gemeente-amersfoort", id)
	if err != nil || r.Reason != events.ReasonBadSignature {
		t.Fatalf("Rejected = %+v, %v", r, err)
	}
	if l.Head().Size != 1 {
		t.Fatal("a rejection entered the log")
	}
}

func TestClockBackwardsKeepsTimesMonotonic(t *testing.T) {
	e := testledger.New(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Now: clock})
	defer s.Close()
	defer l.Close()
	var last time.Time
	for i := range 5 {
		mu.Lock()
		if i%2 == 1 {
			now = now.Add(-time.Hour) // the clock jumps back
		} else {
			now = now.Add(time.Minute)
		}
		e.Gen.Now = now.Add(-time.Hour) // events occur before the ledger's clock
		mu.Unlock()
		env, _ := e.Event(t)
		out := submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
		if out[0].Err != nil || out[0].Index == 0 {
			t.Fatalf("outcome %+v", out[0])
		}
		rec, err := l.LeafRecord(context.Background(), out[0].Index)
		if err != nil {
			t.Fatal(err)
		}
		if rec.IntegratedAt.Before(last) {
			t.Fatalf("integrated_at went back from %v to %v", last, rec.IntegratedAt)
		}
		last = rec.IntegratedAt
	}
}

func TestCorruptStoreIsRefused(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	for range 3 {
		var subs []ledger.Submission
		for range 10 {
			env, _ := e.Event(t)
			subs = append(subs, e.Submission(t, l, env))
		}
		submit(t, l, subs)
	}
	l.Close()
	// Flip a byte of the level-0 tile behind the ledger's back.
	key := append([]byte{'t', 0}, make([]byte, 8)...)
	tile, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	tile[40] ^= 1
	var b ledger.Batch
	b.Set(key, tile)
	if err := s.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ps, err := openStore(e)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	_, err = ledger.Open(context.Background(), ledger.Config{Store: ps, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed})
	if !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("Open on a corrupted tile: %v, want ErrCorrupt", err)
	}
}
