package report

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// goldenBundle verifies the verifier's golden bundle (verifier/testdata/
// bundle: three disclosures of one child, one withheld, one erased), the
// same bytes other implementations are held to.
func goldenBundle(t *testing.T) *verifier.VerifiedBundle {
	t.Helper()
	dir := filepath.Join("..", "testdata", "bundle")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("golden bundle: %v", err)
		}
		return string(b)
	}
	keys, err := verifier.ParseLogKeys(read("log.vkey"), read("cosigner.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	vb, err := verifier.VerifyBundle([]byte(read("bundle.json")), keys, strings.TrimSpace(read("admin.pub")))
	if err != nil {
		t.Fatalf("golden bundle: %v", err)
	}
	return vb
}

// TestInzageOfGoldenBundle renders the parent's report of the golden
// bundle in this package, so that the report's own tests reach the view it
// builds: every disclosure with its organisation, purpose, legal ground and
// leaf, the withheld entry with its ground in Dutch, the erased entry, the
// checkpoint and the command to check it, and nothing fetched from
// elsewhere. (The fuller checks against a live log, and in a browser, are in
// verifier's report_test.go.)
func TestInzageOfGoldenBundle(t *testing.T) {
	vb := goldenBundle(t)
	var buf bytes.Buffer
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(buf.String())
	want := []string{
		vb.Covenant().Name,
		withholdLabels[verifier.WithholdAVG23],
		vb.Checkpoint.Origin,
		"spoor verify " + DefaultBundleFile,
	}
	for _, d := range vb.Disclosures {
		c, dis := d.Covenant, d.Disclosure
		want = append(want, c.PartyName(dis.Discloser), c.PurposeLabel(dis.Purpose), c.GroundLabel(dis.LegalBasis.Ground))
	}
	for _, e := range vb.Erased {
		want = append(want, e.RuleID)
	}
	for _, s := range want {
		if !strings.Contains(page, s) {
			t.Errorf("the report does not show %q", s)
		}
	}
	if len(vb.Disclosures) != 3 || len(vb.Withheld) != 1 || len(vb.Erased) != 1 {
		t.Fatalf("golden bundle: %d disclosures, %d withheld, %d erased", len(vb.Disclosures), len(vb.Withheld), len(vb.Erased))
	}
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url(", "http://", "https://"} {
		if strings.Contains(buf.String(), bad) {
			t.Errorf("the report contains %q", bad)
		}
	}

	// A bundle that was not verified is refused, and nothing is written.
	buf.Reset()
	if err := WriteInzage(&buf, &verifier.VerifiedBundle{}); err == nil || buf.Len() != 0 {
		t.Errorf("WriteInzage of an unverified bundle: %v, %d bytes written", err, buf.Len())
	}
}

// TestInzageOfGoldenBundleVariants renders the golden bundle with the
// parts a parent's report words for itself changed in place: a finding on
// a data category, consent with its giver, a correction of an earlier
// disclosure, a category and a recipient the covenant does not name, and a
// single disclosure. Each must come out in Dutch words, never as a raw id.
func TestInzageOfGoldenBundleVariants(t *testing.T) {
	vb := goldenBundle(t)
	ds := vb.Disclosures
	first, second, third := ds[0].Disclosure, ds[1].Disclosure, ds[2].Disclosure
	rule := events.FindingRules()[0]
	ds[0].Findings = []events.Finding{{Rule: rule, Field: "categories[0]", Message: "m"}}
	second.Consent = &events.Consent{GivenBy: events.ConsentChildAndParents, Reference: "TOESTEMMING-7"}
	second.Corrects = first.ID
	third.Corrects = "an-id-not-in-this-bundle"
	third.Categories = append(third.Categories, "geen-categorie-van-het-convenant")
	third.Recipients = append(third.Recipients, "geen-partij-van-het-convenant")
	// Consent is the basis of the third, but none was recorded; the first
	// rests on another ground, without consent.
	first.Consent, first.LegalBasis.Ground, first.LegalBasis.Exception = nil, "e", ""
	third.Consent, third.LegalBasis.Ground = nil, "a"

	var buf bytes.Buffer
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(buf.String())
	for _, s := range []string{
		events.FindingLabelNL(rule) + ": " + ds[0].Covenant.CategoryLabel(first.Categories[0]),
		"gegeven door " + consentGiverLabels[events.ConsentChildAndParents] + " (kenmerk: TOESTEMMING-7)",
		"Er is geen toestemming vastgelegd.",
		"Dit is een correctie van verstrekking",
		"Dit is een correctie van een eerdere vastlegging van dezelfde organisatie.",
		verifier.UnknownValueNL("geen-categorie-van-het-convenant"),
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the report does not show %q", s)
		}
	}
	// Consent is shown for the second (recorded) and the third (its
	// basis), not for the first: there, "no consent" would suggest that
	// consent was needed.
	if n := strings.Count(page, "<dt>Toestemming</dt>"); n != 2 {
		t.Errorf("%d disclosures show consent, want 2 (the one with consent recorded, the one based on consent)", n)
	}
	if n := strings.Count(page, "Er is geen toestemming vastgelegd."); n != 1 {
		t.Errorf("\"Er is geen toestemming vastgelegd.\" shown %d times, want once (only where consent is the basis)", n)
	}
	if !strings.Contains(page, "Toestemming intrekken (AVG artikel 7)") {
		t.Error("consent is a basis, but the right to withdraw it is not shown")
	}
	for _, raw := range []string{"geen-partij-van-het-convenant", "geen-categorie-van-het-convenant"} {
		if strings.Contains(page, raw) {
			t.Errorf("the report shows %q, an id outside the covenant, as it is", raw)
		}
	}

	// One disclosure: the period is one day.
	vb.Disclosures = ds[:1]
	buf.Reset()
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	if day := inzageDate(first.OccurredAt); !strings.Contains(html.UnescapeString(buf.String()), "op "+day) {
		t.Errorf("a single disclosure's period is not \"op %s\"", day)
	}
}

// TestInzageSaysWhyErased: an entry erased at the end of its retention
// period and one erased on request are told apart, the request's ground in
// Dutch, never as a raw rule id alone.
func TestInzageSaysWhyErased(t *testing.T) {
	vb := goldenBundle(t)
	var buf bytes.Buffer
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	if page := html.UnescapeString(buf.String()); !strings.Contains(page, "de bewaartermijn was voorbij") {
		t.Error("an entry erased by retention does not say so")
	}
	vb.Erased[0].RuleID = verifier.ErasureRulePrefix + "avg-17-1-a"
	buf.Reset()
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(buf.String())
	if want := "op verzoek: " + ErasureGroundLabel("avg-17-1-a"); !strings.Contains(page, want) || ErasureGroundLabel("avg-17-1-a") == "avg-17-1-a" {
		t.Errorf("an entry erased on request does not show %q", want)
	}
	if strings.Contains(page, "de bewaartermijn was voorbij") {
		t.Error("an entry erased on request is said to have reached the end of its retention period")
	}
}

// failingWriter fails every write, as a full disk or a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestReportWriteErrors: a report that cannot be written says so, with
// the writer's error wrapped, for the parent's and the FG's report alike.
func TestReportWriteErrors(t *testing.T) {
	if err := WriteInzage(failingWriter{}, goldenBundle(t)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteInzage to a failing writer: %v", err)
	}
	rep := &audit.Report{Origin: "spoor.example/test", ProblemCounts: map[audit.Check]int{}}
	if err := WriteAudit(failingWriter{}, rep); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteAudit to a failing writer: %v", err)
	}
}

// section returns the part of page from the heading with id up to the
// next h2.
func section(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<h2 id="`+id+`"`)
	if start < 0 {
		t.Fatalf("the report has no section %q", id)
	}
	rest := page[start+1:]
	if end := strings.Index(rest, "<h2"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// TestInzageRetention: every disclosure says until when it is kept (the
// day its retention period ends, counted from when the register recorded
// it) and how long that period is, by the covenant version it was checked
// against, not by the newest one.
func TestInzageRetention(t *testing.T) {
	vb := goldenBundle(t)
	// The second disclosure was checked against a later version that keeps
	// its categories 400 days.
	c := *vb.Disclosures[1].Covenant
	c.Version = 7
	c.Retention.Categories = map[string]int{}
	for _, id := range vb.Disclosures[1].Disclosure.Categories {
		c.Retention.Categories[id] = 400
	}
	vb.Disclosures[1].Covenant = &c

	var buf bytes.Buffer
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(buf.String())
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	months := strings.Fields("januari februari maart april mei juni juli augustus september oktober november december")
	for i, vd := range vb.Disclosures {
		days := vd.Covenant.RetentionDaysFor(vd.Disclosure.Categories)
		due := vd.IntegratedAt.Add(time.Duration(days) * 24 * time.Hour).In(loc)
		period := fmt.Sprintf("%d dagen", days)
		if days%365 == 0 {
			period = fmt.Sprintf("%d jaar", days/365)
		}
		want := fmt.Sprintf("<dt>Bewaard tot</dt><dd>%d %s %d. Daarna wordt deze vastlegging verwijderd. <span class=\"note\">(bewaartermijn %s na vastlegging, volgens versie %d van het convenant)",
			due.Day(), months[due.Month()-1], due.Year(), period, vd.Covenant.Version)
		if !strings.Contains(page, want) {
			t.Errorf("disclosure %d (leaf %d): the report does not show %q", i, vd.Index, want)
		}
	}
	if !strings.Contains(page, "bewaartermijn 400 dagen na vastlegging, volgens versie 7 van het convenant") {
		t.Error("the retention is not the one of the covenant version the disclosure was checked against")
	}

	// Made after the period ended: the report says so, for every one.
	vb.Bundle.CreatedAt = vb.Bundle.CreatedAt.Add(100 * 365 * 24 * time.Hour)
	buf.Reset()
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "Die datum is voorbij."); n != len(vb.Disclosures) {
		t.Errorf("%d of %d disclosures past their retention say so", n, len(vb.Disclosures))
	}
}

func TestRetentionPeriodNL(t *testing.T) {
	for days, want := range map[int]string{1: "1 dag", 30: "30 dagen", 365: "1 jaar", 400: "400 dagen", 730: "2 jaar", 2555: "7 jaar"} {
		if got := retentionPeriodNL(days); got != want {
			t.Errorf("retentionPeriodNL(%d) = %q, want %q", days, got, want)
		}
	}
}

// TestInzageRights: the report tells the parent the rights of AVG art. 16,
// 17, 18 and 21, and the right to complain to the Autoriteit
// Persoonsgegevens, whose website is named as text, not as a link; the
// right to withdraw consent only where consent is the basis of a
// disclosure.
func TestInzageRights(t *testing.T) {
	vb := goldenBundle(t)
	for _, vd := range vb.Disclosures {
		vd.Disclosure.LegalBasis.Ground, vd.Disclosure.LegalBasis.Exception, vd.Disclosure.Consent = "e", "", nil
	}
	var buf bytes.Buffer
	if err := WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	rights := html.UnescapeString(section(t, buf.String(), "rechten"))
	for _, want := range []string{
		"Verbeteren (AVG artikel 16)", "Verwijderen (AVG artikel 17)", "Beperken (AVG artikel 18)", "Bezwaar maken (AVG artikel 21)",
		"klacht indienen bij de Autoriteit Persoonsgegevens", "autoriteitpersoonsgegevens.nl", "kenmerk van uw verzoek: " + vb.Bundle.Request.ID,
	} {
		if !strings.Contains(rights, want) {
			t.Errorf("the rights do not show %q", want)
		}
	}
	if strings.Contains(buf.String(), "<a href=\"http") || strings.Contains(rights, "<a ") {
		t.Error("the rights link out; the page must load nothing")
	}
	if strings.Contains(rights, "Toestemming intrekken") || strings.Contains(buf.String(), "<dt>Toestemming</dt>") {
		t.Error("no disclosure rests on consent, yet the report speaks of consent")
	}
}

// TestInzageOrganisations: the report says which organisations the answer
// covers. Under a central desk that is every party; under a party's own
// desk it is that party, and the covenant's other parties are listed as
// not covered, without saying whether they hold anything.
func TestInzageOrganisations(t *testing.T) {
	vb := goldenBundle(t)
	cov := vb.Covenant()
	if len(cov.Parties) < 2 {
		t.Fatal("golden covenant: fewer than two parties")
	}
	render := func() string {
		var buf bytes.Buffer
		if err := WriteInzage(&buf, vb); err != nil {
			t.Fatal(err)
		}
		return html.UnescapeString(section(t, buf.String(), "organisaties"))
	}

	vb.Bundle.Scope = verifier.BundleScope{CentralDesk: true}
	for _, p := range cov.Parties {
		vb.Bundle.Scope.Parties = append(vb.Bundle.Scope.Parties, p.ID)
	}
	orgs := render()
	for _, p := range cov.Parties {
		if !strings.Contains(orgs, "<li>"+p.Name+"</li>") {
			t.Errorf("central desk: %s is not listed as covered", p.Name)
		}
	}
	if strings.Contains(orgs, "geldt niet voor") {
		t.Error("central desk: the report names organisations it does not cover")
	}

	own := cov.Parties[0]
	vb.Bundle.Scope = verifier.BundleScope{Parties: []string{own.ID}}
	orgs = render()
	covered, notCovered, ok := strings.Cut(orgs, "Het geldt niet voor")
	if !ok {
		t.Fatal("a party's own desk: the report does not list the organisations it does not cover")
	}
	if !strings.Contains(covered, "<li>"+own.Name+"</li>") || strings.Contains(notCovered, "<li>"+own.Name+"</li>") {
		t.Errorf("a party's own desk: %s is not the one covered", own.Name)
	}
	for _, p := range cov.Parties[1:] {
		if !strings.Contains(notCovered, "<li><strong>"+p.Name+"</strong>") || strings.Contains(covered, "<li>"+p.Name+"</li>") {
			t.Errorf("a party's own desk: %s is not listed as not covered", p.Name)
		}
	}
	if !strings.Contains(notCovered, "Dat zegt niets over de vraag of zij gegevens over uw kind hebben.") {
		t.Error("a party's own desk: the report does not say that the list says nothing about what the others hold")
	}
}

// TestInzageContacts: the report prints the desk's and the FG's contact
// from the newest covenant version, every other party's desk under a
// party's own desk, and "Contactgegevens onbekend" for a covenant that
// names none (every version before contacts existed).
func TestInzageContacts(t *testing.T) {
	vb := goldenBundle(t)
	last := vb.Covenants[len(vb.Covenants)-1]
	render := func(id string) string {
		var buf bytes.Buffer
		if err := WriteInzage(&buf, vb); err != nil {
			t.Fatal(err)
		}
		return html.UnescapeString(section(t, buf.String(), id))
	}
	if got := render("contact"); strings.Count(got, "Contactgegevens onbekend") != 2 {
		t.Errorf("a covenant without contacts: want the desk's and the FG's contact unknown, got\n%s", got)
	}

	c := *last.Signed.Covenant
	c.Parties = slices.Clone(c.Parties)
	desk := &events.Contact{Name: "Privacybalie Test", Email: "balie@test.example", Phone: "030 000 0000", Address: "Postbus 1, 1000 AA Test"}
	fg := &events.Contact{Name: "FG Test", Role: "functionaris gegevensbescherming", Email: "fg@test.example"}
	c.Contact = &events.CovenantContacts{Desk: desk, FG: fg}
	c.Parties[1].Contact = &events.Contact{Name: "Loket Twee", Phone: "020 111 1111"}
	signed := *last.Signed
	signed.Covenant = &c
	vb.Covenants[len(vb.Covenants)-1] = &verifier.VerifiedCovenant{Index: last.Index, IntegratedAt: last.IntegratedAt, Signed: &signed}

	vb.Bundle.Scope = verifier.BundleScope{CentralDesk: true}
	got := render("contact")
	for _, want := range []string{desk.Name, desk.Email, desk.Phone, desk.Address, fg.Name, fg.Role, fg.Email} {
		if !strings.Contains(got, want) {
			t.Errorf("central desk: the contact section lacks %q", want)
		}
	}
	if strings.Contains(got, "onbekend") {
		t.Error("central desk: a known contact is shown as unknown")
	}

	vb.Bundle.Scope = verifier.BundleScope{Parties: []string{c.Parties[0].ID}}
	got = render("contact")
	if strings.Contains(got, desk.Name) || !strings.Contains(got, "Contactgegevens onbekend") || !strings.Contains(got, fg.Email) {
		t.Errorf("a party's own desk without a contact: want it unknown (not the central desk's), the FG known; got\n%s", got)
	}
	orgs := render("organisaties")
	if !strings.Contains(orgs, "Loket Twee") || !strings.Contains(orgs, "020 111 1111") {
		t.Error("a party's own desk: another party's desk contact is not listed")
	}
}

// TestInzageBundleFile: the report names the bundle by the file name the
// caller wrote, in the text and in the command, and bundle.json when not
// told.
func TestInzageBundleFile(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{filepath.Join("out", "inzage-7.json"), "inzage-7.json"},
		{"", DefaultBundleFile},
	} {
		var buf bytes.Buffer
		if err := WriteInzage(&buf, goldenBundle(t), WithBundleFile(tc.name)); err != nil {
			t.Fatal(err)
		}
		page := html.UnescapeString(buf.String())
		if !strings.Contains(page, "het bestand <code>"+tc.want+"</code>") || !strings.Contains(page, "spoor verify "+tc.want+" --vkey") {
			t.Errorf("WithBundleFile(%q): the report does not name %s", tc.name, tc.want)
		}
	}
}
