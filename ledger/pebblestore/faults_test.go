package pebblestore_test

// Injected faults below the store: Pebble's errorfs fails writes and
// fsyncs of the WAL, or reports a full disk, and a damaged file waits for
// the next start. The promise checked is the ledger.Store contract, by the
// suite's fault tests (storetest.RunFaults: a failed Commit returns the
// disk's error rather than panic or exit, the store then refuses writes,
// and after the crash every acknowledged batch is whole and the failed one
// there entirely or not at all), and this store's own stricter promises:
// it refuses reads too after a failure, and a damaged file is refused at
// Open with ErrDamaged.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/storetest"
)

// armedFault fails every operation of one kind on WAL files (*.log) with
// err, once armed.
type armedFault struct {
	kinds []errorfs.OpKind
	err   error
	armed atomic.Bool
	hits  atomic.Int64
}

func (f *armedFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.HasSuffix(op.Path, ".log") || !slices.Contains(f.kinds, op.Kind) {
		return nil
	}
	f.hits.Add(1)
	return f.err
}

func (f *armedFault) String() string { return fmt.Sprintf("%v on *.log: %v", f.kinds, f.err) }

// batchOf makes a batch of n keys with a prefix, so that a test can tell
// whether all, none or part of it survived.
func batchOf(prefix string, n int) *ledger.Batch {
	var b ledger.Batch
	for i := range n {
		b.Set([]byte(fmt.Sprintf("%s-%04d", prefix, i)), bytes.Repeat([]byte(prefix), 20))
	}
	return &b
}

// countPrefix counts the keys of s that start with prefix.
func countPrefix(t *testing.T, s ledger.Store, prefix string) int {
	t.Helper()
	n := 0
	end := []byte(prefix + "\xff")
	if err := s.Scan(context.Background(), []byte(prefix), end, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatalf("scan %s: %v", prefix, err)
	}
	return n
}

// walFaults are the disk failures the suite's fault tests are run with.
var walFaults = []struct {
	name  string
	kinds []errorfs.OpKind
}{
	{"write error", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}},
	{"fsync error", []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}},
	{"full disk", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate}},
}

// faultyStore opens a store on a crashable in-memory file system whose WAL
// fails with the kinds of operations given, once Fail is called (a full
// disk passes syscall.ENOSPC). Pebble ingests a large run of ahead writes as
// a table, not through the WAL: those land, as the contract allows.
func faultyStore(kinds []errorfs.OpKind) storetest.FaultOpener {
	return func(t *testing.T) storetest.Faulty {
		mem := vfs.NewCrashableMem()
		fault := &armedFault{kinds: kinds}
		s, err := pebblestore.Open("db", pebblestore.Config{FS: errorfs.Wrap(mem, fault)})
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Faulty{
			Store: s,
			Fail: func(err error) {
				fault.err = err
				fault.armed.Store(true)
			},
			Crash: func(t *testing.T) ledger.Store {
				if fault.armed.Load() && fault.hits.Load() == 0 {
					t.Fatal("the fault was never hit: the test injects nothing")
				}
				s2, err := pebblestore.Open("db", pebblestore.Config{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
				if err != nil {
					t.Fatalf("reopen after the crash: %v", err)
				}
				return s2
			},
		}
	}
}

// TestFaults runs the suite's fail-stop and crash tests with WAL write and
// fsync errors and a full disk below the store.
func TestFaults(t *testing.T) {
	for _, f := range walFaults {
		t.Run(f.name, func(t *testing.T) { storetest.RunFaults(t, faultyStore(f.kinds)) })
	}
}

// TestReadsRefusedAfterFailure: beyond the contract, which lets a store
// serve reads after a failed Commit, this store refuses them, since its
// memtable may hold the batch that never reached the disk.
func TestReadsRefusedAfterFailure(t *testing.T) {
	ctx := context.Background()
	f := faultyStore(walFaults[1].kinds)(t)
	defer f.Store.Close()
	if err := f.Store.Commit(ctx, batchOf("a", 10)); err != nil {
		t.Fatal(err)
	}
	f.Fail(syscall.EIO)
	if err := f.Store.Commit(ctx, batchOf("b", 10)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Commit on a failing WAL: %v, want the disk's error", err)
	}
	if _, err := f.Store.Get(ctx, []byte("a-0000")); !errors.Is(err, ledger.ErrStoreFailed) {
		t.Errorf("Get after the failure: %v, want ErrStoreFailed", err)
	}
	if err := f.Store.Scan(ctx, nil, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, ledger.ErrStoreFailed) {
		t.Errorf("Scan after the failure: %v, want ErrStoreFailed", err)
	}
	if err := f.Store.ScanReverse(ctx, nil, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, ledger.ErrStoreFailed) {
		t.Errorf("ScanReverse after the failure: %v, want ErrStoreFailed", err)
	}
}

// TestOpenOnFullDisk: a disk that is full from the start refuses Open with
// an error, not a panic.
func TestOpenOnFullDisk(t *testing.T) {
	full := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && op.Kind != errorfs.OpMkdirAll && op.Kind != errorfs.OpLock {
			return syscall.ENOSPC
		}
		return nil
	})
	s, err := pebblestore.Open("db", pebblestore.Config{FS: errorfs.Wrap(vfs.NewMem(), full)})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a full disk")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Open on a full disk: %v, want it to wrap ENOSPC", err)
	}
	t.Logf("Open: %v", err)
}

// writeStore fills a store on disk in dir with several flushed tables and
// a WAL, then closes it.
func writeStore(t *testing.T, dir string) {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for j := range 3 {
		if err := s.Commit(context.Background(), batchOf(fmt.Sprintf("t%d", j), 1000)); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// The last batches stay in the WAL only.
	for j := range 5 {
		if err := s.Commit(context.Background(), batchOf(fmt.Sprintf("w%d", j), 200)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// largestFile returns the largest file in dir with the extension ext.
func largestFile(t *testing.T, dir, ext string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64 = -1
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(e.Name()) == ext && fi.Size() > size {
			best, size = e.Name(), fi.Size()
		}
	}
	if best == "" || size == 0 {
		t.Fatalf("no %s file with data in %s", ext, dir)
	}
	return filepath.Join(dir, best)
}

// flipByte inverts the byte at frac of the file's length, as a failing
// disk or a stray write would.
func flipByte(t *testing.T, path string, frac float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[int(float64(len(b))*frac)] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptedFileRefusedAtStart(t *testing.T) {
	for _, frac := range []float64{0.1, 0.3, 0.6, 0.9} {
		t.Run(fmt.Sprintf("table byte at %.0f%%", frac*100), func(t *testing.T) {
			dir := t.TempDir()
			writeStore(t, dir)
			path := largestFile(t, dir, ".sst")
			flipByte(t, path, frac)
			s, err := pebblestore.Open(dir, pebblestore.Config{})
			if err == nil {
				s.Close()
				t.Fatalf("Open accepted a store with a damaged %s", filepath.Base(path))
			}
			if !errors.Is(err, pebblestore.ErrDamaged) {
				t.Fatalf("Open: %v, want ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("the error does not name the store's folder: %v", err)
			}
			t.Logf("Open: %v", err)
		})
	}
	// Close flushes the memtable, so after a clean stop the WAL holds
	// nothing that the tables do not: damage to it loses nothing.
	t.Run("WAL after a clean stop", func(t *testing.T) {
		dir := t.TempDir()
		writeStore(t, dir)
		flipByte(t, largestFile(t, dir, ".log"), 0.5)
		s, err := pebblestore.Open(dir, pebblestore.Config{})
		if err != nil {
			t.Fatalf("Open after damage to a WAL that a clean stop emptied: %v", err)
		}
		defer s.Close()
		for j := range 5 {
			if n := countPrefix(t, s, fmt.Sprintf("w%d", j)); n != 200 {
				t.Fatalf("batch w%d has %d of 200 keys after a clean stop", j, n)
			}
		}
	})
	t.Run("undamaged store opens", func(t *testing.T) {
		dir := t.TempDir()
		writeStore(t, dir)
		s, err := pebblestore.Open(dir, pebblestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if n := countPrefix(t, s, "t0"); n != 1000 {
			t.Fatalf("%d keys of the first batch after reopening, want 1000", n)
		}
	})
}

// TestDamagedWALAfterCrash documents the limit of Pebble's WAL recovery
// that docs/guarantees.md states: after a crash (no clean end to the WAL),
// Pebble cannot tell a damaged block from a torn last write, and recovers
// up to it. What holds is atomicity: every batch is whole or absent, and
// what survives is a prefix of the batches in commit order. A lost tail is
// seen from outside, as a rollback of the published checkpoint (spoor
// monitor, witnesses).
func TestDamagedWALAfterCrash(t *testing.T) {
	for _, frac := range []float64{0.05, 0.5, 0.95} {
		t.Run(fmt.Sprintf("byte at %.0f%%", frac*100), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			s, err := pebblestore.Open("db", pebblestore.Config{FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			for j := range 5 {
				if err := s.Commit(context.Background(), batchOf(fmt.Sprintf("w%d", j), 200)); err != nil {
					t.Fatal(err)
				}
			}
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			damageNewestWAL(t, crashed, "db", frac)
			s2, err := pebblestore.Open("db", pebblestore.Config{FS: crashed})
			if err != nil {
				if !errors.Is(err, pebblestore.ErrDamaged) {
					t.Fatalf("Open refused the store without ErrDamaged: %v", err)
				}
				return
			}
			defer s2.Close()
			var counts []int
			for j := range 5 {
				counts = append(counts, countPrefix(t, s2, fmt.Sprintf("w%d", j)))
			}
			for j, n := range counts {
				if n != 0 && n != 200 {
					t.Fatalf("batch w%d has %d of 200 keys: a torn batch (%v)", j, n, counts)
				}
				if j > 0 && n == 200 && counts[j-1] == 0 {
					t.Fatalf("batch w%d survived but an earlier one did not (%v)", j, counts)
				}
			}
			t.Logf("batches recovered: %v", counts)
		})
	}
}

// damageNewestWAL flips one byte of the newest WAL file in dir on fs.
func damageNewestWAL(t *testing.T, fs vfs.FS, dir string, frac float64) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".log") && n > newest {
			newest = n
		}
	}
	if newest == "" {
		t.Fatal("no WAL file")
	}
	path := fs.PathJoin(dir, newest)
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil || len(b) == 0 {
		t.Fatalf("read %s: %d bytes, %v", path, len(b), err)
	}
	b[int(float64(len(b))*frac)] ^= 0xff
	w, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Sync(), w.Close()); err != nil {
		t.Fatal(err)
	}
}
