package pebblestore

import (
	"errors"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// sstWriteBuffer is how much of a table file being written is gathered
// before it goes to the operating system in one write.
//
// Pebble writes a table through a 4 KiB bufio.Writer, so each data block
// (4 KiB) becomes one write system call: about 630,000 of them to flush and
// compact a million envelopes, which on a virtual machine's ext4 cost more
// CPU than building the blocks. 256 KiB per call cuts them sixtyfold. Only
// table files (.sst) are buffered: the WAL, the MANIFEST and the OPTIONS
// file are written exactly as Pebble asks, since their syncs are what the
// ledger's durability rests on. A table's own durability is unchanged:
// every Sync, SyncData and Close writes the buffer out first, and Pebble
// only records a table in the MANIFEST after its Sync.
const sstWriteBuffer = 256 << 10

// bufferedFS is an FS whose table files are written through a buffer of
// sstWriteBuffer bytes; everything else passes through.
type bufferedFS struct{ vfs.FS }

// Create creates name, buffering its writes if it is a table file.
func (fs bufferedFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &bufferedFile{File: f, buf: make([]byte, 0, sstWriteBuffer)}, nil
}

// bufferedFile gathers sequential writes of a file being created. Any call
// that reads the file, asks for its size or syncs it writes the buffer out
// first, so the file never looks shorter than what was written to it. After
// a failed write every later call fails with the same error: a table with a
// hole in it must never be synced as if whole. Pebble writes a table from
// one goroutine, but the lock keeps the buffer whole should a sync ever come
// from another (as the WAL's do); it costs one uncontended lock per block.
type bufferedFile struct {
	vfs.File
	mu  sync.Mutex
	buf []byte
	err error
}

func (f *bufferedFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if len(f.buf)+len(p) > cap(f.buf) {
		if err := f.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(f.buf) {
			n, err := f.File.Write(p)
			if err != nil {
				f.err = err
			}
			return n, err
		}
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

// flush writes the buffer out. It is called with mu held.
func (f *bufferedFile) flush() error {
	if f.err != nil {
		return f.err
	}
	if len(f.buf) == 0 {
		return nil
	}
	_, err := f.File.Write(f.buf)
	f.buf = f.buf[:0]
	if err != nil {
		f.err = err
	}
	return err
}

func (f *bufferedFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.flushLocked(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *bufferedFile) Read(p []byte) (int, error) {
	if err := f.flushLocked(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *bufferedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.flushLocked(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *bufferedFile) Stat() (vfs.FileInfo, error) {
	if err := f.flushLocked(); err != nil {
		return nil, err
	}
	return f.File.Stat()
}

func (f *bufferedFile) Sync() error {
	if err := f.flushLocked(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *bufferedFile) SyncData() error {
	if err := f.flushLocked(); err != nil {
		return err
	}
	return f.File.SyncData()
}

// SyncTo starts writeback of the first length bytes (sync_file_range): a
// hint that smooths out disk writes, not a durability point, but it is
// only meaningful for bytes the OS has, so the buffer goes first.
func (f *bufferedFile) SyncTo(length int64) (bool, error) {
	if err := f.flushLocked(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func (f *bufferedFile) Close() error {
	return errors.Join(f.flushLocked(), f.File.Close())
}

// flushLocked is flush for the calls that pass through after it: the
// lock is held only while the buffer goes out.
func (f *bufferedFile) flushLocked() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flush()
}
