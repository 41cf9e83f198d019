package ledger_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

var errDisk = errors.New("disk gone")

// heldFailStore holds the commit of the first batch of more than gateOps
// operations until release is closed, and then fails it.
type heldFailStore struct {
	*pebblestore.Store
	gateOps int
	gated   atomic.Bool
	held    chan struct{} // closed once the gated commit is waiting
	release chan struct{}
}

func (f *heldFailStore) Commit(ctx context.Context, b *ledger.Batch) error {
	if b.Len() > f.gateOps && f.gated.CompareAndSwap(false, true) {
		close(f.held)
		<-f.release
		return errDisk
	}
	return f.Store.Commit(ctx, b)
}

// TestStopFailsEveryWaiter: when the commit running beside the sequencer
// fails, every waiter gets that error: the failed batch's own, the next
// batch's (already prepared and sealed by the sequencer, waiting to hand
// its commit over), and a request still queued; the ledger is dead with the
// same error, and Submit refuses.
func TestStopFailsEveryWaiter(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	ps, err := pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	f := &heldFailStore{Store: ps, gateOps: 40, held: make(chan struct{}), release: make(chan struct{})}
	l, err := ledger.Open(ctx, ledger.Config{Store: f, Signer: e.Signer, Keys: e.Keys, Covenant: e.Demo.Signed,
		IdleCosign: -1, MaxBatchAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	submit := func(n int) *ledger.Pending {
		t.Helper()
		subs := make([]ledger.Submission, n)
		for i := range subs {
			env, _ := e.Event(t)
			subs[i] = e.Submission(t, l, env)
		}
		p, err := l.Submit(ctx, subs)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	inflight := submit(20)
	select {
	case <-f.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the store")
	}
	// The sequencer takes the second batch and seals it, then waits for
	// the held commit; the third stays queued behind it.
	sealed := submit(3)
	time.Sleep(200 * time.Millisecond)
	queued := submit(2)
	close(f.release)

	for name, p := range map[string]*ledger.Pending{"the failed commit's batch": inflight,
		"the sealed batch": sealed, "the queued request": queued} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := p.Wait(wctx)
		cancel()
		if !errors.Is(err, errDisk) {
			t.Errorf("%s: Wait = %v, want the commit's error %q", name, err, errDisk)
		}
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the sequencer did not stop after a failed commit")
	}
	if err := l.Err(); !errors.Is(err, errDisk) {
		t.Errorf("Err() = %v, want the commit's error", err)
	}
	if _, err := l.Submit(ctx, nil); !errors.Is(err, errDisk) {
		t.Errorf("Submit after the stop = %v, want the commit's error", err)
	}
	if err := l.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close = %v, want the commit's error", err)
	}
}
