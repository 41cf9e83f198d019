package report

import (
	"bytes"
	"errors"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
