package ledger_test

// The FG's audit on a real ledger: Pebble on a temp dir, the demo covenant
// with fresh keys, signed synthetic events, then the store changed on disk
// the way an attacker with access to the files would.

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
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

func auditWith(t *testing.T, e *testledger.Env, src verifier.AuditSource) *verifier.AuditReport {
	t.Helper()
	rep, err := verifier.Audit(context.Background(), src, verifier.AuditConfig{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return rep
}

// auditStore audits the stopped store, after change (if set) has altered it.
func auditStore(t *testing.T, e *testledger.Env, change func(s *pebblestore.Store)) *verifier.AuditReport {
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
	return auditWith(t, e, ledger.NewStoreAuditSource(s))
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

	t.Run("altered envelope", func(t *testing.T) {
		const victim = 123
		rep := auditStore(t, e, func(s *pebblestore.Store) {
			env, err := s.Get(context.Background(), key('e', victim))
			if err != nil {
				t.Fatal(err)
			}
			env[len(env)/3] ^= 0x04
			var b ledger.Batch
			b.Set(key('e', victim), env)
			commit(t, s, &b)
		})
		if rep.OK || len(rep.Problems) != 1 {
			t.Fatalf("problems %v", rep.Problems)
		}
		p := rep.Problems[0]
		if p.Check != "body-hash" || p.Leaf == nil || *p.Leaf != victim || !strings.Contains(p.String(), "leaf 123") {
			t.Fatalf("the problem %q does not name leaf %d", p.String(), victim)
		}
		// Put it back for the next case.
		auditStore(t, e, func(s *pebblestore.Store) {
			env, _ := s.Get(context.Background(), key('e', victim))
			env[len(env)/3] ^= 0x04
			var b ledger.Batch
			b.Set(key('e', victim), env)
			commit(t, s, &b)
		})
	})

	t.Run("deleted leaf record", func(t *testing.T) {
		const victim = 200
		var saved []byte
		rep := auditStore(t, e, func(s *pebblestore.Store) {
			saved, _ = s.Get(context.Background(), key('l', victim))
			var b ledger.Batch
			b.Delete(key('l', victim))
			commit(t, s, &b)
		})
		// The tiles still hold the leaf's hash, so the checkpoints verify
		// and the one problem is the missing record.
		if len(rep.Problems) != 1 || rep.Problems[0].Check != "leaf-missing" || *rep.Problems[0].Leaf != victim {
			t.Fatalf("problems %v", rep.Problems)
		}
		auditStore(t, e, func(s *pebblestore.Store) {
			var b ledger.Batch
			b.Set(key('l', victim), saved)
			commit(t, s, &b)
		})
	})

	t.Run("erased envelope without tombstone", func(t *testing.T) {
		const victim = 17
		var saved []byte
		rep := auditStore(t, e, func(s *pebblestore.Store) {
			saved, _ = s.Get(context.Background(), key('e', victim))
			var b ledger.Batch
			b.Delete(key('e', victim))
			commit(t, s, &b)
		})
		if len(rep.Problems) != 1 || rep.Problems[0].Check != "body-missing" || *rep.Problems[0].Leaf != victim || rep.Entries.Erased != 1 {
			t.Fatalf("problems %v, entries %+v", rep.Problems, rep.Entries)
		}
		auditStore(t, e, func(s *pebblestore.Store) {
			var b ledger.Batch
			b.Set(key('e', victim), saved)
			commit(t, s, &b)
		})
	})

	t.Run("planted leaf beyond the checkpoint", func(t *testing.T) {
		rep := auditStore(t, e, func(s *pebblestore.Store) {
			rec, _ := s.Get(context.Background(), key('l', 5))
			var b ledger.Batch
			b.Set(key('l', 301), rec)
			commit(t, s, &b)
		})
		if len(rep.Problems) != 1 || rep.Problems[0].Check != "leaf-beyond-checkpoint" || *rep.Problems[0].Leaf != 301 {
			t.Fatalf("problems %v", rep.Problems)
		}
		auditStore(t, e, func(s *pebblestore.Store) {
			var b ledger.Batch
			b.Delete(key('l', 301))
			commit(t, s, &b)
		})
	})

	if rep := auditStore(t, e, nil); !rep.OK {
		t.Fatalf("after putting everything back: %v", rep.Problems)
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
