// Package pebblestore is the ledger.Store on Pebble, the embedded default.
//
// Every ledger batch becomes one Pebble batch applied with Sync, so a batch
// is durable (in the WAL, fsync'd) when Commit returns. After a failed
// Commit the store refuses further writes: the WAL may hold the batch or
// not, and only a restart (Pebble's own recovery, then ledger.Open's check of
// the tree against the last checkpoint) can say which.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoor-ledger/spoor/ledger"
)

// Config configures the store. The zero value is a sane default.
type Config struct {
	// FS is the filesystem Pebble uses; nil means the OS's. Tests pass
	// vfs.NewMem() or an errorfs wrapper to inject faults.
	FS vfs.FS
	// CacheSize is the block cache size in bytes; 0 means 64 MiB.
	CacheSize int64
	// Logger receives Pebble's own log lines; nil discards them.
	Logger *slog.Logger
}

// Store is a ledger.Store on a Pebble database.
type Store struct {
	db     *pebble.DB
	cache  *pebble.Cache
	failed atomic.Pointer[error]
}

var _ ledger.Store = (*Store)(nil)
var _ ledger.Compacter = (*Store)(nil)

// Open opens (or creates) the Pebble database in dir.
func Open(dir string, cfg Config) (*Store, error) {
	size := cfg.CacheSize
	if size == 0 {
		size = 64 << 20
	}
	cache := pebble.NewCache(size)
	opts := &pebble.Options{
		Cache:  cache,
		FS:     cfg.FS,
		Logger: slogAdapter{cfg.Logger},
		// The sequencer applies one large batch at a time with Sync; a
		// bigger memtable keeps flushes rare under steady ingest.
		MemTableSize: 64 << 20,
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("couldn't open Pebble store in %s: %w", dir, err)
	}
	return &Store{db: db, cache: cache}, nil
}

// DB exposes the Pebble database for operations outside the Store contract
// (backups with Checkpoint, metrics).
func (s *Store) DB() *pebble.DB { return s.db }

// Get implements ledger.Store.
func (s *Store) Get(_ context.Context, key []byte) ([]byte, error) {
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

// Commit implements ledger.Store: one Pebble batch applied with Sync.
func (s *Store) Commit(_ context.Context, b *ledger.Batch) error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w (first failure: %w)", ledger.ErrStoreFailed, *p)
	}
	pb := s.db.NewBatch()
	defer pb.Close()
	for _, op := range b.Ops {
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
	if err := s.db.Apply(pb, pebble.Sync); err != nil {
		err = fmt.Errorf("pebble commit: %w", err)
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
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

// Close implements ledger.Store.
func (s *Store) Close() error {
	err := s.db.Close()
	s.cache.Unref()
	if err != nil {
		return fmt.Errorf("pebble close: %w", err)
	}
	return nil
}

// slogAdapter routes Pebble's log lines to slog (or nowhere).
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) {
	if a.l != nil {
		a.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
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
	// Pebble calls Fatalf on unrecoverable corruption; carrying on would
	// risk signing a tree that is not on disk.
	panic(fmt.Sprintf("pebble fatal: "+format, args...))
}
