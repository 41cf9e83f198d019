package desk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/spoor-ledger/spoor/internal/axecheck"
	"github.com/spoor-ledger/spoor/internal/browsertest"
	"github.com/spoor-ledger/spoor/verifier"
)

// The browser and its bounded steps: internal/browsertest.
func browser(t *testing.T) context.Context { t.Helper(); return browsertest.Browser(t, 1100, 900) }

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, steps...)
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Value(t, ctx, what, a)
}

// TestDeskInBrowser drives the desk's pages in a real chromium on both
// demo covenants: desk-1 signs in (keyboard only: typing and Enter), types
// the child's BSN into the form and registers; desk-2 signs in, finds the
// request on the list, withholds one disclosure on a ground and releases;
// the answer and the report download, the bundle verifies with the pinned
// keys and shows the withheld entry. No URL the browser asked for, page it
// showed, log line or byte of the ledger's store holds the BSN.
// SPOOR_DESK_SCREENSHOTS=DIR writes the pages' screenshots there (the ones
// in docs/ come from it).
func TestDeskInBrowser(t *testing.T) {
	ctx := browser(t)
	axecheck.Script(t) // before anything runs: no axe-core, no test
	var mu sync.Mutex
	var urls []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("SPOOR_DESK_SCREENSHOTS")
	for _, name := range []string{"amersfoort", "waterweg"} {
		t.Run(name, func(t *testing.T) {
			f := newDeskFixture(t, name)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the logs of the ledger and the desk:\n%s", f.logs)
				}
			})
			base := f.desk.URL
			var page string
			shot := func(file string) {
				if shots == "" {
					return
				}
				png := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
				if err := os.WriteFile(filepath.Join(shots, file), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			signIn := func(user string) {
				f.used[user] = f.code(user)
				run(t, ctx, "the sign-in page for "+user, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("naam")))
				run(t, ctx, "typing the name of "+user, chromedp.SendKeys(chromedp.ID("naam"), user))
				run(t, ctx, "typing the password of "+user, chromedp.SendKeys(chromedp.ID("wachtwoord"), f.users[user].password))
				run(t, ctx, "typing the code of "+user+" and Enter", chromedp.SendKeys(chromedp.ID("code"), f.used[user]+"\r"))
				run(t, ctx, "signed in as "+user, chromedp.WaitVisible(chromedp.CSS("form.uit")))
			}

			// desk-1 registers.
			if name == "amersfoort" {
				run(t, ctx, "the sign-in page", chromedp.Navigate(base+"/inloggen"), chromedp.WaitVisible(chromedp.ID("naam")))
				shot("desk-inloggen.png")
			}
			run(t, ctx, "the sign-in page", chromedp.Navigate(base+"/inloggen"), chromedp.WaitVisible(chromedp.ID("naam")))
			axecheck.Check(t, ctx, name+": sign-in")
			signIn("desk-1")
			run(t, ctx, "the registration form",
				chromedp.Navigate(base+"/nieuw"),
				chromedp.WaitVisible(chromedp.ID("nummer")),
				chromedp.SendKeys(chromedp.ID("nummer"), f.child.BSN),
				chromedp.Click(chromedp.ID("relatie-ouder")),
			)
			if name == "amersfoort" {
				shot("desk-nieuw.png")
			}
			axecheck.Check(t, ctx, name+": new request")
			run(t, ctx, "registering",
				chromedp.Click(chromedp.CSS("main form button[type=submit]")),
				chromedp.WaitVisible(chromedp.ID("status")),
			)
			loc := value(t, ctx, "the location", chromedp.Location())
			page = value(t, ctx, "the page", chromedp.OuterHTML(chromedp.CSS("html")))
			m := requestURL.FindStringSubmatch(strings.TrimPrefix(loc, base))
			if m == nil {
				t.Fatalf("after registering the browser is at %s", loc)
			}
			id := m[1]
			if !strings.Contains(page, "Het verzoek is vastgelegd") || !strings.Contains(page, "Wacht op vrijgave") {
				t.Errorf("the request page after registering does not say it was registered")
			}
			if strings.Contains(page, "Antwoord vrijgeven") {
				t.Errorf("the desk user who registered is offered the release")
			}
			f.noBSN("after registering", loc, page)
			axecheck.Check(t, ctx, name+": the request, to its registrar")
			run(t, ctx, "signing out", chromedp.Click(chromedp.CSS("form.uit button")), chromedp.WaitVisible(chromedp.ID("naam")))

			// desk-2 releases, withholding the first disclosure.
			signIn("desk-2")
			page = value(t, ctx, "the list", chromedp.OuterHTML(chromedp.CSS("main")))
			if !strings.Contains(page, "/verzoek/"+id) {
				t.Fatalf("desk-2's list does not show request %s", id)
			}
			if name == "amersfoort" {
				shot("desk-lijst.png")
			}
			axecheck.Check(t, ctx, name+": the list")
			withheld := f.leaves[0]
			run(t, ctx, "the release form",
				chromedp.Click(chromedp.CSS(`a[href="/verzoek/`+id+`"]`)),
				chromedp.WaitVisible(chromedp.CSS("table.meldingen")),
			)
			// The preview lists every disclosure of the answer with its
			// leaf index, and the contacts the report will print.
			preview := value(t, ctx, "the preview", chromedp.OuterHTML(chromedp.CSS("main")))
			for _, leaf := range f.leaves {
				if !strings.Contains(preview, fmt.Sprintf(`id="achterhouden-%d"`, leaf)) {
					t.Errorf("the preview does not offer disclosure %d", leaf)
				}
			}
			latest := f.env.Demo.Signed.Covenant
			wantContact := latest.Contact.FG.Email
			if latest.CentralDesk {
				wantContact = latest.Contact.Desk.Email
			} else if p, ok := latest.Party(f.users["desk-1"].party); ok {
				wantContact = p.Contact.Email
			}
			if !strings.Contains(preview, wantContact) || !strings.Contains(preview, latest.Contact.FG.Email) {
				t.Errorf("the preview does not show the desk's and the FG's contact (%s)", wantContact)
			}
			f.noBSN("the preview", preview)
			axecheck.Check(t, ctx, name+": the release form")
			run(t, ctx, "withholding one disclosure",
				chromedp.Click(chromedp.ID(fmt.Sprintf("achterhouden-%d", withheld))),
				chromedp.SetValue(chromedp.ID(fmt.Sprintf("grond-%d", withheld)), verifier.WithholdAVG23),
			)
			if name == "amersfoort" {
				shot("desk-vrijgeven.png")
			}
			run(t, ctx, "releasing",
				chromedp.Click(chromedp.CSS("main form button[type=submit]")),
				chromedp.WaitVisible(chromedp.CSS("ul.downloads")),
			)
			status := value(t, ctx, "the status", chromedp.Text(chromedp.ID("status")))
			page = value(t, ctx, "the page", chromedp.OuterHTML(chromedp.CSS("html")))
			if !strings.HasPrefix(status, "Vrijgegeven") || !strings.Contains(status, "desk-2") {
				t.Errorf("status after release: %q", status)
			}
			if name == "amersfoort" {
				shot("desk-verzoek.png")
			}
			axecheck.Check(t, ctx, name+": the released request")
			run(t, ctx, "the erasure page", chromedp.Navigate(base+"/wissen"), chromedp.WaitVisible(chromedp.ID("volgnummer")))
			if name == "amersfoort" {
				shot("desk-wissen.png")
			}
			axecheck.Check(t, ctx, name+": erasures")
			f.noBSN("after releasing", page)

			// Download the answer and the report, with the browser's session.
			got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
			if err != nil {
				t.Fatal(err)
			}
			cookies := got.Cookies
			if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict {
				t.Errorf("the session cookie: %+v, want one, HttpOnly and SameSite=Strict", cookies)
			}
			download := func(path string) []byte {
				req, _ := http.NewRequest("GET", base+path, nil)
				for _, c := range cookies {
					req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
					t.Fatalf("download %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Disposition"))
				}
				return b
			}
			bundle := download("/verzoek/" + id + "/antwoord.json")
			vb, err := verifier.VerifyBundle(bundle, f.env.Keys, f.env.Demo.AdminVkey)
			if err != nil {
				t.Fatalf("the downloaded answer does not verify: %v", err)
			}
			if len(vb.Withheld) != 1 || vb.Withheld[0].Index != withheld || len(vb.Disclosures) != len(f.leaves)-1 {
				t.Errorf("the answer: %d disclosures and withheld %+v, want %d and leaf %d", len(vb.Disclosures), vb.Withheld, len(f.leaves)-1, withheld)
			}
			var raw map[string]json.RawMessage
			if json.Unmarshal(bundle, &raw) != nil {
				t.Error("the answer is not JSON")
			}
			report := download("/verzoek/" + id + "/rapport.html")
			if !strings.Contains(string(report), "<html") || !strings.Contains(string(report), "AVG art. 23") {
				t.Errorf("the report (%d bytes) is not the Dutch report with the withholding ground", len(report))
			}
			f.noBSN("after the downloads", string(bundle), string(report))
			// The parent's report, opened as the parent opens it: a file.
			if !strings.Contains(string(report), wantContact) {
				t.Errorf("the parent's report does not show the desk's contact %s", wantContact)
			}
			reportFile := filepath.Join(t.TempDir(), "inzage-"+id+".html")
			if err := os.WriteFile(reportFile, report, 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, ctx, "the parent's report", chromedp.Navigate("file://"+reportFile), chromedp.WaitVisible(chromedp.CSS("h1")))
			axecheck.Check(t, ctx, name+": the parent's report")
			run(t, ctx, "back to the desk", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("form.uit")))
			run(t, ctx, "signing out", chromedp.Click(chromedp.CSS("form.uit button")), chromedp.WaitVisible(chromedp.ID("naam")))

			mu.Lock()
			defer mu.Unlock()
			if len(urls) == 0 {
				t.Fatal("the browser's requests were not seen")
			}
			f.noBSN("the browser's URLs", urls...)
		})
	}
}
