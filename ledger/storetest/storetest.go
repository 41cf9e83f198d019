// Package storetest is the conformance suite for ledger.Store: every clause
// of the contract written on ledger.Store, checked on any implementation.
// Each store runs the three parts from its own tests, the Pebble store on
// disk and on its in-memory file system, and the reference store
// (ledger/memstore) in memory:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) ledger.Store { return openMyStore(t) })
//		storetest.RunDurability(t, myReopener{dir: t.TempDir()})
//		storetest.RunFaults(t, func(t *testing.T) storetest.Faulty { ... })
//	}
//
// Run needs only new, empty stores; RunDurability closes a store and opens
// it again on the same data; RunFaults makes the store's disk fail (a write
// or fsync error) and crashes the machine, which only a store under test
// can do (Pebble with its errorfs and crashable file system).
//
// # Clauses and their tests
//
// The contract on ledger.Store tags each clause; every test of the suite
// names the clauses it checks, and TestEveryClauseHasATest fails when a
// tagged clause has no test, when a test names a clause that is not tagged,
// or when this table leaves one out.
//
//	| clause         | tests                                                                                   |
//	|----------------|-----------------------------------------------------------------------------------------|
//	| atomic         | CommitAndGet, DeleteInBatch, ConcurrentReadsDuringCommit, CommittedSurviveReopen, FailStop |
//	| ahead          | AheadWrites, AheadSurviveReopen, CrashAfterAheadWrites                                  |
//	| fail-stop      | FailStop, CrashAfterAheadWrites                                                         |
//	| read-committed | CommitAndGet, ConcurrentReadsDuringCommit                                               |
//	| not-found      | GetMissing, DeleteInBatch                                                               |
//	| concurrent     | ConcurrentReadsDuringCommit, ConcurrentCommits                                          |
//	| get-copy       | ValuesAreCopies                                                                         |
//	| scan           | ScanOrderAndBounds, ScanStopsOnError                                                    |
//
// EmptyBatch checks what no clause names but every caller assumes: an empty
// batch commits.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
)

// Opener returns a new, empty store; the suite closes it.
type Opener func(t *testing.T) ledger.Store

// Reopener opens a store, and can close and reopen it on the same data.
type Reopener interface {
	Open(t *testing.T) ledger.Store
}

// Stores returns a fresh, empty data location: a store that a suite opens,
// closes and opens again on the same data. The suites that need stores
// (ledger/logtest, ledger/replicationtest) take one, so that they import no
// backend; their tests pass Pebble and the in-memory reference store.
type Stores func(t *testing.T) Reopener

// suiteTest is one test of the suite and the clauses (tags in the contract
// on ledger.Store) it checks.
type suiteTest[S any] struct {
	name    string
	clauses []string
	run     func(t *testing.T, s S)
}

// storeTests need a new, empty store.
var storeTests = []suiteTest[ledger.Store]{
	{"GetMissing", []string{"not-found"}, testGetMissing},
	{"CommitAndGet", []string{"atomic", "read-committed"}, testCommitAndGet},
	{"ValuesAreCopies", []string{"get-copy"}, testValuesAreCopies},
	{"DeleteInBatch", []string{"atomic", "not-found"}, testDelete},
	{"ScanOrderAndBounds", []string{"scan"}, testScan},
	{"ScanStopsOnError", []string{"scan"}, testScanError},
	{"EmptyBatch", nil, testEmptyBatch},
	{"ConcurrentReadsDuringCommit", []string{"atomic", "read-committed", "concurrent"}, testConcurrent},
	{"ConcurrentCommits", []string{"concurrent"}, testConcurrentCommits},
	{"AheadWrites", []string{"ahead"}, testAheadWrites},
}

// durabilityTests close a store and reopen it.
var durabilityTests = []suiteTest[Reopener]{
	{"CommittedSurviveReopen", []string{"atomic"}, testCommittedSurviveReopen},
	{"AheadSurviveReopen", []string{"ahead"}, testAheadSurviveReopen},
}

// Run runs the suite's tests that need only new, empty stores.
func Run(t *testing.T, open Opener) {
	for _, c := range storeTests {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			c.run(t, s)
		})
	}
}

// RunDurability checks that committed batches survive a close and reopen.
func RunDurability(t *testing.T, r Reopener) {
	for _, c := range durabilityTests {
		t.Run(c.name, func(t *testing.T) { c.run(t, r) })
	}
}

func testCommittedSurviveReopen(t *testing.T, r Reopener) {
	ctx := context.Background()
	s := r.Open(t)
	var b ledger.Batch
	for i := range 100 {
		b.Set(key(i), []byte(fmt.Sprint("value-", i)))
	}
	mustCommit(t, s, &b)
	var d ledger.Batch
	d.Delete(key(7))
	mustCommit(t, s, &d)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = r.Open(t)
	defer s.Close()
	for i := range 100 {
		v, err := s.Get(ctx, key(i))
		if i == 7 {
			if !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("deleted key %d after reopen: got %q, %v", i, v, err)
			}
			continue
		}
		if err != nil || string(v) != fmt.Sprint("value-", i) {
			t.Fatalf("key %d after reopen: got %q, %v", i, v, err)
		}
	}
}

func key(i int) []byte { return []byte(fmt.Sprintf("k%05d", i)) }

func mustCommit(t *testing.T, s ledger.Store, b *ledger.Batch) {
	t.Helper()
	if err := s.Commit(context.Background(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func testGetMissing(t *testing.T, s ledger.Store) {
	_, err := s.Get(context.Background(), []byte("nope"))
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
}

func testCommitAndGet(t *testing.T, s ledger.Store) {
	var b ledger.Batch
	b.Set([]byte("a"), []byte("1"))
	b.Set([]byte("b"), []byte("2"))
	b.Set([]byte("a"), []byte("3")) // a later op in the batch wins
	mustCommit(t, s, &b)
	for k, want := range map[string]string{"a": "3", "b": "2"} {
		v, err := s.Get(context.Background(), []byte(k))
		if err != nil || string(v) != want {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, v, err, want)
		}
	}
	var empty ledger.Batch
	empty.Set([]byte("e"), nil)
	mustCommit(t, s, &empty)
	if v, err := s.Get(context.Background(), []byte("e")); err != nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %q, %v", v, err)
	}
}

func testValuesAreCopies(t *testing.T, s ledger.Store) {
	var b ledger.Batch
	b.Set([]byte("k"), []byte("value"))
	mustCommit(t, s, &b)
	v, _ := s.Get(context.Background(), []byte("k"))
	v[0] = 'X'
	v2, _ := s.Get(context.Background(), []byte("k"))
	if string(v2) != "value" {
		t.Fatalf("modifying a returned value changed the store: %q", v2)
	}
}

func testDelete(t *testing.T, s ledger.Store) {
	var b ledger.Batch
	b.Set([]byte("x"), []byte("1"))
	b.Set([]byte("y"), []byte("2"))
	mustCommit(t, s, &b)
	var d ledger.Batch
	d.Delete([]byte("x"))
	d.Delete([]byte("never-there"))
	d.Set([]byte("z"), []byte("3"))
	mustCommit(t, s, &d)
	if _, err := s.Get(context.Background(), []byte("x")); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("deleted key still readable: %v", err)
	}
	if v, err := s.Get(context.Background(), []byte("z")); err != nil || string(v) != "3" {
		t.Fatalf("set in the deleting batch lost: %q, %v", v, err)
	}
}

func testScan(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	var b ledger.Batch
	for _, i := range []int{5, 1, 9, 3, 7, 0, 8} {
		b.Set(key(i), []byte{byte(i)})
	}
	mustCommit(t, s, &b)
	var got []int
	if err := s.Scan(ctx, key(1), key(8), func(k, v []byte) error {
		got = append(got, int(v[0]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 3 5 7]" {
		t.Fatalf("Scan [k1, k8) = %v, want [1 3 5 7]", got)
	}
	got = nil
	if err := s.ScanReverse(ctx, key(1), nil, func(k, v []byte) error {
		got = append(got, int(v[0]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[9 8 7 5 3 1]" {
		t.Fatalf("ScanReverse [k1, end) = %v, want [9 8 7 5 3 1]", got)
	}
	n := 0
	if err := s.Scan(ctx, nil, nil, func(k, v []byte) error { n++; return nil }); err != nil || n != 7 {
		t.Fatalf("unbounded Scan saw %d keys (%v), want 7", n, err)
	}
}

func testScanError(t *testing.T, s ledger.Store) {
	var b ledger.Batch
	for i := range 10 {
		b.Set(key(i), nil)
	}
	mustCommit(t, s, &b)
	stop := errors.New("stop")
	n := 0
	err := s.Scan(context.Background(), nil, nil, func(k, v []byte) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Scan returned %v after %d calls; want the callback's error after 3", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Scan(ctx, nil, nil, func(k, v []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan with a cancelled context returned %v", err)
	}
}

func testEmptyBatch(t *testing.T, s ledger.Store) {
	mustCommit(t, s, &ledger.Batch{})
}

func testConcurrent(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	// Each batch writes the same counter into two keys; a reader must never
	// see them differ (a batch is atomic to readers).
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				var a, b []byte
				_ = s.Scan(ctx, []byte("pair/"), []byte("pair0"), func(k, v []byte) error {
					if bytes.HasSuffix(k, []byte("a")) {
						a = append([]byte(nil), v...)
					} else {
						b = append([]byte(nil), v...)
					}
					return nil
				})
				if !bytes.Equal(a, b) {
					errs <- fmt.Errorf("torn batch seen: a=%q b=%q", a, b)
					return
				}
			}
		}()
	}
	for i := range 200 {
		var b ledger.Batch
		v := []byte(fmt.Sprint(i))
		b.Set([]byte("pair/a"), v)
		b.Set([]byte("pair/b"), v)
		mustCommit(t, s, &b)
	}
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// testConcurrentCommits: batches committed from several goroutines at once
// all land, each whole.
func testConcurrentCommits(t *testing.T, s ledger.Store) {
	const writers, batches, keys = 4, 25, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				var b ledger.Batch
				for k := range keys {
					b.Set([]byte(fmt.Sprintf("w%d/%03d/%d", w, i, k)), []byte{byte(i)})
				}
				if err := s.Commit(context.Background(), &b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Commit: %v", err)
	}
	for w := range writers {
		if n := count(t, s, fmt.Sprintf("w%d/", w)); n != batches*keys {
			t.Fatalf("writer %d: %d keys after its commits, want %d", w, n, batches*keys)
		}
	}
}
