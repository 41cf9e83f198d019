package verifier_test

// The Dutch inzage report rendered from real verified bundles (the
// fixtures of export_test.go): verifier/report imports this package, so
// these tests are external ones here, beside the log they build.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// Independent of the report's own formatting code: the Dutch month names
// and the zone the report promises.
var testMonthsNL = strings.Fields("januari februari maart april mei juni juli augustus september oktober november december")

func testDateNL(t *testing.T, at time.Time) string {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	at = at.In(loc)
	return fmt.Sprintf("%d %s %d om %02d:%02d", at.Day(), testMonthsNL[at.Month()-1], at.Year(), at.Hour(), at.Minute())
}

// checkReportText checks that text (the page as a reader sees it) shows
// every disclosure's date, organisations and Dutch category labels, and no
// BSN or pseudonym of any synthetic child.
func checkReportText(t *testing.T, text string, vb *verifier.VerifiedBundle, children []synth.Child) {
	t.Helper()
	for _, vd := range vb.Disclosures {
		d, c := vd.Disclosure, vd.Covenant
		want := []string{testDateNL(t, d.OccurredAt), testDateNL(t, vd.IntegratedAt), c.PartyName(d.Discloser), c.PurposeLabel(d.Purpose)}
		for _, r := range d.Recipients {
			want = append(want, c.PartyName(r))
		}
		for _, id := range d.Categories {
			cat, _ := c.Category(id)
			want = append(want, cat.Label)
			if cat.Special == events.SpecialArt9 {
				want = append(want, "bijzonder persoonsgegeven (AVG art. 9)")
			}
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("disclosure at leaf %d: the report does not show %q", vd.Index, w)
			}
		}
	}
	for _, w := range []string{"Zo controleert u dit overzicht", vb.LogKey, vb.CosignerKey, vb.AdminKey,
		"spoor verify bundle.json", "Niet getoond op grond van de wet", "UAVG art. 41", "Verwijderd",
		"retention:gezondheid:730d", vb.Checkpoint.Origin, "Wat het bewijs niet laat zien", "niet onafhankelijk bevestigd"} {
		if !strings.Contains(text, w) {
			t.Errorf("the report does not show %q", w)
		}
	}
	if want := fmt.Sprintf("Er zijn %d keer gegevens over uw kind gedeeld", len(vb.Disclosures)); !strings.Contains(text, want) {
		t.Errorf("the summary does not say %q", want)
	}
	for _, ch := range children {
		if strings.Contains(text, ch.BSN) {
			t.Errorf("the report shows a BSN")
		}
		if strings.Contains(text, ch.Pseudonym[:16]) {
			t.Errorf("the report shows (a prefix of) a pseudonym")
		}
	}
	// No nine-digit number at all: whatever a BSN would look like.
	if m := regexp.MustCompile(`\b\d{4}\.?\d{2}\.?\d{3}\b`).FindString(text); m != "" {
		t.Errorf("the report shows a nine-digit number")
	}
	if !strings.Contains(text, "[nummer weggelaten]") {
		t.Errorf("the BSN in a justification was not replaced")
	}
}

func TestInzageReportHTML(t *testing.T) {
	children, vb := verifier.ReportFixture(t)
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkReportText(t, htmlText(page), vb, children)
	// Self-contained: no scripts, no external resources.
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url(", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if !strings.Contains(page, "@media print") {
		t.Errorf("the page has no print stylesheet")
	}
}

// htmlText is a rough text view of a page: tags removed, entities
// unescaped, whitespace collapsed.
func htmlText(page string) string {
	s := regexp.MustCompile(`(?s)<style.*?</style>|<[^>]+>`).ReplaceAllString(page, " ")
	s = html.UnescapeString(s)
	return strings.Join(strings.Fields(s), " ")
}

func TestInzageReportNoDisclosures(t *testing.T) {
	vb := verifier.NoDisclosuresFixture(t)
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	text := htmlText(buf.String())
	for _, w := range []string{"Er is in het register geen verstrekking van gegevens over uw kind vastgelegd", "Zo controleert u dit overzicht", vb.LogKey} {
		if !strings.Contains(text, w) {
			t.Errorf("the report does not show %q", w)
		}
	}
	if strings.Contains(text, "Alle verstrekkingen") {
		t.Errorf("the report lists disclosures that are not there")
	}
	if err := report.WriteInzage(&buf, &verifier.VerifiedBundle{}); err == nil {
		t.Errorf("a report rendered from an unverified bundle")
	}
}

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// TestInzageReportInBrowser renders the report in a real headless
// chromium, reads the rendered text back and saves a screenshot. Without
// chromium it skips, except on CI (CI=true), where it fails: .ci/run
// installs the browser.
func TestInzageReportInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed at %s (CI installs it: apt-get install -y chromium): %v", chromiumPath, err)
		}
		t.Skipf("chromium is not installed at %s; apt-get install -y chromium to run this test", chromiumPath)
	}
	children, vb := verifier.ReportFixture(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "rapport.html")
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1024, 800),
	)
	defer cancelAlloc()
	// The browser lives as long as this context: no timeout on it, only on
	// each step below.
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	defer func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Logf("closing the browser: %v", err)
		}
	}()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 30*time.Second) }

	sctx, scancel := step()
	err := chromedp.Do(sctx, chromedp.Navigate((&url.URL{Scheme: "file", Path: page}).String()))
	scancel()
	if err != nil {
		t.Fatalf("opening the report: %v", err)
	}
	sctx, scancel = step()
	text, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("body")))
	scancel()
	if err != nil {
		t.Fatalf("reading the rendered text: %v", err)
	}
	if len(text) < 500 {
		t.Fatalf("the browser shows only %d characters", len(text))
	}
	checkReportText(t, strings.Join(strings.Fields(text), " "), vb, children)

	sctx, scancel = step()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	scancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Kept after the test, for a person to look at.
	shotDir, err := os.MkdirTemp("", "spoor-inzage-report-")
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shotDir, "rapport.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the rendered report: %s (%d bytes)", shot, len(png))

	sctx, scancel = step()
	pdf, err := chromedp.Run(sctx, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4)))
	scancel()
	if err != nil {
		t.Fatalf("printing to PDF: %v", err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("printing did not give a PDF")
	}
	if err := os.WriteFile(filepath.Join(shotDir, "rapport.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReportMasksPossibleBSNAndUnknownIDs: a disclosure with a BSN (with
// dashes) in its consent reference and its case reference, an unknown
// recipient and an unknown category: the parent's report shows the
// possible-bsn finding, masks the number, and shows the unknown ids as
// "onbekende waarde (n tekens)", never verbatim; the bundle is flagged for
// the desk user who releases it.
func TestReportMasksPossibleBSNAndUnknownIDs(t *testing.T) {
	alice, dashed, idx, bundle, vb := verifier.PossibleBSNFixture(t)
	fields := map[string]bool{}
	for _, vd := range vb.Disclosures {
		for _, fd := range vd.Findings {
			if fd.Rule == events.RulePossibleBSN {
				fields[fd.Field] = true
				if strings.Contains(fd.Message, alice.BSN) {
					t.Errorf("the finding repeats the number: %q", fd.Message)
				}
			}
		}
	}
	if !fields["case_ref"] || !fields["consent.reference"] || len(fields) != 2 {
		t.Errorf("possible-bsn findings on %v, want case_ref and consent.reference", fields)
	}

	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	text := htmlText(buf.String())
	for _, bad := range []string{alice.BSN, dashed, "school-typfout-zoveel", "dossier-geheim-xyz"} {
		if strings.Contains(text, bad) {
			t.Errorf("the report shows %q", bad)
		}
	}
	for _, want := range []string{"onbekende waarde (21 tekens)", "onbekende waarde (18 tekens)",
		events.FindingLabelNL(events.RulePossibleBSN), "[nummer weggelaten]"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not show %q", want)
		}
	}

	leaves, err := verifier.BundlePossibleBSN(bundle)
	if err != nil || len(leaves) != 1 || leaves[0] != idx {
		t.Errorf("BundlePossibleBSN = %v, %v; want [%d]", leaves, err, idx)
	}
}

// FuzzVerifyBundle feeds VerifyBundle mutations of the golden bundle: it
// must never panic, and whatever verifies must render.
func FuzzVerifyBundle(f *testing.F) {
	data, keys, admin := verifier.ReadBundleGolden(f)
	f.Add(data)
	f.Add(data[:len(data)/3])
	f.Add(bytes.Replace(data, []byte(`"index": 1,`), []byte(`"index": 2,`), 1))
	f.Add([]byte(`{"format":"spoor.inzage-bundle/v1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vb, err := verifier.VerifyBundle(b, keys, admin)
		if err != nil {
			var es verifier.BundleErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not BundleErrors: %v", err)
			}
			return
		}
		if err := report.WriteInzage(&bytes.Buffer{}, vb); err != nil {
			t.Fatalf("a verified bundle does not render: %v", err)
		}
	})
}

// FuzzVerifyBundleV3 is FuzzVerifyBundle on the golden v3 bundle: its
// completeness proof parsed and checked from mutated bytes never panics,
// and whatever verifies renders.
func FuzzVerifyBundleV3(f *testing.F) {
	data, keys, admin := verifier.ReadBundleGoldenV3(f)
	f.Add(data)
	f.Add(bytes.Replace(data, []byte(`"format": "spoor.inzage-bundle/v3"`), []byte(`"format": "spoor.inzage-bundle/v2"`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		vb, err := verifier.VerifyBundle(b, keys, admin)
		if err != nil {
			var es verifier.BundleErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not BundleErrors: %v", err)
			}
			return
		}
		if err := report.WriteInzage(&bytes.Buffer{}, vb); err != nil {
			t.Fatalf("a verified bundle does not render: %v", err)
		}
	})
}
