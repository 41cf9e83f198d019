package storetest

// The suite must fail a store that breaks a clause. Each broken store below
// is the reference store (ledger/memstore) with one deliberate fault; the
// suite runs on it in a child process (a failing suite cannot run inside a
// passing test), and the test checks that the suite failed, and in the
// test that guards the clause broken.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/memstore"
)

// broken is a Store with one deliberate fault.
type broken struct {
	*memstore.Store
	fault string
}

func (b broken) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := b.Store.Get(ctx, key)
	if b.fault == "missing-is-empty" && errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (b broken) Scan(ctx context.Context, start, end []byte, fn func(k, v []byte) error) error {
	if b.fault == "scan-reversed" {
		return b.Store.ScanReverse(ctx, start, end, fn)
	}
	return b.Store.Scan(ctx, start, end, fn)
}

func (b broken) Commit(ctx context.Context, batch *ledger.Batch) error {
	ops := batch.Ops
	switch b.fault {
	case "drops-last-op":
		if len(ops) > 0 {
			ops = ops[:len(ops)-1]
		}
	case "drops-ahead":
		ops = nil
		for _, op := range batch.Ops {
			if !op.Ahead {
				ops = append(ops, op)
			}
		}
	}
	err := b.Store.Commit(ctx, &ledger.Batch{Ops: ops})
	if b.fault == "no-fail-stop" && errors.Is(err, ledger.ErrStoreFailed) {
		return nil // takes writes after a failure, as if nothing happened
	}
	return err
}

// brokenFaults are the deliberate faults and the suite test that must catch
// each.
var brokenFaults = map[string]string{
	"missing-is-empty": "GetMissing",
	"scan-reversed":    "ScanOrderAndBounds",
	"drops-last-op":    "CommitAndGet",
	"drops-ahead":      "AheadWrites",
	"no-fail-stop":     "FailStop",
	"forgets-on-close": "CommittedSurviveReopen",
}

// brokenReopener reopens one disk, or with forgets-on-close a new one.
type brokenReopener struct {
	disk  *memstore.Disk
	fault string
}

func (r brokenReopener) Open(*testing.T) ledger.Store {
	if r.fault == "forgets-on-close" {
		return broken{memstore.New(), r.fault}
	}
	return broken{memstore.Open(r.disk), r.fault}
}

// TestBrokenStore runs the whole suite on the broken store its child
// process is told of; it is skipped otherwise.
func TestBrokenStore(t *testing.T) {
	fault := os.Getenv("STORETEST_BROKEN")
	if fault == "" {
		t.Skip("runs only as TestSuiteCatchesBrokenStores's child")
	}
	Run(t, func(*testing.T) ledger.Store { return broken{memstore.New(), fault} })
	RunDurability(t, brokenReopener{memstore.NewDisk(), fault})
	RunFaults(t, func(*testing.T) Faulty {
		d := memstore.NewDisk()
		return Faulty{
			Store: broken{memstore.Open(d), fault},
			Fail:  func(err error) { d.Inject(memstore.FailAfterAhead, err) },
			Crash: func(*testing.T) ledger.Store {
				d.Inject(memstore.NoFault, nil)
				return broken{memstore.Open(d), fault}
			},
		}
	})
}

// runBroken runs TestBrokenStore in a child process on the store with fault.
func runBroken(fault string) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+fault)
	return cmd.CombinedOutput()
}

// TestSuiteCatchesBrokenStores: the suite fails each broken store, in the
// test of the clause it breaks, and passes the wrapper with no fault.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if out, err := runBroken("none"); err != nil {
		t.Fatalf("the suite fails the wrapper without a fault: %v\n%s", err, out)
	}
	for fault, test := range brokenFaults {
		t.Run(fault, func(t *testing.T) {
			out, err := runBroken(fault)
			if err == nil {
				t.Fatalf("the suite passed a store that breaks a clause (%s)", fault)
			}
			if want := "--- FAIL: TestBrokenStore/" + test + " "; !strings.Contains(string(out), want) {
				t.Fatalf("the suite did not fail %s on it:\n%s", test, out)
			}
		})
	}
}
