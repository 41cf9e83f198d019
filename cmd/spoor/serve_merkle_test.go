package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/trilliantest"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
	"github.com/spoor-ledger/spoor/verifier"
)

func TestMerkleFlagsCheck(t *testing.T) {
	for _, c := range []struct {
		f          merkleFlags
		replicated bool
		want       string // "" means valid
	}{
		{f: merkleFlags{log: "pebble"}},
		{f: merkleFlags{log: "trillian", trillian: "127.0.0.1:8090", treeID: 7}},
		{f: merkleFlags{log: "pebble", trillian: "127.0.0.1:8090"}, want: "need --log trillian"},
		{f: merkleFlags{log: "trillian", treeID: 7}, want: "needs --trillian ADDR and --tree-id ID"},
		{f: merkleFlags{log: "trillian", trillian: "127.0.0.1:8090"}, want: "needs --trillian ADDR and --tree-id ID"},
		{f: merkleFlags{log: "trillian", trillian: "127.0.0.1:8090", treeID: 7}, replicated: true, want: "--replicate"},
		{f: merkleFlags{log: "tiles"}, want: "want pebble or trillian"},
	} {
		err := c.f.check(c.replicated)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.f, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c.f, err, c.want)
		}
	}
}

// TestServeOnTrillian runs `spoor serve --log trillian` against the real
// Trillian that .ci/trillian.sh starts: events are committed with
// receipts, a crash after Trillian integrated a batch but before its
// checkpoint is finished on restart, and the redelivered events are
// committed once.
func TestServeOnTrillian(t *testing.T) {
	addr := trilliantest.Addr(t, "go test -run TestServeOnTrillian ./cmd/spoor/")
	id := trilliantest.Tree(t, addr, "spoor-cmd-test")
	bin := buildSpoor(t)
	dir := t.TempDir()
	s := newServeProc(t, bin, dir, "--log", "trillian", "--trillian", addr, "--tree-id", strconv.FormatInt(id, 10))
	simulate := func(seed string, wait string) (string, error) {
		out, err := exec.Command(bin, "simulate", "--data", s.data, "--events", "60", "--seed", seed,
			"--nats", s.natsURL(), "--wait", wait).CombinedOutput()
		return string(out), err
	}

	if err := s.start(""); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out, err := simulate("1", "2m"); err != nil || !strings.Contains(out, "committed 60") {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if n := logCounts(t, s); n[verifier.EntryDisclosure] != 60 || n[verifier.EntryCovenant] != 1 || n[verifier.EntryIndexHead] == 0 || len(n) != 3 {
		t.Fatalf("after 60 events the log holds %v; want 60 disclosures, the covenant and index heads", n)
	}
	if err := s.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Crash after Trillian has the batch, before the checkpoint.
	if err := s.start("during-signing"); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out, err := simulate("2", "5s"); err == nil {
		t.Fatalf("simulate against a crashing ledger succeeded:\n%s", out)
	}
	st, err := s.waitExit(30 * time.Second)
	if err != nil || !killedBySIGKILL(st) {
		t.Fatalf("the crash point did not kill serve: %v %v", st, err)
	}
	if err := s.start(""); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !s.runLogContains("finished the pending batch") {
		t.Fatalf("the restart did not finish the pending batch:\n%s", s.logTail(40))
	}
	// Publishing the same events again: the ones of the recovered batch
	// are already there, the rest is added; every one is committed once.
	if out, err := simulate("2", "2m"); err != nil || !strings.Contains(out, "committed 60") {
		t.Fatalf("simulate after recovery: %v\n%s", err, out)
	}
	if n := logCounts(t, s); n[verifier.EntryDisclosure] != 120 || n[verifier.EntryCovenant] != 1 || len(n) != 3 {
		t.Fatalf("after 120 events the log holds %v; want 120 disclosures (each once), the covenant and index heads", n)
	}
	size := treeSize(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := trillianlog.Dial(ctx, addr, id, trillianlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, err := b.Size(ctx); err != nil || n != size {
		t.Fatalf("Trillian holds %d leaves (%v), want the ledger's %d", n, err, size)
	}
	if err := s.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// logCounts reads every entry as the FG does (GET /v1/entries, the FG's
// token) and counts them by entry type; it checks that the entries are the
// whole tree, in order.
func logCounts(t *testing.T, s *serveProc) map[verifier.EntryType]int {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(s.data, "fg.token"))
	if err != nil {
		t.Fatal(err)
	}
	size := treeSize(t, s)
	out := map[verifier.EntryType]int{}
	var from uint64
	for from < size {
		b, err := getWithToken(t.Context(), fmt.Sprintf("%s/v1/entries?from=%d&limit=1000", s.url(), from), strings.TrimSpace(string(token)))
		if err != nil {
			t.Fatal(err)
		}
		var page httpapi.EntriesResponse
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("GET /v1/entries: %v", err)
		}
		for _, e := range page.Entries {
			if e.Index != from {
				t.Fatalf("/v1/entries gave leaf %d where %d was next", e.Index, from)
			}
			rec, err := verifier.ParseLeafRecord(e.LeafRecord)
			if err != nil {
				t.Fatalf("leaf %d: %v", e.Index, err)
			}
			out[rec.Type]++
			from++
		}
		if len(page.Entries) == 0 {
			t.Fatalf("/v1/entries?from=%d gave nothing below the tree size %d", from, size)
		}
	}
	return out
}

func treeSize(t *testing.T, s *serveProc) uint64 {
	t.Helper()
	resp, err := http.Get(s.url() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		TreeSize uint64 `json:"tree_size"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.TreeSize
}
