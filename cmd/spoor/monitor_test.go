package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/witness"
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

// TestMonitorCommandWitnesses: --witness and --policy make the monitor read
// the witnesses' checkpoints. A witness that cosigned the log's own tree is
// fine; one that cosigned a fork (a twin log under the same log key, shown
// to it by someone holding that key) ends the monitor with the alarm status.
func TestMonitorCommandWitnesses(t *testing.T) {
	ctx := context.Background()
	a := testledger.New(t).Serve(t)
	a.Grow(t, 20)
	logCfg := witness.LogConfig{Origin: a.Env.Keys.Log.Name(), VKey: a.Env.LogVkey}
	honest := witnesstest.Start(t, "honest", logCfg)
	if _, err := honest.W.Add(ctx, &witness.AddCheckpointRequest{Checkpoint: a.L.Head().Note}); err != nil {
		t.Fatal(err)
	}
	twin := a.Env.Twin(t).Serve(t)
	twin.Grow(t, 10)
	forked := witnesstest.Start(t, "forked", logCfg)
	if _, err := forked.W.Add(ctx, &witness.AddCheckpointRequest{Checkpoint: twin.L.Head().Note}); err != nil {
		t.Fatal(err)
	}
	a.Grow(t, 30)

	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	f := &monitorFlags{url: a.Srv.URL, vkey: a.Env.LogVkey, cosVkey: a.Env.CosVkey, state: filepath.Join(dir, "state"),
		interval: time.Second, once: true, timeout: 10 * time.Second, witness: []string{honest.URL}}
	if err := runMonitor(ctx, log, f); err != nil {
		t.Fatalf("an honest witness: %v", err)
	}
	policy := filepath.Join(dir, "policy")
	if err := os.WriteFile(policy, []byte(witnesstest.Policy(a.Env.LogVkey, 1, honest, forked)), 0o644); err != nil {
		t.Fatal(err)
	}
	f.witness, f.policy = nil, policy
	err := runMonitor(ctx, log, f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitMonitorAlarm || !strings.Contains(err.Error(), "witness-fork") || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("a witness holding a fork: want exit status %d with a witness-fork alarm, got %v", exitMonitorAlarm, err)
	}
	if err := runMonitor(ctx, log, &monitorFlags{url: a.Srv.URL, vkey: a.Env.LogVkey, cosVkey: a.Env.CosVkey, state: f.state,
		interval: time.Second, once: true, timeout: time.Second, witness: []string{"ftp://x"}}); err == nil {
		t.Fatal("--witness ftp://x was accepted")
	}
}
