package main

import (
	"bytes"
	"path/filepath"
	"testing"

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
