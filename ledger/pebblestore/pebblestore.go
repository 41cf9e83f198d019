// Package pebblestore is the ledger.Store on Pebble, the embedded default,
// and its online backups (Backups: consistent copies of the running store on
// a schedule, old ones pruned; backup.go).
//
// Every ledger batch becomes one Pebble batch applied with Sync, so a batch
// is durable (in the WAL, fsync'd) when Commit returns. After a failed
// Commit the store refuses further writes: the WAL may hold the batch or
// not, and only a restart (Pebble's own recovery, then ledger.Open's check of
// the tree against the last checkpoint) can say which.
//
// # Write and fsync errors
//
// Pebble does not return an error from Apply when writing or syncing its
// WAL fails: the batch has by then been applied to the memtable and made
// visible to readers, and Pebble calls Logger.Fatalf ("pebble: fatal commit
// error"), whose default exits the process. This package's logger panics
// with a private value instead, and Commit (and Open) recover exactly that
// value: the failure becomes an ordinary error that the ledger sees (it
// stops its sequencer: fail-stop), the store is marked failed, and from then
// on every Commit, Get and Scan is refused with ledger.ErrStoreFailed, so
// that nothing (no HTTP read, no receipt) is served from a memtable that
// may hold a batch that never reached the disk. A Fatalf on one of Pebble's
// background goroutines (flush, compaction) is not recovered: the panic
// ends the process, which is fail-stop too. Restarting runs Pebble's WAL
// recovery and then ledger.Open's checks.
package pebblestore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/ledger"
)

// Config configures the store. The zero value is a sane default.
type Config struct {
	// FS is the filesystem Pebble uses; nil means the OS's. Tests pass
	// vfs.NewMem() or an errorfs wrapper to inject faults.
	FS vfs.FS
	// CacheSize is the block cache size in bytes; 0 means 256 MiB. Pebble
	// takes its memtables (64 MiB each, two while one is flushed) out of
	// it, so a cache no larger than that holds no blocks at all.
	CacheSize int64
	// Logger receives Pebble's own log lines; nil discards them.
	Logger *slog.Logger
	// MaxOpenFiles bounds the files Pebble keeps open (its tables, WAL,
	// MANIFEST and lock); 0 means Pebble's default, 1000. spoor serve sets
	// it from the process's file limit, so that HTTP and NATS connections
	// cannot take the files Pebble needs, nor Pebble theirs.
	MaxOpenFiles int
	// NoCompression stores table blocks uncompressed. Tests use it to grep
	// table files for plaintext that must be gone.
	NoCompression bool
	// Compress compresses the tables of the levels below L0 (Snappy). Off
	// by default: nearly every byte the ledger stores is a hash or, with
	// its data keys, AES-GCM ciphertext, neither of which compresses, so
	// compression only costs CPU at every compaction (a million-event
	// `spoor bench` went from 7,424 to 8,598 events/s with it off, and
	// stayed under 1.5x the envelope bytes on disk). serve turns it on
	// with --no-encryption, when the envelopes are plain JSON.
	Compress bool
	// SkipVerify skips the check at Open that validates the checksum of
	// every block of every table and then reads every key once, so that a
	// corrupted file is refused at start rather than met by a later read
	// (Pebble reads tables lazily). The check costs about two sequential
	// reads of the store; only tools that open a store many times skip it.
	SkipVerify bool
	// ReadOnly opens the store without taking write access (Pebble's
	// ReadOnly): Commit fails, Close does not flush. The audit uses it so
	// that it cannot change a byte of what it checks; it also skips the
	// checksum pass at Open, since the audit reads everything itself.
	ReadOnly bool
}

// Store is a ledger.Store on a Pebble database.
type Store struct {
	db     *pebble.DB
	cache  *pebble.Cache
	failed atomic.Pointer[error]
	// readOnly: opened with Config.ReadOnly.
	readOnly bool
	opts     *pebble.Options
	// aheadDir holds the tables of ahead writes until Pebble has ingested
	// them (ingestAhead); aheadSeq names them.
	aheadDir string
	aheadSeq atomic.Uint64
}

var _ ledger.Store = (*Store)(nil)
var _ ledger.Compacter = (*Store)(nil)

// Open opens (or creates) the Pebble database in dir.
func Open(dir string, cfg Config) (*Store, error) {
	size := cfg.CacheSize
	if size == 0 {
		size = 256 << 20
	}
	cache := pebble.NewCache(size)
	logger := slogAdapter{cfg.Logger}
	var stall atomic.Int64 // when the current write stall began (UnixNano), or 0
	fs := cfg.FS
	if fs == nil {
		fs = vfs.Default
	}
	opts := &pebble.Options{
		Cache:  cache,
		FS:     bufferedFS{fs},
		Logger: logger,
		// By default Pebble calls Fatalf on a corrupted block it reads. Here
		// the read returns its corruption error instead, so the caller (a
		// ledger read, the sequencer, Open's check) decides: the sequencer
		// stops on it, an HTTP read answers 500.
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				logger.Errorf("data corruption: %s", info)
			},
			// A write stall holds every commit (so every receipt and
			// checkpoint) until Pebble's flushes and compactions catch up,
			// and a slow disk operation is what stalls an fsync: both are
			// what an operator looking at a latency spike needs to see.
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				stall.Store(time.Now().UnixNano())
				logger.Warnf("write stall: %s", info.Reason)
			},
			WriteStallEnd: func() {
				if began := stall.Swap(0); began != 0 {
					logger.Warnf("write stall ended after %s", time.Since(time.Unix(0, began)).Round(time.Millisecond))
				}
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				logger.Warnf("slow disk: %s", info)
			},
		},
		// The sequencer applies one large batch at a time with Sync; a
		// bigger memtable keeps flushes rare under steady ingest.
		MemTableSize: 64 << 20,
		ReadOnly:     cfg.ReadOnly,
		MaxOpenFiles: cfg.MaxOpenFiles,
		// Let L0 gather more flushes before compacting them into a larger
		// base level: the ledger's index keys (pseudonyms, event ids) are
		// spread over the whole key space, so every L0 table overlaps the
		// base level and each compaction rewrites what it overlaps; fewer,
		// larger compactions and one level less rewrite the envelopes
		// fewer times (the Bloom filters keep the id lookups cheap with
		// more L0 tables).
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 64,
		LBaseMaxBytes:         512 << 20,
	}
	opts.EnsureDefaults()
	for i := range opts.Levels {
		// The sequencer looks up every new event id before logging it,
		// and nearly all of them are absent: a Bloom filter per table
		// answers such a miss without reading the table's index and data
		// blocks (about 1% false positives at 10 bits per key).
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// L0 tables are short-lived (a flushed memtable that the next
		// compaction rewrites): compressing them costs a compression at
		// flush and a decompression at compaction for nothing that lasts.
		// The levels below are compressed only when asked (Compress).
		if cfg.NoCompression || i == 0 || !cfg.Compress {
			opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
		}
	}
	db, err := openDB(dir, opts)
	if err != nil {
		cache.Unref()
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("refusing the Pebble store in %s: %w: %w", dir, ErrDamaged, err)
		}
		return nil, fmt.Errorf("couldn't open Pebble store in %s: %w", dir, err)
	}
	s := &Store{db: db, cache: cache, readOnly: cfg.ReadOnly, opts: opts, aheadDir: fs.PathJoin(dir, aheadDirName)}
	if !cfg.ReadOnly {
		// Tables written for an ingest that a crash interrupted.
		if err := fs.RemoveAll(s.aheadDir); err != nil {
			_ = db.Close()
			cache.Unref()
			return nil, fmt.Errorf("couldn't clear %s: %w", s.aheadDir, err)
		}
	}
	if !cfg.SkipVerify && !cfg.ReadOnly {
		if err := s.verify(dir, opts); err != nil {
			_ = db.Close()
			cache.Unref()
			return nil, fmt.Errorf("refusing the Pebble store in %s: %w: %w", dir, ErrDamaged, err)
		}
	}
	return s, nil
}

// ErrDamaged means Open found a store file that fails its checksums (a
// table, the WAL, the MANIFEST): the store is refused rather than served
// with a hole in it.
var ErrDamaged = errors.New("a store file is damaged; restore the data folder from a backup")

// verify checks the checksum of every block of every table (data, index,
// filter and metadata blocks alike), and reads every key and value of the
// store once, which covers what the WAL replay put in the memtable. An
// iterator alone would never read the tables' filter blocks, which only
// point lookups consult.
func (s *Store) verify(dir string, opts *pebble.Options) (err error) {
	defer recoverFatal(&err)
	if err := s.verifyTables(dir, opts); err != nil {
		return err
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		if _, err := it.ValueAndErr(); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// verifyTables validates the block checksums of every live table file.
func (s *Store) verifyTables(dir string, opts *pebble.Options) error {
	levels, err := s.db.SSTables()
	if err != nil {
		return fmt.Errorf("listing tables: %w", err)
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	for _, level := range levels {
		for _, t := range level {
			if t.Virtual {
				continue // its backing file is checked through its own entry
			}
			name := fs.PathJoin(dir, fmt.Sprintf("%06d.sst", t.BackingSSTNum))
			if err := verifyTable(fs, name, opts); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	return nil
}

func verifyTable(fs vfs.FS, name string, opts *pebble.Options) error {
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return err
	}
	r, err := sstable.NewReader(context.Background(), readable, opts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return err
	}
	verr := r.ValidateBlockChecksums()
	return errors.Join(verr, r.Close())
}

// openDB is pebble.Open with a fatal error (a MANIFEST that cannot be
// written or synced: a full or failing disk) returned instead of panicking.
func openDB(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer recoverFatal(&err)
	return pebble.Open(dir, opts)
}

// DB exposes the Pebble database for operations outside the Store contract
// (backups with Checkpoint, metrics).
func (s *Store) DB() *pebble.DB { return s.db }

// Get implements ledger.Store.
func (s *Store) Get(_ context.Context, key []byte) ([]byte, error) {
	if err := s.failedErr(); err != nil {
		return nil, err
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ledger.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebble get: %w", err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("pebble get: %w", err)
	}
	return out, nil
}

// Scan implements ledger.Store.
func (s *Store) Scan(ctx context.Context, start, end []byte, fn func(k, v []byte) error) error {
	return s.scan(ctx, start, end, false, fn)
}

// ScanReverse implements ledger.Store.
func (s *Store) ScanReverse(ctx context.Context, start, end []byte, fn func(k, v []byte) error) error {
	return s.scan(ctx, start, end, true, fn)
}

func (s *Store) scan(ctx context.Context, start, end []byte, reverse bool, fn func(k, v []byte) error) error {
	if err := s.failedErr(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return fmt.Errorf("pebble iterator: %w", err)
	}
	var valid bool
	if reverse {
		valid = it.Last()
	} else {
		valid = it.First()
	}
	n := 0
	for ; valid; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("pebble read: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
		if reverse {
			valid = it.Prev()
		} else {
			valid = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("pebble iterator: %w", err)
	}
	return it.Close()
}

// failedErr is ErrStoreFailed once a Commit has failed, and nil before.
func (s *Store) failedErr() error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w (first failure: %w)", ledger.ErrStoreFailed, *p)
	}
	return nil
}

// Commit implements ledger.Store: one Pebble batch applied with Sync. A
// write or fsync failure of the WAL comes back as an error (see the package
// documentation) and fails the store for good.
func (s *Store) Commit(_ context.Context, b *ledger.Batch) error {
	if err := s.failedErr(); err != nil {
		return err
	}
	// A large run of ahead writes goes first, as a table of its own.
	ingestedBytes, err := s.ingestAhead(b)
	if err != nil {
		err = fmt.Errorf("pebble commit: %w", err)
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	ingested := ingestedBytes > 0
	// Sized up front: a ledger batch of a few MB would otherwise be
	// copied again each time the Pebble batch grows.
	pb := s.db.NewBatchWithSize(b.Size() - ingestedBytes + 16*len(b.Ops))
	defer pb.Close()
	// Ops are added in key order (writes of the same key keep their
	// order). Pebble inserts a batch into the memtable's skiplist in batch
	// order and starts each search from the previous insert's position: in
	// key order nearly every insert lands right after the previous one
	// instead of searching the whole skiplist, which for the ledger's
	// random-keyed indices (subjects, times) was most of the commit's CPU.
	// The ops are first grouped by their first byte (the ledger's table
	// tag); the groups that grow at their end (leaf index) are in order
	// already, and only the others are sorted.
	var groups [256][]int32
	for i, op := range b.Ops {
		if ingested && op.Ahead {
			continue
		}
		var tag byte
		if len(op.Key) > 0 {
			tag = op.Key[0]
		}
		groups[tag] = append(groups[tag], int32(i))
	}
	byKey := func(x, y int32) int {
		if c := bytes.Compare(b.Ops[x].Key, b.Ops[y].Key); c != 0 {
			return c
		}
		return cmp.Compare(x, y) // the same key: batch order
	}
	for _, g := range groups {
		if !slices.IsSortedFunc(g, byKey) {
			slices.SortFunc(g, byKey)
		}
		for _, i := range g {
			op := &b.Ops[i]
			var err error
			if op.Delete {
				err = pb.Delete(op.Key, nil)
			} else {
				err = pb.Set(op.Key, op.Value, nil)
			}
			if err != nil {
				return fmt.Errorf("couldn't build Pebble batch: %w", err)
			}
		}
	}
	if err := s.apply(pb); err != nil {
		err = fmt.Errorf("pebble commit: %w", err)
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// aheadDirName is the folder, inside the store's, where the tables of
// ahead writes are built.
const aheadDirName = "ahead"

// A batch's ahead writes are ingested as a table of their own when there
// are at least aheadMinOps of them with aheadMinBytes of values: below that
// the table's own fsync and the MANIFEST update cost more than the WAL,
// memtable and compaction copies they spare. The ledger's batches under
// load (thousands of envelopes) pass; those of a quiet moment do not.
const (
	aheadMinOps   = 256
	aheadMinBytes = 1 << 20
)

// ingestAhead writes b's ahead writes (ledger.Batch.SetAhead) to a table
// and ingests it into the LSM, durably, before the rest of the batch is
// applied; it returns the key and value bytes it ingested (0: none). Keys the ledger writes ahead are new
// and beyond every key of their table, so Pebble places the table in the
// bottom level, where no compaction rewrites it. It leaves them to the
// batch when there are too few, or when they are not strictly increasing
// or another write of the batch falls between them (the caller broke
// SetAhead's promise, and the batch is then at least atomic).
func (s *Store) ingestAhead(b *ledger.Batch) (int, error) {
	var ahead []int32
	var n, keys int
	for i := range b.Ops {
		if op := &b.Ops[i]; op.Ahead && !op.Delete {
			ahead = append(ahead, int32(i))
			n += len(op.Value)
			keys += len(op.Key)
		}
	}
	if len(ahead) < aheadMinOps || n < aheadMinBytes {
		return 0, nil
	}
	cmpKeys := func(x, y int32) int { return bytes.Compare(b.Ops[x].Key, b.Ops[y].Key) }
	if !slices.IsSortedFunc(ahead, cmpKeys) {
		slices.SortFunc(ahead, cmpKeys)
	}
	first, last := b.Ops[ahead[0]].Key, b.Ops[ahead[len(ahead)-1]].Key
	for j := 1; j < len(ahead); j++ {
		if cmpKeys(ahead[j-1], ahead[j]) == 0 {
			return 0, nil
		}
	}
	for i := range b.Ops {
		if op := &b.Ops[i]; !op.Ahead && bytes.Compare(op.Key, first) >= 0 && bytes.Compare(op.Key, last) <= 0 {
			return 0, nil
		}
	}
	fs := s.opts.FS
	if err := fs.MkdirAll(s.aheadDir, 0o755); err != nil {
		return 0, fmt.Errorf("couldn't make %s: %w", s.aheadDir, err)
	}
	// The .sst suffix has bufferedFS write the table in large writes.
	path := fs.PathJoin(s.aheadDir, fmt.Sprintf("%d.sst", s.aheadSeq.Add(1)))
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return 0, fmt.Errorf("couldn't create %s: %w", path, err)
	}
	// Finish (in Close) syncs the table before Ingest links it in.
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.opts.MakeWriterOptions(numLevels-1, s.db.TableFormat()))
	for _, i := range ahead {
		if err := w.Set(b.Ops[i].Key, b.Ops[i].Value); err != nil {
			_ = w.Close()
			_ = fs.Remove(path)
			return 0, fmt.Errorf("couldn't write the ahead table: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		_ = fs.Remove(path)
		return 0, fmt.Errorf("couldn't write the ahead table: %w", err)
	}
	if err := s.ingest(path); err != nil {
		return 0, err
	}
	// Pebble has linked the table into the store; this name is not needed.
	_ = fs.Remove(path)
	crashpoint.Hit(crashpoint.AfterAhead)
	return n + keys, nil
}

// numLevels is the number of levels of Pebble's LSM.
const numLevels = 7

// ingest ingests the table at path, turning a fatal error into an error
// (see apply).
func (s *Store) ingest(path string) (err error) {
	defer recoverFatal(&err)
	if err := s.db.Ingest(context.Background(), []string{path}); err != nil {
		return fmt.Errorf("couldn't ingest the ahead table: %w", err)
	}
	return nil
}

// apply applies pb with Sync, turning Pebble's fatal commit error into an
// error. Recovering is safe here: Pebble calls Fatalf from Apply after its
// commit pipeline has released its locks, and the store never applies
// another batch after a failure.
func (s *Store) apply(pb *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	return s.db.Apply(pb, pebble.Sync)
}

// Compact implements ledger.Compacter: it flushes the memtable and
// compacts [start, end) so that deleted keys leave the table files.
func (s *Store) Compact(ctx context.Context, start, end []byte) error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebble flush: %w", err)
	}
	if err := s.db.Compact(ctx, start, end, true); err != nil {
		return fmt.Errorf("pebble compact: %w", err)
	}
	return nil
}

// Checkpoint writes a consistent copy of the database to dir (a backup).
func (s *Store) Checkpoint(dir string) error {
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebble checkpoint: %w", err)
	}
	return nil
}

// Close implements ledger.Store. It first flushes the memtable to a table,
// so that after a clean stop everything is in tables, whose every block the
// next Open verifies: Pebble cannot always tell a damaged block in the
// middle of a recycled WAL from the end of the log, and would then drop the
// rest of the WAL without an error. After a failed Commit, Close only
// releases the cache: Pebble's commit pipeline may be wedged by the
// failure, and closing it could hang the process that is trying to stop;
// the operating system releases the files, and the next Open recovers from
// the WAL.
func (s *Store) Close() error {
	if err := s.failedErr(); err != nil {
		s.cache.Unref()
		return nil
	}
	var ferr error
	if !s.readOnly {
		ferr = s.flush()
	}
	err := s.db.Close()
	s.cache.Unref()
	if err := errors.Join(ferr, err); err != nil {
		return fmt.Errorf("pebble close: %w", err)
	}
	return nil
}

// flush is db.Flush with Pebble's fatal errors returned.
func (s *Store) flush() (err error) {
	defer recoverFatal(&err)
	return s.db.Flush()
}

// slogAdapter routes Pebble's log lines to slog (or nowhere).
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) {
	if a.l != nil {
		a.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

// Warnf is for the store's own warnings (write stalls, slow disks), which
// an operator should see at the default level, unlike Pebble's Infof.
func (a slogAdapter) Warnf(format string, args ...any) {
	if a.l != nil {
		a.l.Warn(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (a slogAdapter) Errorf(format string, args ...any) {
	if a.l != nil {
		a.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (a slogAdapter) Fatalf(format string, args ...any) {
	if a.l != nil {
		a.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	}
	// Pebble calls Fatalf on a failed WAL write or sync and on
	// unrecoverable corruption; carrying on would risk signing a tree that
	// is not on disk. Commit and Open recover this value; anywhere else the
	// panic ends the process.
	f := &fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.err = err
			break
		}
	}
	panic(f)
}

// fatalError is the panic value of slogAdapter.Fatalf. It keeps Pebble's
// underlying error, so that callers can tell a full disk (syscall.ENOSPC)
// from other failures with errors.Is.
type fatalError struct {
	msg string
	err error
}

func (e *fatalError) Error() string { return e.msg }
func (e *fatalError) Unwrap() error { return e.err }

// recoverFatal turns a fatalError panic into *err; any other panic goes on.
func recoverFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if f, ok := r.(*fatalError); ok {
		*err = f
		return
	}
	panic(r)
}
