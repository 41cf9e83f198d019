package pebblestore_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// TestOnlineBackup backs up the store of a running ledger three times while
// it goes on logging: each copy opens as a ledger (every block's checksum
// verified) holding at least what was committed before it was taken and
// no more than what was committed after; the oldest is removed beyond
// Keep, and a partial copy left by an interrupted backup goes too.
func TestOnlineBackup(t *testing.T) {
	env := testledger.New(t)
	l, s := env.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	logSome := func(n int) uint64 {
		t.Helper()
		if _, err := env.SubmitEvents(t, l, n); err != nil {
			t.Fatal(err)
		}
		return l.Head().Size
	}
	dir := filepath.Join(t.TempDir(), "backups")
	if err := os.MkdirAll(filepath.Join(dir, ".partial-"+pebblestore.BackupPrefix+"interrupted", "ledger"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	b := pebblestore.NewBackups(s, pebblestore.BackupConfig{Dir: dir, Keep: 2})
	var paths []string
	var sizes []uint64
	for i := range 3 {
		sizes = append(sizes, logSome(20))
		p, err := b.Write(start.Add(time.Duration(i) * time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	after := logSome(5)

	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, de := range des {
		left = append(left, de.Name())
	}
	want := []string{filepath.Base(paths[1]), filepath.Base(paths[2])}
	if !slices.Equal(left, want) {
		t.Fatalf("backup folder holds %v, want %v (the newest two, no partial copy)", left, want)
	}
	for i, p := range paths[1:] {
		cs, err := pebblestore.Open(filepath.Join(p, "ledger"), pebblestore.Config{})
		if err != nil {
			t.Fatalf("backup %s: %v", p, err)
		}
		cl, err := ledger.Open(t.Context(), ledger.Config{Store: cs, Signer: env.Signer, Keys: env.Keys, IdleCosign: -1})
		if err != nil {
			cs.Close()
			t.Fatalf("backup %s does not open as a ledger: %v", p, err)
		}
		if got := cl.Head().Size; got < sizes[i+1] || got >= after {
			t.Errorf("backup %s holds %d entries; %d were committed before it, %d after the last", p, got, sizes[i+1], after)
		}
		cl.Close()
		cs.Close()
	}
}

// TestBackupsRun: Run writes a backup every interval and sets the gauge
// of the last success; a backup that cannot be written is counted as a
// failure, and Run goes on until its context ends.
func TestBackupsRun(t *testing.T) {
	env := testledger.New(t)
	l, s := env.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir    string
		failed bool
	}{{filepath.Join(t.TempDir(), "backups"), false}, {filepath.Join(file, "backups"), true}} {
		b := pebblestore.NewBackups(s, pebblestore.BackupConfig{Dir: c.dir, Every: 10 * time.Millisecond, Keep: 1,
			TreeSize: func() uint64 { return l.Head().Size }})
		prometheus.NewRegistry().MustRegister(b.Metrics()...)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		if err := b.Run(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		last, failures := value(t, b.Metrics()[0]), value(t, b.Metrics()[1])
		if c.failed && (failures == 0 || last != 0) || !c.failed && (failures != 0 || last == 0) {
			t.Errorf("%s: last success %v, failures %v", c.dir, last, failures)
		}
		if found, _ := filepath.Glob(filepath.Join(c.dir, pebblestore.BackupPrefix+"*")); !c.failed && len(found) != 1 {
			t.Errorf("%s: %d backups kept, want 1", c.dir, len(found))
		}
	}
}

// value reads the value of a single gauge or counter.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}
