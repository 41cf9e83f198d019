package ledger_test

// The FG's audit on a real ledger: Pebble on a temp dir, the demo covenant
// with fresh keys, signed synthetic events, then the store changed on disk
// the way an attacker with access to the files would.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// buildLedger logs n events in batches of 50 and closes the ledger,
// leaving the store in e.Dir/ledger.
func buildLedger(t *testing.T, e *testledger.Env, n int) {
	t.Helper()
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	for done := 0; done < n; done += 50 {
		subs := make([]ledger.Submission, min(50, n-done))
		for i := range subs {
			env, _ := e.Event(t)
			subs[i] = e.Submission(t, l, env)
		}
		submit(t, l, subs)
	}
	// The audit of the running ledger sees the same log.
	rep := auditWith(t, e, l.AuditSource())
	if !rep.OK || rep.TreeSize != uint64(n+1) {
		t.Fatalf("live audit: tree size %d, problems %v", rep.TreeSize, rep.Problems)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func auditWith(t *testing.T, e *testledger.Env, src audit.Source) *audit.Report {
	t.Helper()
	rep, err := audit.Run(context.Background(), src, audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return rep
}

// auditStore audits the stopped store, after change (if set) has altered it.
func auditStore(t *testing.T, e *testledger.Env, change func(s *pebblestore.Store)) *audit.Report {
	t.Helper()
	s, err := openStore(e)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(s)
		// Close and reopen, so the audit reads what is on disk.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = openStore(e); err != nil {
			t.Fatal(err)
		}
	}
	defer s.Close()
	return auditWith(t, e, ledger.NewStoreAuditSource(s, nil))
}

func key(tag byte, idx uint64) []byte { return binary.BigEndian.AppendUint64([]byte{tag}, idx) }

func commit(t *testing.T, s *pebblestore.Store, b *ledger.Batch) {
	t.Helper()
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestAuditRealLedger(t *testing.T) {
	e := testledger.New(t)
	buildLedger(t, e, 300)

	rep := auditStore(t, e, nil)
	if !rep.OK || rep.TreeSize != 301 || rep.Entries.Disclosures != 300 || rep.Checkpoints.Verified < 7 {
		t.Fatalf("clean ledger: ok %v, size %d, entries %+v, checkpoints %+v, problems %v",
			rep.OK, rep.TreeSize, rep.Entries, rep.Checkpoints, rep.Problems)
	}

	// Four changes on disk, as someone with access to the files could
	// make them; the audit finds each and names its leaf.
	const altered, deleted, erased, planted = 123, 200, 17, 301
	rep = auditStore(t, e, func(s *pebblestore.Store) {
		ctx := context.Background()
		var b ledger.Batch
		env, err := s.Get(ctx, key('e', altered))
		if err != nil {
			t.Fatal(err)
		}
		env[len(env)/3] ^= 0x04 // one changed byte in a stored envelope
		b.Set(key('e', altered), env)
		b.Delete(key('l', deleted)) // a leaf record removed
		b.Delete(key('e', erased))  // an envelope removed without a tombstone
		rec, err := s.Get(ctx, key('l', 5))
		if err != nil {
			t.Fatal(err)
		}
		b.Set(key('l', planted), rec) // a leaf record beyond the checkpoint
		commit(t, s, &b)
	})
	want := map[audit.Check]uint64{"body-hash": altered, "leaf-missing": deleted, "body-missing": erased, "leaf-beyond-checkpoint": planted}
	if rep.OK || len(rep.Problems) != len(want) {
		t.Fatalf("want %d problems, got %v", len(want), rep.Problems)
	}
	for _, p := range rep.Problems {
		if leaf, ok := want[p.Check]; !ok || p.Leaf == nil || *p.Leaf != leaf {
			t.Errorf("problem %q, want one of %v", p.String(), want)
		}
	}
	// The leaf is named in the message too, for the reader of a report.
	for _, p := range rep.Problems {
		if p.Check == "body-hash" && !strings.Contains(p.String(), "leaf 123") {
			t.Errorf("%q does not name leaf 123", p.String())
		}
	}
	if rep.Entries.Erased != 1 {
		t.Errorf("entries %+v", rep.Entries)
	}
}

// TestAuditSealedEnvelopes audits a ledger that seals envelopes at rest
// with data keys.
func TestAuditSealedEnvelopes(t *testing.T) {
	e := testledger.New(t)
	keys, err := ledger.OpenDataKeys(filepath.Join(e.Dir, "datakeys"))
	if err != nil {
		t.Fatal(err)
	}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, DataKeys: keys})
	subs := make([]ledger.Submission, 40)
	for i := range subs {
		env, _ := e.Event(t)
		subs[i] = e.Submission(t, l, env)
	}
	submit(t, l, subs)
	// One disclosure erased on a legal ground: a tombstone, the envelope gone.
	tomb, err := l.Erase(context.Background(), 12, "avg-17")
	if err != nil {
		t.Fatal(err)
	}
	rep := auditWith(t, e, l.AuditSource())
	if !rep.OK || rep.Entries.Disclosures != 40 || rep.Entries.Erased != 1 || rep.Entries.Tombstones != 1 || tomb != 41 {
		t.Fatalf("live: entries %+v, tombstone at %d, problems %v", rep.Entries, tomb, rep.Problems)
	}
	l.Close()
	s.Close()

	s, err = openStore(e)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sealed, err := s.Get(ctx, key('e', 9))
	if err != nil || len(sealed) == 0 || sealed[0] == '{' {
		t.Fatalf("leaf 9 is not sealed at rest: %v", err)
	}
	if rep := auditWith(t, e, ledger.NewStoreAuditSource(s, keys)); !rep.OK {
		t.Fatalf("stopped, with the data keys: %v", rep.Problems)
	}
	// Without the data keys every envelope is unreadable, and says why.
	rep = auditWith(t, e, ledger.NewStoreAuditSource(s, nil))
	if rep.ProblemCounts["body-unreadable"] != 39 || !strings.Contains(rep.Problems[0].Message, "no data key folder") {
		t.Fatalf("without the data keys: %v", rep.ProblemCounts)
	}
	// A changed byte of a sealed envelope.
	sealed[len(sealed)-5] ^= 0x10
	var b ledger.Batch
	b.Set(key('e', 9), sealed)
	commit(t, s, &b)
	rep = auditWith(t, e, ledger.NewStoreAuditSource(s, keys))
	if len(rep.Problems) != 1 || rep.Problems[0].Check != "body-unreadable" || *rep.Problems[0].Leaf != 9 {
		t.Fatalf("altered sealed envelope: %v", rep.Problems)
	}
}

func TestCheckpointPage(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	for range 4 {
		env, _ := e.Event(t)
		submit(t, l, []ledger.Submission{e.Submission(t, l, env)})
	}
	ctx := context.Background()
	var all []uint64
	for from := uint64(0); ; {
		page, next, err := l.CheckpointPage(ctx, from, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range page {
			if _, err := verifier.OpenCheckpoint(cp.Note, e.Keys); err != nil {
				t.Fatalf("checkpoint %d: %v", cp.Seq, err)
			}
			all = append(all, cp.Seq)
		}
		if next == 0 {
			break
		}
		from = next
	}
	if len(all) != 5 || all[0] != 1 || all[4] != 5 {
		t.Fatalf("checkpoints %v, want 1..5", all)
	}
}

// TestStoreAuditSourceEntries checks the source's bulk reads against point
// reads of the same store: every stored leaf record in the range, in
// order, each with its body (nil where none is stored) and findings.
func TestStoreAuditSourceEntries(t *testing.T) {
	e := testledger.New(t)
	buildLedger(t, e, 300)
	s, err := openStore(e)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var b ledger.Batch
	b.Delete(key('l', 200))
	b.Delete(key('e', 17))
	commit(t, s, &b)
	src := ledger.NewStoreAuditSource(s, nil)
	for _, r := range [][2]uint64{{0, 301}, {150, 250}, {17, 18}, {300, 400}} {
		var got []uint64
		err := src.Entries(ctx, r[0], r[1], func(ae *audit.Entry) error {
			got = append(got, ae.Index)
			rec, err := s.Get(ctx, key('l', ae.Index))
			if err != nil || !bytes.Equal(rec, ae.LeafRecord) {
				t.Errorf("leaf %d: record differs from the store's (%v)", ae.Index, err)
			}
			body, err := s.Get(ctx, key('e', ae.Index))
			switch {
			case errors.Is(err, ledger.ErrNotFound):
				if ae.Body != nil {
					t.Errorf("leaf %d: body read, none stored", ae.Index)
				}
			case err != nil || !bytes.Equal(body, ae.Body):
				t.Errorf("leaf %d: body differs from the store's (%v)", ae.Index, err)
			}
			if ae.Index > 0 && len(ae.Findings) == 0 {
				if fs, err := s.Get(ctx, key('f', ae.Index)); err == nil && len(fs) > 2 {
					t.Errorf("leaf %d: stored findings not read", ae.Index)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Entries(%d, %d): %v", r[0], r[1], err)
		}
		var want []uint64
		for i := r[0]; i < min(r[1], 301); i++ {
			if i != 200 {
				want = append(want, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Entries(%d, %d) gave %d leaves, want %d", r[0], r[1], len(got), len(want))
		}
	}
}
