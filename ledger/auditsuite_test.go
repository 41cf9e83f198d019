package ledger_test

// The audit-source suite on the three implementations (issue 19): one log
// with every kind of entry (disclosures across tiles, a covenant, an
// erasure on request with its tombstone, an answer on the record), read
// through the running ledger, its store and its HTTP API with the FG's
// token; each source is held to the clauses of audit.Source
// (verifier/audit/sourcetest), and the three reports must be the same,
// field by field.

import (
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/audit/sourcetest"
)

func TestAuditSourcesConform(t *testing.T) {
	e := testledger.New(t)
	sl := e.Serve(t)
	sl.Grow(t, 600)
	ctx := t.Context()
	desk := answer.New(answer.Config{Ledger: sl.L, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	central := verifier.BundleScope{CentralDesk: true}
	first, second := answer.DeskUser{Name: "desk-1", Credential: "c1"}, answer.DeskUser{Name: "desk-2", Credential: "c2"}
	p, err := desk.ProposeErasure(ctx, central, first, 42, "avg-17-1-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := desk.ConfirmErasure(ctx, central, second, p.ID); err != nil {
		t.Fatal(err)
	}
	req := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: e.Gen.Children()[0].Pseudonym}},
		Scope:      central, RequestedBy: first.Name, RequestedByCredential: first.Credential}
	if err := desk.RegisterAccess(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.ReleaseAccess(ctx, central, req.ID, second, answer.Release{}); err != nil {
		t.Fatal(err)
	}
	sl.Grow(t, sl.L.Head().Size+30)

	sources := map[string]audit.Source{
		"ledger": sl.L.AuditSource(),
		"store":  ledger.NewStoreAuditSource(sl.Store, nil),
		// Small pages, so that every walk crosses several.
		"http": &audit.HTTPSource{URL: sl.Srv.URL, Token: testledger.FGToken, PageSize: 7},
	}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	reports := map[string]*audit.Report{}
	for name, src := range sources {
		sourcetest.Check(t, name, src, e.Keys)
		rep, err := audit.Run(ctx, src, audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatalf("audit through the %s source: %v", name, err)
		}
		if !rep.OK {
			t.Errorf("the %s source's audit of a clean log fails: %v", name, rep.Problems)
		}
		reports[name] = rep
	}
	r := reports["ledger"]
	if r.Entries.Erased != 1 || len(r.Answers) != 1 || r.TreeSize != sl.L.Head().Size {
		t.Errorf("the log under test is not what was made: erased %d, answers %d, size %d of %d",
			r.Entries.Erased, len(r.Answers), r.TreeSize, sl.L.Head().Size)
	}
	sourcetest.Same(t, reports)
}
