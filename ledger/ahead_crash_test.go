package ledger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// aheadCrashDir, in the environment of this test binary, makes
// TestAheadWriteCrash the child that commits a large batch in that folder.
const aheadCrashDir = "SPOOR_TEST_AHEAD_CRASH_DIR"

// crashChild returns a test binary of this package with the crash points
// armed: this one when it was built with the crashpoints tag, otherwise
// one built now with it (a plain go test builds without the switch, as
// releases do).
func crashChild(t *testing.T) string {
	t.Helper()
	if crashpoint.Enabled {
		return os.Args[0]
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		if goCmd, err = exec.LookPath("go"); err != nil {
			t.Fatalf("the crash test builds its child with the go command: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "ledger.test")
	out, err := exec.Command(goCmd, "test", "-c", "-tags", crashpoint.Tag, "-o", bin, "github.com/spoor-ledger/spoor/ledger").CombinedOutput()
	if err != nil {
		t.Fatalf("building the crash child with -tags %s: %v\n%s", crashpoint.Tag, err, out)
	}
	return bin
}

// aheadLogged is how many events the log holds before the crash.
const aheadLogged = 10

// aheadBatch is large enough that Pebble ingests its envelopes ahead of
// the batch (1000 envelopes of about 1.4 KB: over 1 MiB).
const aheadBatch = 1000

// TestAheadWriteCrash kills a real process (SIGKILL, at the crash point
// after-ahead-write) between the ingest of a large batch's envelopes and
// the commit of the rest of the batch. The store then holds envelopes
// beyond the tree; the next Open must delete them, keep the tree as the
// last checkpoint left it, and log the same events again at those indices.
func TestAheadWriteCrash(t *testing.T) {
	if dir := os.Getenv(aheadCrashDir); dir != "" {
		aheadCrashChild(t, dir)
		return
	}
	ctx := context.Background()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	if _, err := e.SubmitEvents(t, l, aheadLogged); err != nil {
		t.Fatal(err)
	}
	before := l.Head().Size
	l.Close()
	s.Close()

	cmd := exec.Command(crashChild(t), "-test.run", "^TestAheadWriteCrash$", "-test.v")
	cmd.Env = append(os.Environ(), aheadCrashDir+"="+e.Dir, "SPOOR_CRASHPOINT="+crashpoint.AfterAhead)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed at %s (%v):\n%s", crashpoint.AfterAhead, err, out)
	}

	// What the crash left: the envelopes, and nothing else of the batch.
	raw, err := pebblestore.Open(e.Dir+"/ledger", pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countEntriesFrom(t, raw, before); n != aheadBatch {
		t.Fatalf("%d envelopes beyond the tree after the crash, want the batch's %d (was the batch ingested ahead?)", n, aheadBatch)
	}
	raw.Close()

	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	if got := l.Head().Size; got != before {
		t.Fatalf("head after the crash is %d, want %d", got, before)
	}
	if n := countEntriesFrom(t, s, before); n != 0 {
		t.Fatalf("%d envelopes beyond the tree after Open, want none", n)
	}
	// The events come again and are logged at the same indices.
	envs := make([][]byte, aheadBatch)
	for i := range envs {
		envs[i], _ = e.Event(t)
	}
	outs, err := e.SubmitEnvelopes(t, l, envs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Err != nil || o.Duplicate || o.Index != before+uint64(i) {
			t.Fatalf("event %d: %+v, want a new leaf at %d", i, o, before+uint64(i))
		}
		body, err := l.Entry(ctx, o.Index)
		if err != nil || !bytes.Equal(body, envs[i]) {
			t.Fatalf("entry %d after recovery: %v (same bytes: %t)", o.Index, err, bytes.Equal(body, envs[i]))
		}
	}
}

// aheadCrashChild opens the ledger in dir and commits one large batch; the
// crash point kills it after the envelopes are ingested.
func aheadCrashChild(t *testing.T, dir string) {
	e := testledger.Load(t, dir)
	// The generator starts again from its seed: skip the events the
	// parent logged, so that the whole batch is new leaves.
	for range aheadLogged {
		e.Gen.Next()
	}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	_, err := e.SubmitEvents(t, l, aheadBatch)
	t.Fatalf("the batch was committed (err %v) without reaching the crash point", err)
}

// countEntriesFrom counts the envelopes stored at leaf index from and up.
func countEntriesFrom(t *testing.T, s ledger.Store, from uint64) int {
	t.Helper()
	start := binary.BigEndian.AppendUint64([]byte{'e'}, from)
	n := 0
	if err := s.Scan(context.Background(), start, []byte{'e' + 1}, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
