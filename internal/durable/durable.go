// Package durable writes the small files that must survive a crash: key
// and token files, the monitor's state, the NATS users' seeds, reports. Each
// file is written whole to a temporary file in the same folder, synced, and
// only then given its name, and the folder is synced after, so that after a
// crash the name holds either the old bytes or the new ones, never a part.
//
// What fsync promises, and what it does not:
//
//   - A successful [os.File.Sync] means the file's bytes reached the disk's
//     stable storage (the kernel flushed its cache and asked the drive to
//     flush its own): they survive a process crash, a kernel panic and a
//     power loss. They do not survive the loss or corruption of the disk
//     itself; that is what backups and replicas are for.
//   - Syncing a file does not make its name durable. A new name, or a
//     rename, is an entry in the folder, and after a power loss it may be
//     missing unless the folder was synced too (see SQLite's os_unix.c,
//     unixSync, for the same sequence). Every function here syncs the folder
//     after giving the file its name.
//   - A rename within one folder is atomic: a reader, and a crash, sees the
//     old file or the new one. A crash before the folder sync may still leave
//     the old one; the write then did not happen, and the caller was not told
//     it did. A temporary file left by such a crash keeps a name starting
//     with "." and the target's name, so an operator can tell what it was.
//   - A failed sync is not retried: after a failed fsync the kernel may have
//     dropped the dirty pages, and a second fsync can succeed without the
//     bytes being on disk. The error goes back to the caller, who must
//     treat the file as not written.
//
// The mode of a file written through a temporary file is exactly the perm
// given (it is set with chmod, so the process's umask does not narrow it).
//
// A temporary file left by a crash holds a copy of the bytes under another
// name. For a key destroyed by removing its file (crypto-shredding), that
// copy would outlive the removal: such keys are written with CreateFile,
// in place.
//
// The ledger's own store (Pebble) does its own syncing; this package is
// for the few files beside it.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces path with b, mode perm: a crash leaves the old file or
// the new one, never a mix or a part.
func WriteFile(path string, b []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, b, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("couldn't replace %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// WriteNewFile creates path with b, mode perm, and never replaces a file
// that exists: then it returns the error os.OpenFile gives with O_EXCL (an
// *fs.PathError with Op "open" that errors.Is fs.ErrExist), and the file is
// left as it was. Unlike a file created in place and then written, the name
// appears only once the bytes are synced: a crash never leaves a half-written
// key that a restart would then refuse to replace.
//
// The name is given with a hard link from the synced temporary file, which
// fails when the name exists; the folder must be on a file system with hard
// links (every local POSIX one is).
func WriteNewFile(path string, b []byte, perm fs.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return existsError(path)
	}
	tmp, err := writeTemp(path, b, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Created by someone else since the check above.
			return existsError(path)
		}
		return fmt.Errorf("couldn't create %s: %w", path, err)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("couldn't remove the temporary file %s: %w", tmp, err)
	}
	return SyncDir(filepath.Dir(path))
}

// CreateFile creates path with b, mode perm, in place: never over a file
// that exists (the error is os.OpenFile's with O_EXCL), then syncs the file
// and its folder. Unlike WriteNewFile, no other name ever holds the bytes,
// not even after a crash; but a crash may leave a part of them at path. It
// is for a key that is destroyed by removing its one file (the ledger's data
// keys): a temporary copy left by a crash would outlive that removal.
func CreateFile(path string, b []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// existsError is the error os.OpenFile with O_CREATE|O_EXCL returns for an
// existing file, so that messages read as they did before this package
// ("open PATH: file exists").
func existsError(path string) error {
	return &fs.PathError{Op: "open", Path: path, Err: syscall.EEXIST}
}

// writeTemp writes b to a new temporary file beside path, with mode perm,
// syncs and closes it, and returns its name.
func writeTemp(path string, b []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("couldn't create a temporary file for %s: %w", path, err)
	}
	name := f.Name()
	fail := func(what string, err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("couldn't %s %s: %w", what, path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail("set the mode of", err)
	}
	if _, err := f.Write(b); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("couldn't write %s: %w", path, err)
	}
	return name, nil
}

// SyncDir syncs the folder dir, making the names created, renamed or
// removed in it durable (a file's own sync does not).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("couldn't open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("couldn't sync %s: %w", dir, err)
	}
	return nil
}
