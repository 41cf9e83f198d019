package ledger_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/memstore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
)

// countingStore counts the bytes and operations committed to it: what a
// batch adds to the store, and to SPOOR_LOG, which carries each batch's
// operations to the standbys.
type countingStore struct {
	ledger.Store
	bytes, ops atomic.Int64
}

func (s *countingStore) Commit(ctx context.Context, b *ledger.Batch) error {
	s.bytes.Add(int64(b.Size()))
	s.ops.Add(int64(b.Len()))
	return s.Store.Commit(ctx, b)
}

// TestIndexWriteVolume measures what the subject index adds to each
// batch's writes (and so to SPOOR_LOG): the same events logged with and
// without it, in batches of 500. It states the figures (go test -v) and
// holds only that the index adds something and that every batch of
// disclosures adds one head.
func TestIndexWriteVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("logs 2 x 10,000 events; skipped with -short")
	}
	const n, batch = 10000, 500
	lists := 0
	run := func(withIndex bool) (bytes, ops int64, size uint64) {
		e := testledger.New(t)
		s := &countingStore{Store: memstore.New()}
		cfg := ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1}
		if withIndex {
			cfg.IndexVRF = subjectindex.GenerateVRFKey()
		}
		l, err := ledger.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		b0, o0 := s.bytes.Load(), s.ops.Load()
		for range n / batch {
			if _, err := e.SubmitEvents(t, l, batch); err != nil {
				t.Fatal(err)
			}
		}
		if withIndex {
			r, err := l.RecomputeIndex(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			lists = r.Lists
		}
		return s.bytes.Load() - b0, s.ops.Load() - o0, l.Head().Size
	}
	offB, offO, offSize := run(false)
	onB, onO, onSize := run(true)
	heads := onSize - offSize
	t.Logf("per entry, without the index: %.0f bytes in %.1f writes; with it (%d lists): %.0f bytes in %.1f writes (+%.0f bytes, +%.1f writes); %d index heads for %d batches",
		float64(offB)/n, float64(offO)/n, lists, float64(onB)/n, float64(onO)/n, float64(onB-offB)/n, float64(onO-offO)/n, heads, n/batch)
	// One head per batch of disclosures, and the one Open writes after
	// the covenant on a new log.
	if onB <= offB || heads != n/batch+1 {
		t.Fatalf("with the index: %d bytes (without %d), %d heads for %d batches", onB, offB, heads, n/batch)
	}
}
