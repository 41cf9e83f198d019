package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/spoor-ledger/spoor/internal/durable"
)

// The witness's state on disk, one folder per log under StateDir/logs, named
// by the hex SHA-256 of the log's origin (as the monitoring path is):
//
//	latest            the last checkpoint it cosigned, with its cosignature
//	hourly/<hour>     the first checkpoint it cosigned in each hour (UTC)
//	evidence/<time>   validly signed checkpoints it refused
//
// latest is what its promise rests on: it is written with write, fsync,
// rename and a fsync of the folder (internal/durable, whose doc says what
// that promises) before the cosignature is answered, so a
// witness that said yes to a size never says yes to a tree that does not
// extend it, whatever crash comes after. hourly and evidence are kept
// bounded (Config.HourlyPerLog, Config.EvidencePerLog), oldest removed
// first. A log removed from the configuration keeps its folder; adding it
// again resumes from the stored size.
//
// What fsync promises here: once it returns, the file's bytes (and, after
// the folder's fsync, the rename) survive a process crash and a power loss
// on storage that honours flushes; not the loss of the disk.

// store is the state folder, locked for one witness process.
type store struct {
	dir  string
	lock *os.File
}

// ErrStateLocked means another witness process holds the state folder.
var ErrStateLocked = errors.New("witness: another witness process holds the state folder")

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("witness: couldn't create the state folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness: couldn't open the state lock: %w", err)
	}
	// Two processes answering from one state would each cosign on their
	// own idea of the last size.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s): %w", ErrStateLocked, dir, err)
	}
	return &store{dir: dir, lock: f}, nil
}

func (s *store) close() error { return s.lock.Close() }

// logDir is the folder of the log with origin.
func (s *store) logDir(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, "logs", hex.EncodeToString(h[:]))
}

// latest returns the last cosigned checkpoint of origin, nil if none.
func (s *store) latest(origin string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.logDir(origin), "latest"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: couldn't read the state of %q: %w", origin, err)
	}
	return b, nil
}

// setLatest stores the last cosigned checkpoint of origin durably.
func (s *store) setLatest(origin string, note []byte) error {
	dir := s.logDir(origin)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("witness: couldn't create the state of %q: %w", origin, err)
	}
	return durable.WriteFile(filepath.Join(dir, "latest"), note, 0o600)
}

// keep stores note under kind/name for origin (hourly, evidence), unless
// a file of that name exists, and removes the oldest beyond limit.
func (s *store) keep(origin, kind, name string, note []byte, limit int) error {
	dir := filepath.Join(s.logDir(origin), kind)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("witness: couldn't create %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return nil
	}
	if err := durable.WriteFile(filepath.Join(dir, name), note, 0o600); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("witness: couldn't list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && e.Name()[0] != '.' {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // names start with a sortable UTC time
	for len(names) > limit {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			return fmt.Errorf("witness: couldn't prune %s: %w", dir, err)
		}
		names = names[1:]
	}
	return nil
}

// hourName and evidenceName are sortable UTC times.
func hourName(t time.Time) string { return t.UTC().Format("2006-01-02T15") }
func evidenceName(t time.Time, size uint64) string {
	return fmt.Sprintf("%s-%d", t.UTC().Format("2006-01-02T15-04-05.000000000"), size)
}
