package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// TestBackupCopiesTheStore: spoor backup makes a copy that opens as a
// ledger with the same head, and refuses to overwrite an earlier copy.
func TestBackupCopiesTheStore(t *testing.T) {
	env := testledger.New(t)
	l, s := env.Open(t, ledger.Config{IdleCosign: -1})
	e, _ := env.Event(t)
	p, err := l.Submit(t.Context(), []ledger.Submission{env.Submission(t, l, e)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	head := l.Head()
	l.Close()
	s.Close()

	out := filepath.Join(t.TempDir(), "copy")
	run := func() error {
		root := newRootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs([]string{"backup", "--data", env.Dir, "--out", out})
		return root.Execute()
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	if err := run(); err == nil {
		t.Error("a second backup into the same folder was not refused")
	}
	cs, err := pebblestore.Open(filepath.Join(out, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cl, err := ledger.Open(t.Context(), ledger.Config{Store: cs, Signer: env.Signer, Keys: env.Keys, IdleCosign: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.Head(); got.Size != head.Size || got.Root != head.Root {
		t.Errorf("the copy's head is %d, the original's %d", got.Size, head.Size)
	}
}

// TestServeBackupFlags: serve refuses backup settings that cannot work
// before it starts anything.
func TestServeBackupFlags(t *testing.T) {
	data := t.TempDir()
	for _, c := range []struct {
		f       serveFlags
		wantErr string
	}{
		{serveFlags{data: data}, ""},
		{serveFlags{data: data, backupDir: filepath.Join(data, "backups"), backupEvery: time.Hour, backupKeep: 7}, ""},
		{serveFlags{data: data, backupDir: filepath.Join(data, "ledger", "b"), backupEvery: time.Hour, backupKeep: 7}, "is inside the store"},
		{serveFlags{data: data, backupDir: filepath.Join(data, "ledger"), backupEvery: time.Hour, backupKeep: 7}, "is inside the store"},
		{serveFlags{data: data, backupDir: "/tmp/b", backupEvery: 0, backupKeep: 7}, "positive interval"},
		{serveFlags{data: data, backupDir: "/tmp/b", backupEvery: time.Hour, backupKeep: 0}, "keep at least 1"},
	} {
		err := c.f.checkBackup()
		if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.wantErr)
		}
	}
}

// TestServeWritesBackups runs spoor serve with --backup-every 1s and waits
// for a backup of its running store.
func TestServeWritesBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	backups := filepath.Join(dir, "backups")
	s := newServeProc(t, bin, dir, "--backup-dir", backups, "--backup-every", "1s", "--backup-keep", "2")
	if err := s.start(""); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var found []string
	for len(found) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two backups within 30 s (found %v)", found)
		}
		time.Sleep(200 * time.Millisecond)
		found, _ = filepath.Glob(filepath.Join(backups, pebblestore.BackupPrefix+"*"))
	}
	if err := s.interrupt(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !s.runLogContains("backup written") {
		t.Error("serve did not log its backups")
	}
	found, _ = filepath.Glob(filepath.Join(backups, pebblestore.BackupPrefix+"*"))
	if len(found) > 2 {
		t.Errorf("%d backups kept, want at most 2", len(found))
	}
	slices.Sort(found)
	cs, err := pebblestore.Open(filepath.Join(found[len(found)-1], "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatalf("the newest backup: %v", err)
	}
	cs.Close()
}
