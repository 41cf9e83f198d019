package ledger_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/logtest"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// The Merkle backend seam beyond the conformance suite (ledger/logtest):
// switching a log with a pending tail to no backend, and a crash of the
// very first batch.

var errUnreachable = errors.New("test: backend unreachable")

// unreachable is a backend whose Integrate of a batch fails before
// anything reaches it, as when Trillian is down.
type unreachable struct{ ledger.MerkleBackend }

func (u unreachable) Integrate(ctx context.Context, first uint64, leaves [][]byte) ([32]byte, error) {
	if len(leaves) == 0 {
		return u.MerkleBackend.Integrate(ctx, first, leaves)
	}
	return [32]byte{}, errUnreachable
}

func openWith(t *testing.T, e *testledger.Env, m ledger.MerkleBackend) (*ledger.Ledger, *pebblestore.Store, error) {
	t.Helper()
	s, err := pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(context.Background(), ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys,
		Covenant: e.Demo.Signed, IdleCosign: -1, Merkle: m})
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return l, s, nil
}

// pendingTail logs the covenant on mem, then submits n events while the
// backend is down: their batch is committed to the store as pending and
// never checkpointed. It returns the closed ledger's store, still open.
func pendingTail(t *testing.T, e *testledger.Env, mem ledger.MerkleBackend, n int) *pebblestore.Store {
	t.Helper()
	l, s, err := openWith(t, e, mem)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	s.Close()
	if l, s, err = openWith(t, e, unreachable{mem}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SubmitEvents(t, l, n); !errors.Is(err, errUnreachable) {
		t.Fatalf("a batch with the backend down: %v, want the backend's error", err)
	}
	l.Close()
	return s
}

func TestPendingTailNeedsBackend(t *testing.T) {
	e := testledger.New(t)
	mem := logtest.NewMemoryBackend()
	pendingTail(t, e, mem, 20).Close()

	// Without the backend the pending tail is what it always was: a
	// store that disagrees with its checkpoint.
	if _, _, err := openWith(t, e, nil); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("opening a pending tail without a backend: %v, want ErrCorrupt", err)
	}
	// With it, the batch is finished.
	l, s, err := openWith(t, e, mem)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	defer s.Close()
	defer l.Close()
	if h := l.Head(); h.Size != 21 {
		t.Fatalf("after recovery the head has size %d, want 21", h.Size)
	}
	if n, _ := mem.Size(context.Background()); n != 21 {
		t.Fatalf("the backend holds %d leaves, want 21", n)
	}
}

func TestFirstBatchCrash(t *testing.T) {
	e := testledger.New(t)
	mem := logtest.NewMemoryBackend()
	// The covenant's batch is pending when the backend fails: Open fails.
	if _, _, err := openWith(t, e, unreachable{mem}); !errors.Is(err, errUnreachable) {
		t.Fatalf("Open with the backend down: %v, want the backend's error", err)
	}
	l, s, err := openWith(t, e, mem)
	if err != nil {
		t.Fatalf("recovery of the first batch: %v", err)
	}
	defer s.Close()
	defer l.Close()
	if h := l.Head(); h == nil || h.Size != 1 || h.Seq != 1 {
		t.Fatalf("head after recovery: %+v, want size 1, checkpoint 1", h)
	}
	if sc, idx := l.Covenant(); sc == nil || idx != 0 {
		t.Fatalf("covenant after recovery: %v at %d", sc, idx)
	}
	if n, _ := mem.Size(context.Background()); n != 1 {
		t.Fatalf("the backend holds %d leaves, want 1", n)
	}
}

// TestDamagedPendingTail: a pending tail is finished only when its leaf
// records reproduce the stored tiles and follow the checkpoint without a
// gap; otherwise Open refuses (ErrCorrupt) and sends nothing.
func TestDamagedPendingTail(t *testing.T) {
	for _, damage := range []string{"changed record", "missing record"} {
		t.Run(damage, func(t *testing.T) {
			e := testledger.New(t)
			mem := logtest.NewMemoryBackend()
			s := pendingTail(t, e, mem, 10)
			// Leaves 1..10 are pending; damage leaf 5.
			ctx := context.Background()
			key := ledger.LeafKeyForTest(5)
			rec, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			var b ledger.Batch
			if damage == "changed record" {
				rec[len(rec)-1] ^= 1
				b.Set(key, rec)
			} else {
				b.Delete(key)
			}
			if err := s.Commit(ctx, &b); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, _, err := openWith(t, e, mem); !errors.Is(err, ledger.ErrCorrupt) {
				t.Fatalf("Open on a pending tail with a %s: %v, want ErrCorrupt", damage, err)
			}
			if n, _ := mem.Size(ctx); n != 1 {
				t.Fatalf("the backend got leaves of a damaged tail: it holds %d", n)
			}
		})
	}
}
