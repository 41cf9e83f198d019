package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// readAPI serves a memLog the way a ledger's read API does for the FG: the
// kept checkpoints and the stored entries paged (with the token), the
// erasure proposals, and the public level-0 tile. A page that holds a leaf
// whose record is gone answers 404, as the ledger does, and so does that
// one leaf alone.
type readAPI struct {
	l         *memLog
	token     string
	cpPage    int
	proposals []verifier.ErasureProposal
	pages     atomic.Int64
}

func (a *readAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	if r.URL.Path == "/"+verifier.TilePath(0, 0, len(a.l.hashes)) {
		for _, h := range a.l.hashes {
			_, _ = w.Write(h)
		}
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+a.token {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	switch r.URL.Path {
	case "/v1/checkpoints":
		// from is a checkpoint's number (Seq, from 1); 0 reads from the first.
		var resp verifier.CheckpointsResponse
		start := max(int(from), 1) - 1
		end := min(start+a.cpPage, len(a.l.cps))
		for _, c := range a.l.cps[start:end] {
			resp.Checkpoints = append(resp.Checkpoints, verifier.CheckpointEntry{Seq: c.Seq, Note: string(c.Note)})
		}
		if end < len(a.l.cps) {
			next := a.l.cps[end].Seq
			resp.Next = &next
		}
		reply(resp)
	case "/v1/entries":
		a.pages.Add(1)
		limit, _ := strconv.ParseUint(r.URL.Query().Get("limit"), 10, 64)
		size := uint64(len(a.l.entries))
		resp := verifier.EntriesResponse{TreeSize: size, Entries: []*verifier.EntryResponse{}}
		for i := from; i < from+limit && i < size; i++ {
			e := a.l.entries[i]
			if e == nil {
				http.Error(w, "leaf record not found", http.StatusNotFound)
				return
			}
			resp.Entries = append(resp.Entries, &verifier.EntryResponse{Index: i, LeafRecord: e.LeafRecord, Envelope: e.Body, Findings: e.Findings})
		}
		if from+limit < size {
			next := from + limit
			resp.Next = &next
		}
		reply(resp)
	case "/v1/erasures":
		reply(verifier.ErasureList{Proposals: a.proposals})
	default:
		http.NotFound(w, r)
	}
}

// TestAuditOverHTTP: the FG's audit of a running ledger over its read API
// reports what the audit of the same log read directly reports, paging
// through checkpoints and entries; a page with a deleted leaf record is
// read again leaf by leaf, so that the audit names that leaf; the erasure
// proposals come with it; and a wrong token stops the audit with
// ErrUnauthorized.
func TestAuditOverHTTP(t *testing.T) {
	l := newMemLog(t)
	l.fill(3, 12)
	const victim = 17
	l.entries[victim] = nil
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	api := &readAPI{l: l, token: "fg-token", cpPage: 2,
		proposals: []verifier.ErasureProposal{{ID: "p1", LeafIndex: 3, Ground: "avg-17-1-a", Scope: "central", Status: verifier.ErasureWithdrawn, ExpiresAt: at}}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey, Now: func() time.Time { return at }}

	direct, err := audit.Run(context.Background(), withTiles{l}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := &audit.HTTPSource{URL: srv.URL + "/", Token: "fg-token", HTTP: srv.Client(), PageSize: 5}
	over, err := audit.Run(context.Background(), src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(over.Problems) != 1 || over.Problems[0].Check != audit.CheckLeafMissing || *over.Problems[0].Leaf != victim {
		t.Fatalf("over HTTP: problems %q, want leaf %d missing", problemsOf(over), victim)
	}
	oc, dc := over.Checkpoints, direct.Checkpoints
	if over.TreeSize != direct.TreeSize || over.Entries != direct.Entries || oc.Count != dc.Count || oc.Verified != dc.Verified || oc.Count != len(l.cps) {
		t.Errorf("over HTTP: size %d, entries %+v, checkpoints %d/%d; read directly: %d, %+v, %d/%d",
			over.TreeSize, over.Entries, oc.Verified, oc.Count, direct.TreeSize, direct.Entries, dc.Verified, dc.Count)
	}
	if ea := over.ErasuresOnRequest; ea == nil || !ea.Available || len(ea.Proposals) != 1 || ea.ByStatus[verifier.ErasureWithdrawn] != 1 {
		t.Errorf("erasures over HTTP: %+v", over.ErasuresOnRequest)
	}
	if pages := api.pages.Load(); pages < int64(len(l.entries)/5)+5 {
		t.Errorf("%d entry pages read: the page with the deleted leaf was not read again leaf by leaf", pages)
	}

	bad := &audit.HTTPSource{URL: srv.URL, Token: "wrong", HTTP: srv.Client()}
	if _, err := audit.Run(context.Background(), bad, cfg); !errors.Is(err, audit.ErrUnauthorized) {
		t.Errorf("a wrong token: %v, want ErrUnauthorized", err)
	}
}
