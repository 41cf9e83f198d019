package ledger_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
)

// fileLimitDir, in the environment of this test binary, makes
// TestFileLimitIsFailStop the child that runs out of files in that folder.
const fileLimitDir = "SPOOR_TEST_FILE_LIMIT_DIR"

// fileLimitLogged is how many events the log holds before the child runs.
const fileLimitLogged = 10

// fileLimitChildOK is what the child prints when the ledger stopped as it
// should.
const fileLimitChildOK = "FILE-LIMIT-FAIL-STOP-OK"

// TestFileLimitIsFailStop shows what happens when Pebble is denied a file
// (EMFILE): the ledger stops (fail-stop) rather than corrupt, and a restart
// with files to spare recovers with nothing lost.
//
// It runs a real process with a real file limit rather than Pebble's
// errorfs: the child lowers its own RLIMIT_NOFILE, opens the ledger, takes
// every file still allowed, and commits a batch large enough that Pebble
// must create a table for it (its envelopes are ingested ahead, see
// aheadBatch). A whole spoor serve would do too, but there the HTTP
// listener, NATS and Pebble race for the last file and which of them is
// denied first is down to timing; spoor serve keeps a reserve so that
// Pebble is never denied (cmd/spoor TestServeResourceLimits). This is the
// last line behind that reserve.
func TestFileLimitIsFailStop(t *testing.T) {
	if dir := os.Getenv(fileLimitDir); dir != "" {
		fileLimitChild(t, dir)
		return
	}
	ctx := context.Background()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	logged := faultEvents(t, e, fileLimitLogged)
	if _, err := faultSubmit(t, e, l, logged); err != nil {
		t.Fatal(err)
	}
	before := l.Head()
	l.Close()
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run", "^TestFileLimitIsFailStop$", "-test.v")
	cmd.Env = append(os.Environ(), fileLimitDir+"="+e.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fileLimitChildOK) {
		t.Fatalf("the child that ran out of files: %v\n%s", err, out)
	}
	t.Logf("the child:\n%s", out)

	// A restart with files to spare: the log is as the last checkpoint
	// left it, every acknowledged event is there once, nothing of the
	// failed batch is.
	l, s = e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	if got := l.Head().Size; got != before.Size {
		t.Fatalf("head after the restart is %d, want %d", got, before.Size)
	}
	if n := countEntriesFrom(t, s, before.Size); n != 0 {
		t.Fatalf("%d envelopes beyond the tree after the restart", n)
	}
	for _, env := range logged {
		if !loggedOnce(t, l, env) {
			_, id := eventID(t, env)
			t.Fatalf("acknowledged event %s is gone after the restart", id)
		}
	}
	// The party publishes the batch again (the bus would deliver it
	// again): the same events, which are now logged, after the others.
	failed := faultEvents(t, e, aheadBatch)
	outs, err := faultSubmit(t, e, l, failed)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Err != nil || o.Duplicate || o.Index != before.Size+uint64(i) {
			t.Fatalf("event %d of the batch again: %+v, want a new leaf at %d", i, o, before.Size+uint64(i))
		}
	}
	checkExtends(t, e, l, before.Note, l.Head().Note)
	if _, err := l.Entry(ctx, before.Size+aheadBatch-1); err != nil {
		t.Fatal(err)
	}
}

// fileLimitChild opens the ledger in dir, takes every file the process
// may still open, and commits one large batch, which needs a new file.
func fileLimitChild(t *testing.T, dir string) {
	e := testledger.Load(t, dir)
	// The generator starts again from its seed: skip the events the
	// parent logged, so that the batch is new events (the same ones the
	// parent submits after the restart).
	for range fileLimitLogged {
		e.Gen.Next()
	}
	// Lower the limit first (Go raised the soft limit to the hard one at
	// start), so that filling it takes a moment, not a million files.
	lim := syscall.Rlimit{Cur: 256, Max: 256}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("couldn't lower the file limit: %v", err)
	}
	l, _ := e.Open(t, ledger.Config{IdleCosign: -1})
	// The store is not closed: once it has failed, the process ends.
	defer l.Close()
	before := l.Head()
	batch := faultEvents(t, e, aheadBatch)

	var hog []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatalf("taking the files: %v", err)
		}
		hog = append(hog, f)
	}
	t.Logf("took the last %d files the process could open", len(hog))

	_, err := faultSubmit(t, e, l, batch)
	if err == nil {
		t.Fatal("the batch was committed although no file could be opened")
	}
	if !errors.Is(err, syscall.EMFILE) {
		t.Errorf("the waiters' error %q does not name EMFILE", err)
	}
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the ledger kept running after Pebble was denied a file")
	}
	if !errors.Is(l.Err(), syscall.EMFILE) {
		t.Errorf("the ledger stopped with %v, want EMFILE", l.Err())
	}
	if h := l.Head(); h.Size != before.Size || h.Seq != before.Seq {
		t.Errorf("head moved from %d (seq %d) to %d (seq %d) although the commit failed", before.Size, before.Seq, h.Size, h.Seq)
	}
	for _, f := range hog {
		f.Close()
	}
	if !t.Failed() {
		t.Logf("%s: %v", fileLimitChildOK, err)
	}
}
