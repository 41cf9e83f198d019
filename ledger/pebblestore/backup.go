package pebblestore

// Online backups: consistent copies of the running store, taken on a
// schedule while the ledger goes on logging, and the pruning of old ones.
// spoor serve --backup-dir runs them; spoor backup copies a stopped store
// with Store.Checkpoint alone.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/internal/datadir"
)

// BackupPrefix names the folders the running ledger's backups go into:
// BackupPrefix + the UTC time, so that their names sort by age.
const BackupPrefix = "spoor-backup-"

// BackupConfig says where and how often Backups copies the store. Only Dir
// is required.
type BackupConfig struct {
	// Dir is the folder the backups go into, each as
	// Dir/spoor-backup-<time>/ledger. It must lie outside the store's own
	// folder (better on another disk).
	Dir string
	// Every is how often a backup is written, the first one an interval
	// after Run starts (default 24 hours).
	Every time.Duration
	// Keep is how many backups are kept; older ones are removed after each
	// new one (default 7).
	Keep int
	// Logger receives a line per backup written or failed; nil discards
	// them.
	Logger *slog.Logger
	// TreeSize, if set, says how many entries the log holds; each backup
	// logs it, read before the copy starts, as tree_size_at_least.
	TreeSize func() uint64
}

// Backups writes the online backups of one store.
type Backups struct {
	store    *Store
	cfg      BackupConfig
	log      *slog.Logger
	last     prometheus.Gauge
	failures prometheus.Counter
}

// NewBackups returns the backups of s, configured by cfg; Run writes them.
func NewBackups(s *Store, cfg BackupConfig) *Backups {
	if cfg.Every <= 0 {
		cfg.Every = 24 * time.Hour
	}
	if cfg.Keep < 1 {
		cfg.Keep = 7
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backups{
		store: s, cfg: cfg, log: log,
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_backup_last_success_timestamp_seconds",
			Help: "When the last online backup (serve --backup-dir) was written."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_backup_failures_total",
			Help: "Online backups that failed."}),
	}
}

// Metrics returns the backups' Prometheus collectors, for the caller to
// register.
func (b *Backups) Metrics() []prometheus.Collector {
	return []prometheus.Collector{b.last, b.failures}
}

// Run backs the running store up every interval (the first one an interval
// after start), keeping the newest Keep, until ctx ends. A failed backup is
// logged and counted, and tried again at the next interval: the ledger goes
// on either way.
func (b *Backups) Run(ctx context.Context) error {
	ticker := time.NewTicker(b.cfg.Every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		start := time.Now()
		var size uint64
		if b.cfg.TreeSize != nil {
			size = b.cfg.TreeSize()
		}
		path, err := b.Write(start)
		if err != nil {
			b.failures.Inc()
			b.log.Error("backup failed; will try again", "dir", b.cfg.Dir, "err", err)
			continue
		}
		b.last.SetToCurrentTime()
		b.log.Info("backup written", "path", path, "tree_size_at_least", size, "took", time.Since(start).Round(time.Millisecond))
	}
}

// Write copies the running store into a new folder
// Dir/spoor-backup-<now>/ledger, as a consistent Pebble checkpoint (its
// WAL flushed first), while the ledger goes on: the copy is written under a
// temporary name and renamed into place, so a folder with the backup prefix
// is always a whole copy. Then all but the newest Keep backups are removed.
// It returns the new backup's folder.
func (b *Backups) Write(now time.Time) (string, error) {
	dir := b.cfg.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create the backup folder %s: %w", dir, err)
	}
	name := BackupPrefix + now.UTC().Format("20060102T150405.000Z")
	tmp := filepath.Join(dir, ".partial-"+name)
	final := filepath.Join(dir, name)
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create %s: %w", tmp, err)
	}
	if err := b.store.Checkpoint(datadir.Dir(tmp).Ledger()); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("couldn't move the backup into place: %w", err)
	}
	if err := pruneBackups(dir, b.cfg.Keep); err != nil {
		return final, err
	}
	return final, nil
}

// pruneBackups removes all but the newest keep backup folders in dir, and
// any partial copy an interrupted backup left behind.
func pruneBackups(dir string, keep int) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("couldn't list the backups in %s: %w", dir, err)
	}
	var names []string
	var errs []error
	for _, de := range des {
		switch n := de.Name(); {
		case strings.HasPrefix(n, BackupPrefix) && de.IsDir():
			names = append(names, n)
		case strings.HasPrefix(n, ".partial-"+BackupPrefix):
			errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
		}
	}
	slices.Sort(names)
	for len(names) > keep {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, names[0])))
		names = names[1:]
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("couldn't remove old backups: %w", err)
	}
	return nil
}
