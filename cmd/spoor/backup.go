package main

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
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

func newBackupCmd(g *globalFlags) *cobra.Command {
	var data, out string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out DIR2",
		Short: "Copy a stopped ledger's store consistently (a Pebble checkpoint) into DIR2/ledger",
		Long: `Copy the Pebble store of a stopped ledger (or a stopped standby) into
DIR2/ledger, as a consistent checkpoint: DIR2 can be the data folder of a
restored ledger or of a new standby, which then applies SPOOR_LOG from the
copy's position on (docs/operations.md, sections 4 and 8).

A running ledger backs itself up: spoor serve --backup-dir DIR writes the
same copy every --backup-every (default 24h) into DIR/spoor-backup-<time>,
keeping the newest --backup-keep.

Only the store is copied. The data keys (DIR/datakeys) are backed up on their
own, shorter rotation, and the log and cosigner keys once; see
docs/operations.md, section 4. Check the copy with spoor audit --data DIR2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || out == "" {
				return errors.New("give --data and --out")
			}
			dst := datadir.Dir(out).Ledger()
			if _, err := os.Stat(dst); err == nil {
				return fmt.Errorf("%s exists already; give an empty --out", dst)
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return fmt.Errorf("couldn't create %s: %w", out, err)
			}
			s, err := pebblestore.Open(datadir.Dir(data).Ledger(), pebblestore.Config{Logger: g.logger()})
			if err != nil {
				return fmt.Errorf("couldn't open the store (is the ledger still running?): %w", err)
			}
			defer s.Close()
			if err := s.Checkpoint(dst); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "store copied to %s\n", dst)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data folder of the stopped ledger")
	cmd.Flags().StringVar(&out, "out", "", "folder to copy the store into (as OUT/ledger)")
	return cmd
}

// backupPrefix names the folders the running ledger's backups go into:
// backupPrefix + the UTC time, so that their names sort by age.
const backupPrefix = "spoor-backup-"

// writeBackup copies the running ledger's store into a new folder
// dir/spoor-backup-<time>/ledger, as a consistent Pebble checkpoint (its
// WAL flushed first), while the ledger goes on: the copy is written under a
// temporary name and renamed into place, so a folder with the backup prefix
// is always a whole copy. Then all but the newest keep backups are removed.
// It returns the new backup's folder.
func writeBackup(s *pebblestore.Store, dir string, now time.Time, keep int) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create the backup folder %s: %w", dir, err)
	}
	name := backupPrefix + now.UTC().Format("20060102T150405.000Z")
	tmp := filepath.Join(dir, ".partial-"+name)
	final := filepath.Join(dir, name)
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create %s: %w", tmp, err)
	}
	if err := s.Checkpoint(datadir.Dir(tmp).Ledger()); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("couldn't move the backup into place: %w", err)
	}
	if err := pruneBackups(dir, keep); err != nil {
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
		case strings.HasPrefix(n, backupPrefix) && de.IsDir():
			names = append(names, n)
		case strings.HasPrefix(n, ".partial-"+backupPrefix):
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

// runBackupLoop backs the running store up into dir every interval (the
// first one an interval after start), keeping the newest keep. A failed
// backup is logged and counted, and tried again at the next interval: the
// ledger goes on either way.
func runBackupLoop(ctx context.Context, s *pebblestore.Store, l *ledger.Ledger, log *slog.Logger, dir string, every time.Duration, keep int, m *backupMetrics) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		start := time.Now()
		size := headSize(l)
		path, err := writeBackup(s, dir, start, keep)
		if err != nil {
			m.failures.Inc()
			log.Error("backup failed; will try again", "dir", dir, "err", err)
			continue
		}
		m.last.SetToCurrentTime()
		log.Info("backup written", "path", path, "tree_size_at_least", size, "took", time.Since(start).Round(time.Millisecond))
	}
}

// backupMetrics are the online backup's Prometheus collectors.
type backupMetrics struct {
	last     prometheus.Gauge
	failures prometheus.Counter
}

func newBackupMetrics(reg prometheus.Registerer) *backupMetrics {
	m := &backupMetrics{
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_backup_last_success_timestamp_seconds",
			Help: "When the last online backup (serve --backup-dir) was written."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_backup_failures_total",
			Help: "Online backups that failed."}),
	}
	reg.MustRegister(m.last, m.failures)
	return m
}
