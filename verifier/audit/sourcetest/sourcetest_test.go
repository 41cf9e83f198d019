package sourcetest

// The suite's own tests: a reference source in memory passes, and a source
// that breaks each clause in one deliberate way (a wrapper below) fails
// with that clause named.

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// memSource is a log in memory: records with bodies, checkpoints, tiles.
type memSource struct {
	cps, witnessed []audit.StoredCheckpoint
	entries        []audit.Entry
	proposals      []verifier.ErasureProposal
}

func (m *memSource) Checkpoints(context.Context) ([]audit.StoredCheckpoint, error) {
	return slices.Clone(m.cps), nil
}

func (m *memSource) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	for i := from; i < to && i < uint64(len(m.entries)); i++ {
		e := m.entries[i]
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func (m *memSource) LeafTile(_ context.Context, n uint64, width int) ([]byte, error) {
	var out []byte
	for i := range width {
		h := verifier.LeafHash(m.entries[n*verifier.TileWidth+uint64(i)].LeafRecord)
		out = append(out, h[:]...)
	}
	return out, nil
}

func (m *memSource) WitnessedCheckpoints(context.Context) ([]audit.StoredCheckpoint, error) {
	return slices.Clone(m.witnessed), nil
}

func (m *memSource) ErasureProposals(context.Context) ([]verifier.ErasureProposal, error) {
	return slices.Clone(m.proposals), nil
}

func newMem(t *testing.T) (*memSource, *verifier.LogKeys) {
	t.Helper()
	skey, vkey, cskey, cvkey, err := verifier.GenerateLogKeys("sourcetest.example/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(vkey, cvkey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verifier.NewCheckpointSigner(skey, cskey)
	if err != nil {
		t.Fatal(err)
	}
	m := &memSource{}
	const n = 600 // three tiles, the last partial
	for i := range n {
		rec := make([]byte, 50)
		rand.Read(rec)
		m.entries = append(m.entries, audit.Entry{Index: uint64(i), LeafRecord: rec, Body: []byte(fmt.Sprintf("body %d", i))})
	}
	for seq, size := range []uint64{1, 300, n} {
		note, err := signer.Sign("sourcetest.example/log", size, [32]byte{byte(seq)})
		if err != nil {
			t.Fatal(err)
		}
		m.cps = append(m.cps, audit.StoredCheckpoint{Seq: uint64(seq + 1), Note: note})
	}
	m.witnessed = m.cps[1:]
	m.proposals = []verifier.ErasureProposal{{ID: "a", LeafIndex: 5}, {ID: "b", LeafIndex: 6}}
	return m, keys
}

// recorder is a TB that keeps the failures; Fatalf ends the goroutine.
type recorder struct {
	ctx  context.Context
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper()                  {}
func (r *recorder) Context() context.Context { return r.ctx }
func (r *recorder) Errorf(f string, a ...any) {
	r.mu.Lock()
	r.msgs = append(r.msgs, fmt.Sprintf(f, a...))
	r.mu.Unlock()
}
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); runtime.Goexit() }

func run(t *testing.T, fn func(TB)) []string {
	r := &recorder{ctx: t.Context()}
	done := make(chan struct{})
	go func() { defer close(done); fn(r) }()
	<-done
	return r.msgs
}

func TestReferenceSourcePasses(t *testing.T) {
	m, keys := newMem(t)
	if msgs := run(t, func(tb TB) { Check(tb, "memory", m, keys) }); len(msgs) > 0 {
		t.Fatalf("the reference source fails the suite: %v", msgs)
	}
}

// Wrappers, each breaking one clause.
type (
	swappedCheckpoints struct{ *memSource }
	pastTheEnd         struct{ *memSource }
	bodyByStart        struct{ *memSource }
	ignoresStop        struct{ *memSource }
	reusedEntry        struct{ *memSource }
	wrongTile          struct{ *memSource }
	swappedWitnessed   struct{ *memSource }
	twiceProposed      struct{ *memSource }
)

func (s swappedCheckpoints) Checkpoints(ctx context.Context) ([]audit.StoredCheckpoint, error) {
	c, _ := s.memSource.Checkpoints(ctx)
	c[0], c[1] = c[1], c[0]
	return c, nil
}

func (s pastTheEnd) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	return s.memSource.Entries(ctx, from, to+1, fn)
}

func (s bodyByStart) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	return s.memSource.Entries(ctx, from, to, func(e *audit.Entry) error {
		if from > 0 && e.Index == from {
			e.Body = nil // a paging bug: the first entry of a later page comes without its body
		}
		return fn(e)
	})
}

func (s ignoresStop) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	var first error
	err := s.memSource.Entries(ctx, from, to, func(e *audit.Entry) error {
		if err := fn(e); err != nil && first == nil {
			first = err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return first
}

func (s reusedEntry) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	var e audit.Entry
	return s.memSource.Entries(ctx, from, to, func(x *audit.Entry) error {
		e = *x
		return fn(&e)
	})
}

func (s wrongTile) LeafTile(ctx context.Context, n uint64, width int) ([]byte, error) {
	b, err := s.memSource.LeafTile(ctx, n, width)
	if n == 1 {
		b[40] ^= 1
	}
	return b, err
}

func (s swappedWitnessed) WitnessedCheckpoints(ctx context.Context) ([]audit.StoredCheckpoint, error) {
	c, _ := s.memSource.WitnessedCheckpoints(ctx)
	c[0], c[1] = c[1], c[0]
	return c, nil
}

func (s twiceProposed) ErasureProposals(ctx context.Context) ([]verifier.ErasureProposal, error) {
	p, _ := s.memSource.ErasureProposals(ctx)
	return append(p, p[0]), nil
}

func TestBrokenSourcesAreCaught(t *testing.T) {
	m, keys := newMem(t)
	for _, c := range []struct {
		clause string
		src    audit.Source
	}{
		{"checkpoints-order", swappedCheckpoints{m}},
		{"entries-range", pastTheEnd{m}},
		{"entries-split", bodyByStart{m}},
		{"entries-stop", ignoresStop{m}},
		{"entries-fresh", reusedEntry{m}},
		{"tiles", wrongTile{m}},
		{"witnessed-order", swappedWitnessed{m}},
		{"erasures-unique", twiceProposed{m}},
	} {
		msgs := run(t, func(tb TB) { Check(tb, "broken", c.src, keys) })
		if !slices.ContainsFunc(msgs, func(s string) bool { return strings.Contains(s, c.clause) }) {
			t.Errorf("a source breaking %s passes or fails elsewhere: %v", c.clause, msgs)
		}
	}
}

func TestSameNamesTheField(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a := &audit.Report{OK: true, TreeSize: 10, GeneratedAt: at}
	b := &audit.Report{OK: true, TreeSize: 10, GeneratedAt: at}
	if msgs := run(t, func(tb TB) { Same(tb, map[string]*audit.Report{"a": a, "b": b}) }); len(msgs) > 0 {
		t.Fatalf("equal reports: %v", msgs)
	}
	b.TreeSize = 11
	msgs := run(t, func(tb TB) { Same(tb, map[string]*audit.Report{"a": a, "b": b}) })
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Report.TreeSize: 10 vs 11") {
		t.Fatalf("a report with another tree size: %v", msgs)
	}
}
