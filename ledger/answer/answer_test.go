package answer_test

import (
	"context"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
)

// TestErasureProposalExpires: a proposal nobody confirmed lapses.
func TestErasureProposalExpires(t *testing.T) {
	e := testledger.New(t)
	now := time.Now()
	clock := func() time.Time { return now }
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Now: func() time.Time { return clock() }})
	a := answer.New(answer.Config{Ledger: l, ErasureExpiry: time.Hour})
	defer s.Close()
	defer l.Close()
	out, err := e.SubmitEvents(t, l, 1)
	if err != nil || out[0].Err != nil {
		t.Fatal(err, out)
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.ProposeErasure(context.Background(), scope, answer.DeskUser{Name: "a", Credential: "1"}, out[0].Index, "avg-17-1-a")
	if err != nil {
		t.Fatal(err)
	}
	clock = func() time.Time { return now.Add(time.Hour + time.Second) }
	if _, err := a.ConfirmErasure(context.Background(), scope, answer.DeskUser{Name: "b", Credential: "2"}, p.ID); err != answer.ErrErasureExpired {
		t.Fatalf("confirming an expired proposal: %v, want ErrErasureExpired", err)
	}
	// Expired is not open: the disclosure can be proposed again.
	if _, err := a.ProposeErasure(context.Background(), scope, answer.DeskUser{Name: "a", Credential: "1"}, out[0].Index, "avg-17-1-a"); err != nil {
		t.Fatalf("proposing again after expiry: %v", err)
	}
}

// TestRequestStaysWithItsScope: an open inzage request registered by the
// central desk is still visible and releasable after a covenant version
// removed a party (the stored party list then differs from the day's).
func TestRequestStaysWithItsScope(t *testing.T) {
	e := testledger.New(t)
	l1, s1 := e.Open(t, ledger.Config{IdleCosign: -1})
	a1 := answer.New(answer.Config{Ledger: l1, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	if _, err := e.SubmitEvents(t, l1, 5); err != nil {
		t.Fatal(err)
	}
	scope, err := a1.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	ar := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: e.Gen.Children()[0].Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := a1.RegisterAccess(context.Background(), ar); err != nil {
		t.Fatal(err)
	}
	l1.Close()
	s1.Close()
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Covenant: e.CovenantWithout(t, "de-kleine-schans")})
	defer s.Close()
	defer l.Close()
	a := answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	now, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	if !now.Covers("de-kleine-schans") {
		t.Error("the central desk's scope lost a party that left (it stays the controller of its disclosures)")
	}
	if _, err := a.ReleaseAccess(context.Background(), now, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, nil); err != nil {
		t.Fatalf("releasing the central desk's request after a party left: %v", err)
	}
}
