package ledger_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// gatedStore holds the commit of the first batch of more than gateOps
// operations until release is closed.
type gatedStore struct {
	*pebblestore.Store
	gateOps int
	gated   atomic.Bool
	held    chan struct{} // closed once the gated commit is waiting
	release chan struct{}
}

func (g *gatedStore) Commit(ctx context.Context, b *ledger.Batch) error {
	if b.Len() > g.gateOps && g.gated.CompareAndSwap(false, true) {
		close(g.held)
		<-g.release
	}
	return g.Store.Commit(ctx, b)
}

// TestDuplicateOfBatchInFlight: while one batch's commit is still running
// (held here), the sequencer prepares the next; an event of the first
// batch sent again in the second is a duplicate of its leaf, and one with
// the same id but other bytes is refused, though the store does not show
// the first batch yet.
func TestDuplicateOfBatchInFlight(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	ps, err := pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	g := &gatedStore{Store: ps, gateOps: 40, held: make(chan struct{}), release: make(chan struct{})}
	l, err := ledger.Open(ctx, ledger.Config{Store: g, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed, IdleCosign: -1, MaxBatchAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(g.release) }) }
	defer release() // before Close, which waits for the held commit

	first := make([]ledger.Submission, 20)
	for i := range first {
		env, _ := e.Event(t)
		first[i] = e.Submission(t, l, env)
	}
	p1, err := l.Submit(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the store")
	}
	// The first batch's commit is held. The second: a new event, a copy
	// of the first batch's event 3, and event 5's id with other bytes.
	fresh, _ := e.Event(t)
	d5 := *first[5].Disclosure
	d5.Justification += " (aangevuld)"
	other := e.Sign(t, &d5)
	second := []ledger.Submission{e.Submission(t, l, fresh), first[3], e.Submission(t, l, other)}
	p2, err := l.Submit(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	// Give the sequencer the moment it needs to prepare the second batch
	// while the first is held.
	time.Sleep(200 * time.Millisecond)
	release()

	out1, err := p1.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := p2.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := out2[0]; o.Err != nil || o.Duplicate || o.Index != out1[len(out1)-1].Index+1 {
		t.Fatalf("new event: %+v, want a new leaf after the first batch", o)
	}
	if o := out2[1]; !o.Duplicate || o.Index != out1[3].Index {
		t.Fatalf("copy of an event in flight: %+v, want a duplicate of leaf %d", o, out1[3].Index)
	}
	var rej *events.RejectError
	if o := out2[2]; !errors.As(o.Err, &rej) || rej.Reason != events.ReasonIDConflict || o.Index != out1[5].Index {
		t.Fatalf("same id, other bytes: %+v, want an id conflict with leaf %d", o, out1[5].Index)
	}
	if got, want := l.Head().Size, out1[len(out1)-1].Index+2; got != want {
		t.Fatalf("head %d, want %d", got, want)
	}
}
