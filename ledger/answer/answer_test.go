package answer_test

import (
	"context"
	"errors"
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
	if _, err := a.ReleaseAccess(context.Background(), now, ar.ID, answer.DeskUser{Name: "desk-2", Credential: "2"}, answer.Release{}); err != nil {
		t.Fatalf("releasing the central desk's request after a party left: %v", err)
	}
}

// TestErasureTakesTwoDeskUsers: a proposal names one of the six grounds
// and an identified desk user; one open proposal per disclosure; the
// proposer cannot confirm it, a desk user of another scope does not see
// it, a second desk user confirms it with a tombstone under
// "erasure:"+ground, and a decided proposal cannot be decided again. Any
// desk user of the scope may withdraw one.
func TestErasureTakesTwoDeskUsers(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	a := answer.New(answer.Config{Ledger: l, ErasureExpiry: time.Hour})
	out, err := e.SubmitEvents(t, l, 2)
	if err != nil || out[0].Err != nil || out[1].Err != nil {
		t.Fatal(err, out)
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := answer.DeskUser{Name: "alice", Credential: "1"}, answer.DeskUser{Name: "bob", Credential: "2"}
	leaf := out[0].Index

	if _, err := a.ProposeErasure(ctx, scope, alice, leaf, "because"); !errors.Is(err, answer.ErrErasureInvalid) {
		t.Errorf("a ground outside AVG art. 17(1): %v", err)
	}
	if _, err := a.ProposeErasure(ctx, scope, answer.DeskUser{}, leaf, "avg-17-1-a"); !errors.Is(err, answer.ErrErasureInvalid) {
		t.Errorf("an unidentified desk user: %v", err)
	}
	p, err := a.ProposeErasure(ctx, scope, alice, leaf, "avg-17-1-d")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != verifier.ErasureProposed || p.Ground != "avg-17-1-d" || p.Scope != scope.Identity() || p.ProposedByCredential != "1" {
		t.Errorf("proposal %+v", p)
	}
	if _, err := a.ProposeErasure(ctx, scope, bob, leaf, "avg-17-1-a"); !errors.Is(err, answer.ErrErasureOpen) {
		t.Errorf("a second open proposal for one disclosure: %v", err)
	}
	if _, err := a.ConfirmErasure(ctx, scope, alice, p.ID); !errors.Is(err, answer.ErrErasureSamePerson) {
		t.Errorf("the proposer confirms: %v", err)
	}
	other := verifier.BundleScope{Parties: []string{"another-party"}}
	if _, err := a.ConfirmErasure(ctx, other, bob, p.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a desk user of another scope confirms: %v", err)
	}
	done, err := a.ConfirmErasure(ctx, scope, bob, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != verifier.ErasureConfirmed || done.TombstoneIndex == nil || done.DecidedBy != "bob" {
		t.Fatalf("confirmed: %+v", done)
	}
	stored, err := l.ErasureProposal(ctx, p.ID)
	if err != nil || stored.Status != verifier.ErasureConfirmed || stored.TombstoneIndex == nil || *stored.TombstoneIndex != *done.TombstoneIndex {
		t.Errorf("the stored decision: %+v, %v", stored, err)
	}
	if _, err := a.WithdrawErasure(ctx, scope, alice, p.ID); !errors.Is(err, answer.ErrErasureDecided) {
		t.Errorf("withdrawing a confirmed proposal: %v", err)
	}

	q, err := a.ProposeErasure(ctx, scope, alice, out[1].Index, "avg-17-1-b")
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.WithdrawErasure(ctx, scope, alice, q.ID)
	if err != nil || w.Status != verifier.ErasureWithdrawn || w.DecidedBy != "alice" {
		t.Fatalf("withdraw: %+v, %v", w, err)
	}
	if _, err := a.ConfirmErasure(ctx, scope, bob, q.ID); !errors.Is(err, answer.ErrErasureDecided) {
		t.Errorf("confirming a withdrawn proposal: %v", err)
	}
}

// TestAccessRequestLifecycle: a request is refused unless it names an id
// type, one to sixteen well-formed pseudonyms, who asked, and a relation
// that fits the child's age; a registered one is released by a second desk
// user of its scope only, once, with known withholding grounds; and only a
// released one is answered with a bundle, which verifies.
func TestAccessRequestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	defer s.Close()
	defer l.Close()
	a := answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	if _, err := e.SubmitEvents(t, l, 20); err != nil {
		t.Fatal(err)
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	good := func() *answer.AccessRequest {
		return &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
			Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: e.Gen.Children()[0].Pseudonym}},
			RequestedBy: "desk-1", RequestedByCredential: "1"}
	}
	for name, edit := range map[string]func(r *answer.AccessRequest){
		"no id type":          func(r *answer.AccessRequest) { r.IDType = "" },
		"no pseudonym":        func(r *answer.AccessRequest) { r.Pseudonyms = nil },
		"short pseudonym":     func(r *answer.AccessRequest) { r.Pseudonyms[0].Pseudonym = "abcd" },
		"no key id":           func(r *answer.AccessRequest) { r.Pseudonyms[0].KeyID = "" },
		"nobody asked":        func(r *answer.AccessRequest) { r.RequestedBy = "" },
		"parent of a 16-year": func(r *answer.AccessRequest) { r.Child16OrOlder = true },
		"young person of 15":  func(r *answer.AccessRequest) { r.Relation = verifier.RelationYoungPerson },
		"an unknown relation": func(r *answer.AccessRequest) { r.Relation = "buurvrouw" },
	} {
		r := good()
		edit(r)
		if err := a.RegisterAccess(ctx, r); !errors.Is(err, answer.ErrAccessInvalid) {
			t.Errorf("%s: %v, want ErrAccessInvalid", name, err)
		}
	}
	young := good()
	young.Relation, young.Child16OrOlder = verifier.RelationYoungPerson, true
	if err := a.RegisterAccess(ctx, young); err != nil {
		t.Errorf("a young person of 16 asks: %v", err)
	}

	r := good()
	if err := a.RegisterAccess(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ID == "" || r.Status != answer.AccessRegistered {
		t.Fatalf("registered: %+v", r)
	}
	if _, err := a.AccessBundle(ctx, r); !errors.Is(err, answer.ErrAccessInvalid) {
		t.Errorf("a bundle for a request not released: %v", err)
	}
	if _, err := a.AccessInScope(ctx, verifier.BundleScope{Parties: []string{"another-party"}}, r.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("another scope reads the request: %v", err)
	}
	if _, err := a.ReleaseAccess(ctx, scope, r.ID, answer.DeskUser{Name: "desk-1", Credential: "1"}, answer.Release{}); !errors.Is(err, answer.ErrAccessSamePerson) {
		t.Errorf("the registering desk user releases: %v", err)
	}
	desk2 := answer.DeskUser{Name: "desk-2", Credential: "2"}
	if _, err := a.ReleaseAccess(ctx, scope, r.ID, desk2, answer.Release{Withheld: []answer.Withhold{{Index: 1, Ground: "geheim"}}}); !errors.Is(err, answer.ErrAccessInvalid) {
		t.Errorf("an unknown withholding ground: %v", err)
	}
	released, err := a.ReleaseAccess(ctx, scope, r.ID, desk2, answer.Release{})
	if err != nil || released.Status != answer.AccessReleased || released.ReleasedBy != "desk-2" {
		t.Fatalf("release: %+v, %v", released, err)
	}
	if _, err := a.ReleaseAccess(ctx, scope, r.ID, desk2, answer.Release{}); !errors.Is(err, answer.ErrAccessReleased) {
		t.Errorf("releasing twice: %v", err)
	}
	data, err := a.AccessBundle(ctx, released)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(e.LogVkey, e.CosVkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.VerifyBundle(data, keys, e.Demo.AdminVkey); err != nil {
		t.Errorf("the answer does not verify: %v", err)
	}
}
