package index_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoor-ledger/spoor/dashboard/index"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/monitor"
)

func remote(sl *testledger.Served) index.Remote {
	return index.Remote{Src: &audit.HTTPSource{URL: sl.Srv.URL, Token: testledger.FGToken, PageSize: 100}}
}

// disclosureAt returns the index of a disclosure in [from, size).
func disclosureAt(t *testing.T, x *index.Index, from uint64) uint64 {
	t.Helper()
	for i := from; i < x.Size(); i++ {
		e, err := x.Entry(i)
		if err != nil {
			t.Fatal(err)
		}
		if rec, _ := verifier.ParseLeafRecord(e.LeafRecord); rec != nil && rec.Type == verifier.EntryDisclosure && e.Body != nil {
			return i
		}
	}
	t.Fatalf("no disclosure with a body from %d on", from)
	return 0
}

// TestFollowEraseReopen: the copy follows a real ledger across tiles,
// fetch segments and checkpoints, the audit of the copy is the audit of the ledger, an
// erasure at the ledger removes the envelope's bytes from the copy's
// files, and the copy reopens and re-verifies.
func TestFollowEraseReopen(t *testing.T) {
	ctx := context.Background()
	env := testledger.New(t)
	sl := env.Serve(t)
	// Past three segments of the parallel fetch, and across tiles.
	for sl.L.Head().Size < 3300 {
		if _, err := env.SubmitEvents(t, sl.L, 1000); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "kopie")
	x, err := index.Open(dir, env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	var p index.Progress
	res, err := x.Follow(ctx, remote(sl), &p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := sl.L.Head().Size; x.Size() != want || res.To != want || p.Done.Load() != want {
		t.Fatalf("the copy has %d (result %+v, progress %d), the ledger %d", x.Size(), res, p.Done.Load(), want)
	}
	for _, name := range []string{index.LeavesFile, index.EntriesFile, index.CheckpointsFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", name, err, st.Mode().Perm())
		}
	}
	local, err := audit.Run(ctx, x, audit.Config{Keys: env.Keys, AdminVkey: env.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if !local.OK || local.TreeSize != x.Size() || local.Entries.Disclosures == 0 {
		t.Fatalf("the audit of the copy: ok %v, size %d, %d disclosures, problems %v", local.OK, local.TreeSize, local.Entries.Disclosures, local.Problems)
	}

	// An erasure at the ledger.
	victim := disclosureAt(t, x, 10)
	e, _ := x.Entry(victim)
	envelope := bytes.Clone(e.Body)
	if _, err := sl.L.Erase(ctx, victim, "avg-17-1-d"); err != nil {
		t.Fatal(err)
	}
	sl.Grow(t, sl.L.Head().Size+5)
	var erased []index.Erased
	res, err = x.Follow(ctx, remote(sl), nil, func(e index.Erased) { erased = append(erased, e) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Erased) != 1 || res.Erased[0] != victim || len(erased) != 1 || !bytes.Equal(erased[0].Body, envelope) {
		t.Fatalf("the follow erased %v (handed %d bodies), want [%d]", res.Erased, len(erased), victim)
	}
	if e, _ := x.Entry(victim); e.Body != nil {
		t.Fatal("the erased envelope is still in the copy")
	}
	raw, err := os.ReadFile(filepath.Join(dir, index.EntriesFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, envelope) || bytes.Contains(raw, envelope[len(envelope)-100:]) {
		t.Fatalf("the erased envelope's bytes are still in the copy's file: whole at %d, middle at %d of %d", bytes.Index(raw, envelope), bytes.Index(raw, envelope[len(envelope)-100:]), len(raw))
	}
	if _, err := x.Reverify(ctx); err != nil {
		t.Fatalf("re-verification before the restart: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: the recovery path checks the tree; a full re-verification.
	x, err = index.Open(dir, env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Size() != sl.L.Head().Size {
		t.Fatalf("reopened at %d, the ledger has %d", x.Size(), sl.L.Head().Size)
	}
	rv, err := x.Reverify(ctx)
	if err != nil || rv.Size != x.Size() || rv.Erased == 0 {
		t.Fatalf("re-verification: %+v, %v", rv, err)
	}
	local, err = audit.Run(ctx, x, audit.Config{Keys: env.Keys, AdminVkey: env.Demo.AdminVkey})
	if err != nil || !local.OK || local.Entries.Erased != 1 || local.Entries.Tombstones != 1 {
		t.Fatalf("the audit after the erasure: %v, ok %v, erased %d, tombstones %d, %v", err, local.OK, local.Entries.Erased, local.Entries.Tombstones, local.Problems)
	}

	// A changed byte on the FG's disk: the re-verification names it.
	x.Close()
	f, err := os.OpenFile(filepath.Join(dir, index.LeavesFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xee}, 40*7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := index.Open(dir, env.Keys); !errors.Is(err, index.ErrCorrupt) {
		t.Fatalf("opening a changed copy: %v, want ErrCorrupt", err)
	}
}

// TestFollowForkAlarm: a ledger that serves another tree under the same
// keys (a fork) is refused with an alarm, and the copy keeps its own
// verified tree.
func TestFollowForkAlarm(t *testing.T) {
	ctx := context.Background()
	env := testledger.New(t)
	sl := env.Serve(t)
	sl.Grow(t, 40)
	x, err := index.Open(t.TempDir(), env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := x.Follow(ctx, remote(sl), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	size := x.Size()
	twin := env.Twin(t).Serve(t)
	twin.Grow(t, 80)
	_, err = x.Follow(ctx, remote(twin), nil, nil, nil)
	var alarm *index.Alarm
	if !errors.As(err, &alarm) || (alarm.Kind != monitor.Fork && alarm.Kind != monitor.BadTiles) {
		t.Fatalf("following a fork: %v, want a fork alarm", err)
	}
	if x.Size() != size {
		t.Fatalf("the copy moved to %d on a fork", x.Size())
	}
	if _, err := x.Reverify(ctx); err != nil {
		t.Fatal(err)
	}
	_ = httptest.NewServer
}
