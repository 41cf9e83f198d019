package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
)

// The monitor's decisions (fork, rollback, bad signature, the state file,
// the metrics) are tested in verifier/monitor; this is the command's loop
// with --once and its exit statuses.
func TestMonitorCommandOnce(t *testing.T) {
	ctx := context.Background()
	a := testledger.New(t).Serve(t)
	a.Grow(t, 20)
	dir := t.TempDir()
	vkey, cosVkey := filepath.Join(dir, "log.vkey"), filepath.Join(dir, "cosigner.vkey")
	if err := os.WriteFile(vkey, []byte(a.Env.LogVkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cosVkey, []byte(a.Env.CosVkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &monitorFlags{url: a.Srv.URL, vkey: "@" + vkey, cosVkey: "@" + cosVkey, state: filepath.Join(dir, "state"),
		interval: time.Second, once: true, timeout: 10 * time.Second}
	log := slog.New(slog.DiscardHandler)
	if err := runMonitor(ctx, log, f); err != nil {
		t.Fatalf("first run: %v", err)
	}
	a.Grow(t, 40)
	if err := runMonitor(ctx, log, f); err != nil {
		t.Fatalf("second run: %v", err)
	}
	b := a.Env.Twin(t).Serve(t)
	b.Grow(t, 60)
	f.url = b.Srv.URL
	err := runMonitor(ctx, log, f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitMonitorAlarm {
		t.Fatalf("fork: want exit status %d, got %v", exitMonitorAlarm, err)
	}
	// An unreachable log is an error, not an alarm.
	f.url = "http://127.0.0.1:1"
	if err := runMonitor(ctx, log, f); err == nil || errors.As(err, &ee) {
		t.Fatalf("unreachable: %v", err)
	}
}
