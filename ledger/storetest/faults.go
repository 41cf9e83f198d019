package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/ledger"
)

// Faulty is a store whose disk a test can break, and a crash of its
// machine.
type Faulty struct {
	// Store is a new, empty store on a working disk.
	Store ledger.Store
	// Fail makes the disk fail from now on with err (a write or fsync
	// error of the store's log, a full disk). A batch's ahead writes, if
	// the store writes them apart, may still land.
	Fail func(err error)
	// Crash cuts the power and restarts on a repaired disk: it returns a
	// store opened on what Store had made durable, which the suite closes.
	Crash func(t *testing.T) ledger.Store
}

// FaultOpener returns a new Faulty store.
type FaultOpener func(t *testing.T) Faulty

// faultTests break the disk and crash.
var faultTests = []suiteTest[Faulty]{
	{"FailStop", []string{"fail-stop", "atomic"}, testFailStop},
	{"CrashAfterAheadWrites", []string{"ahead", "fail-stop"}, testCrashAfterAhead},
}

// RunFaults runs the suite's tests of a failing disk and a crash.
func RunFaults(t *testing.T, open FaultOpener) {
	for _, c := range faultTests {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// errInjected is the disk's error in the fault tests.
var errInjected = errors.New("storetest: injected disk failure")

// failAndCommit fails f's disk, commits b, and checks that Commit returns
// the disk's error and that the store then refuses every Commit with
// ErrStoreFailed, serves reads (if it does) with b wholly or not at all
// (the keys under prefix), and closes.
func failAndCommit(t *testing.T, f Faulty, b *ledger.Batch, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	f.Fail(errInjected)
	err := f.Store.Commit(ctx, b)
	if err == nil {
		t.Fatal("Commit returned nil although the disk failed")
	}
	if !errors.Is(err, errInjected) {
		t.Errorf("Commit error %q does not wrap the disk's error", err)
	}
	var c ledger.Batch
	c.Set([]byte("c/after-failure"), []byte("c"))
	if err := f.Store.Commit(ctx, &c); !errors.Is(err, ledger.ErrStoreFailed) {
		t.Errorf("Commit after the failure: %v, want ErrStoreFailed", err)
	}
	switch got, err := countErr(f.Store, prefix); {
	case err != nil && !errors.Is(err, ledger.ErrStoreFailed):
		t.Errorf("Scan after the failure: %v, want the data or ErrStoreFailed", err)
	case err == nil && got != 0 && got != n:
		t.Errorf("Scan after the failure sees %d of the failed batch's %d writes: a torn batch", got, n)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.Store.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close after the failure: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs after a failed Commit: the process could not stop")
	}
}

// testFailStop: after a failed Commit the store refuses writes; after the
// crash, every acknowledged batch is there, the failed one wholly or not
// at all, nothing written after the failure, and the recovered store takes
// commits.
func testFailStop(t *testing.T, f Faulty) {
	mustCommit(t, f.Store, aheadBatch("a", 0, 100))
	failAndCommit(t, f, aheadBatch("b", 0, 100), "b/plain/", 100)

	s := f.Crash(t)
	defer s.Close()
	if n := count(t, s, "a/plain/"); n != 100 {
		t.Errorf("%d of the 100 writes of the acknowledged batch survived the crash", n)
	}
	if n := count(t, s, "b/plain/"); n != 0 && n != 100 {
		t.Errorf("%d of the 100 writes of the failed batch survived: a batch is all or nothing", n)
	}
	if n := count(t, s, "c/"); n != 0 {
		t.Errorf("a batch committed after the failure survived (%d keys)", n)
	}
	mustCommit(t, s, aheadBatch("d", 0, 10))
}

// testCrashAfterAhead: the disk fails while a batch with many ahead writes
// commits. After the crash the acknowledged batch is whole; of the failed
// one, the plain writes are all there or none, each ahead write is there
// with its value or absent (all there if the rest is), and the recovered
// store can delete those left without their batch, as ledger.Open does.
func testCrashAfterAhead(t *testing.T, f Faulty) {
	ctx := context.Background()
	mustCommit(t, f.Store, aheadBatch("a", aheadOps, 50))
	failAndCommit(t, f, aheadBatch("b", aheadOps, 50), "b/plain/", 50)

	s := f.Crash(t)
	defer s.Close()
	checkAheadBatch(t, s, "a", aheadOps, 50)
	plain := count(t, s, "b/plain/")
	if plain != 0 && plain != 50 {
		t.Fatalf("%d of the 50 plain writes of the failed batch survived: torn", plain)
	}
	var orphans ledger.Batch
	for i := range aheadOps {
		v, err := s.Get(ctx, aheadKey("b", i))
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			if plain != 0 {
				t.Fatalf("the failed batch survived but its ahead write %d did not", i)
			}
		case err != nil:
			t.Fatalf("ahead write %d of the failed batch: %v", i, err)
		case !bytes.Equal(v, aheadValue("b", i)):
			t.Fatalf("ahead write %d of the failed batch survived with a wrong value", i)
		default:
			orphans.Delete(aheadKey("b", i))
		}
	}
	t.Logf("after the crash: %d of %d ahead writes and %d of 50 plain writes of the failed batch", orphans.Len(), aheadOps, plain)
	if plain == 0 {
		mustCommit(t, s, &orphans)
		if n := count(t, s, "b/ahead/"); n != 0 {
			t.Fatalf("%d ahead writes left without their batch survive their deletion", n)
		}
	}
}
