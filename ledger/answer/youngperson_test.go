package answer_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// TestYoungPerson16Plus: a parent asks about a child whom two of three
// disclosures in scope show to be 16 or over (one of them withheld). The
// release is refused, naming both leaves, and nothing is logged; a consent
// reference holding a number like a BSN is refused; with the young
// person's consent recorded by the second desk user the answer goes out,
// its entry records the decision, the bundle verifies, the Dutch report
// and the FG's audit say it. A logged answer that omits the decision for
// a 16-plus disclosure it shows does not verify.
func TestYoungPerson16Plus(t *testing.T) {
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	t.Cleanup(func() { l.Close(); s.Close() })
	a := answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})
	child := e.Gen.Children()[0]
	var idx []uint64
	for _, band := range []events.AgeBand{events.Age12To15, events.Age16Plus, events.Age16Plus} {
		d, _ := e.Gen.Next()
		d.Subject.Pseudonym, d.SubjectAgeBand = child.Pseudonym, band
		out := submit(t, l, []ledger.Submission{e.Submission(t, l, e.Sign(t, d))})
		idx = append(idx, out[0].Index)
	}
	if _, err := e.SubmitEvents(t, l, 10); err != nil {
		t.Fatal(err)
	}
	scope, err := a.DeskScope("")
	if err != nil {
		t.Fatal(err)
	}
	ar := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: scope,
		Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: e.Demo.SubjectKey.ID, Pseudonym: child.Pseudonym}},
		RequestedBy: "desk-1", RequestedByCredential: "1"}
	if err := a.RegisterAccess(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	desk2 := answer.DeskUser{Name: "desk-2", Credential: "2"}
	withheld := []answer.Withhold{{Index: idx[2], Ground: verifier.WithholdAVG23}}

	before := l.Head().Size
	_, err = a.ReleaseAccess(t.Context(), scope, ar.ID, desk2, answer.Release{Withheld: withheld})
	var young *answer.YoungPersonError
	if !errors.As(err, &young) || !errors.Is(err, answer.ErrYoungPerson16Plus) || !slices.Equal(young.Leaves, idx[1:]) {
		t.Fatalf("release to a parent of a child of 16 or over: %v; want a YoungPersonError naming leaves %v", err, idx[1:])
	}
	if _, err := a.ReleaseAccess(t.Context(), scope, ar.ID, desk2, answer.Release{Withheld: withheld, YoungPersonConsent: "toestemming 123456789"}); !errors.Is(err, answer.ErrAccessInvalid) {
		t.Fatalf("a consent reference with a nine-digit number: %v, want ErrAccessInvalid", err)
	}
	if got, _ := a.Access(t.Context(), ar.ID); got.Status != answer.AccessRegistered || l.Head().Size != before {
		t.Fatalf("after the refusals: status %s, tree %d (was %d); want the request registered and nothing logged", got.Status, l.Head().Size, before)
	}

	const ref = "dossier JZ-2026/114"
	r, err := a.ReleaseAccess(t.Context(), scope, ar.ID, desk2, answer.Release{Withheld: withheld, YoungPersonConsent: ref})
	if err != nil {
		t.Fatalf("release with the young person's consent: %v", err)
	}
	data, err := a.AccessBundle(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := verifier.VerifyBundle(data, e.Keys, e.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	y := vb.Answer.YoungPerson
	if y == nil || y.Decision != verifier.YoungPersonConsented || y.ConsentReference != ref || !slices.Equal(y.Leaves, idx[1:]) {
		t.Fatalf("the answer entry records %+v; want the consent %q for leaves %v", y, ref, idx[1:])
	}
	var page bytes.Buffer
	if err := report.WriteInzage(&page, vb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Jongere van 16 jaar of ouder", "16 jaar of ouder", "toestemming", ref} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the Dutch report does not say %q", want)
		}
	}
	rep, err := audit.Run(t.Context(), l.AuditSource(), audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Answers) != 1 || rep.Answers[0].YoungPerson == nil || rep.Answers[0].YoungPerson.ConsentReference != ref {
		t.Fatalf("the audit: ok %v, answers %+v, problems %v", rep.OK, rep.Answers, rep.Problems)
	}

	// An answer logged without the decision (as a ledger that skipped the
	// check would log it) does not make a bundle that verifies: the
	// builder checks its bundle with the verifier, which refuses it.
	body, err := verifier.ParseAnswerBody(vb.Bundle.Answer.Body)
	if err != nil {
		t.Fatal(err)
	}
	body.Request.ID, body.YoungPerson = "no-decision", nil
	raw, err := verifier.MarshalAnswerBody(body)
	if err != nil {
		t.Fatal(err)
	}
	at, _, err := l.AppendAnswer(t.Context(), &ledger.AnswerRequest{RequestID: body.Request.ID, Body: raw})
	if err != nil {
		t.Fatal(err)
	}
	w := map[uint64]string{}
	for _, x := range body.Withheld {
		w[x.Index] = x.Ground
	}
	_, _, err = a.BuildBundle(t.Context(), answer.BundleRequest{IDType: body.Subject.IDType, Pseudonyms: body.Subject.Pseudonyms,
		Withheld: w, Request: body.Request, CreatedAt: body.CreatedAt, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey,
		Answer: &answer.LoggedAnswer{Index: at, Body: body, Raw: raw}})
	if err == nil || !strings.Contains(err.Error(), "16 or over") {
		t.Fatalf("a bundle whose answer records no consent for a 16-plus disclosure: %v; want it refused", err)
	}
}
