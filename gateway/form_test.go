package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spoor-ledger/spoor/internal/axecheck"
	"github.com/spoor-ledger/spoor/internal/browsertest"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
)

// formRig is a rig whose gateway also serves the recording form.
func formRig(t *testing.T, name string) (*rig, *httptest.Server) {
	t.Helper()
	r := newDemoRig(t, name, true, waitLong)
	cfg := r.cfg
	cfg.Form = true
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return r, srv
}

// The browser and its bounded steps: internal/browsertest.
func browser(t *testing.T) context.Context { t.Helper(); return browsertest.Browser(t, 1000, 900) }

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	browsertest.Run(t, ctx, what, steps...)
}

func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return browsertest.Value(t, ctx, what, a)
}

// TestFormInBrowser: on each demo covenant a professional signs in with
// the party's token (a wrong one first), fills in the form from the
// covenant's own lists with a BSN that fails the elfproef, gets the
// problem in Dutch with the number gone from the page, types a good one
// and gets the receipt with the covenant's findings in Dutch (a category
// the purpose does not need was picked on purpose). The ledger holds one
// event more, with the actor's staff id derived from the user; no number
// is in any page, log line, the ledger's store or the bus.
// SPOOR_FORM_SCREENSHOTS=DIR writes the form and receipt screenshots there.
func TestFormInBrowser(t *testing.T) {
	for _, name := range []string{"amersfoort", "waterweg"} {
		t.Run(name, func(t *testing.T) {
			r, srv := formRig(t, name)
			cov := r.env.Demo.Signed.Covenant
			own, recipient := demoParties[name][0], demoParties[name][1]
			// A purpose with the categories it needs, and one it does not.
			purpose := cov.Vocabulary.Purposes[0].ID
			needed := cov.Rules.Purposes[purpose]
			extra := ""
			for _, c := range cov.Vocabulary.Categories {
				if !slices.Contains(needed, c.ID) && c.Special == "" {
					extra = c.ID
					break
				}
			}
			if extra == "" {
				t.Fatalf("purpose %s needs every ordinary category", purpose)
			}
			ctx := browser(t)
			base := srv.URL + gateway.FormPath
			shots := os.Getenv("SPOOR_FORM_SCREENSHOTS")
			shot := func(file string) {
				if shots == "" {
					return
				}
				png := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
				if err := os.WriteFile(filepath.Join(shots, file), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			page := func() string {
				html := value(t, ctx, "the page", chromedp.OuterHTML(chromedp.CSS("html")))
				if strings.Contains(html, bsn) || strings.Contains(html, badBSN) {
					t.Fatalf("the page shows a number: %s", html)
				}
				return html
			}

			run(t, ctx, "the sign-in page", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("token")))
			axecheck.Check(t, ctx, name+": the form's sign-in")
			run(t, ctx, "a wrong token", chromedp.SendKeys(chromedp.ID("token"), "not-a-token\r"), chromedp.WaitVisible(chromedp.ID("fout")))
			run(t, ctx, "signing in", chromedp.SendKeys(chromedp.ID("token"), tokenA+"\r"), chromedp.WaitVisible(chromedp.ID("formulier")))
			axecheck.Check(t, ctx, name+": the form")
			if got := value(t, ctx, "the organisation", chromedp.Text(chromedp.ID("organisatie"))); got != cov.PartyName(own) {
				t.Errorf("signed in for %q, want %q", got, cov.PartyName(own))
			}
			if strings.Contains(page(), `value="`+own+`"`) {
				t.Error("the form offers the own organisation as recipient")
			}
			fill := []chromedp.Action[chromedp.Void]{
				chromedp.SetValue(chromedp.ID("leeftijd"), string(events.Age12To15)),
				chromedp.SetValue(chromedp.ID("doel"), purpose),
				chromedp.SetValue(chromedp.ID("grondslag"), "e"),
				chromedp.SetValue(chromedp.ID("kanaal"), "phone"),
				chromedp.SetValue(chromedp.ID("rol"), cov.Vocabulary.Roles[0].ID),
				chromedp.Click(chromedp.CSS(`input[name=ontvanger][value="` + recipient + `"]`)),
				chromedp.Click(chromedp.CSS(`input[name=categorie][value="` + needed[0] + `"]`)),
				chromedp.Click(chromedp.CSS(`input[name=categorie][value="` + extra + `"]`)),
				chromedp.SendKeys(chromedp.ID("toelichting"), "Besproken in het MDO over de ondersteuning op school"),
			}
			run(t, ctx, "filling in the form", fill...)
			size := r.l.Head().Size
			run(t, ctx, "a BSN failing the elfproef",
				chromedp.SendKeys(chromedp.ID("nummer"), badBSN),
				chromedp.Click(chromedp.ID("vastleggen")),
				chromedp.WaitVisible(chromedp.ID("problemen")),
				// The refused form is a new document: wait until it has
				// loaded before reading its fields.
				chromedp.WaitReady("body"), chromedp.WaitReady(chromedp.ID("nummer")))
			if got := value(t, ctx, "the problems", chromedp.Text(chromedp.ID("problemen"))); !strings.Contains(got, "elfproef") {
				t.Errorf("the problems say %q, want the elfproef in Dutch", got)
			}
			page()
			if v := value(t, ctx, "the number field", chromedp.Value(chromedp.ID("nummer"))); v != "" {
				t.Errorf("the refused form kept the number: %q", v)
			}
			if v := value(t, ctx, "the purpose", chromedp.Value(chromedp.ID("doel"))); v != purpose {
				t.Errorf("the refused form lost the purpose: %q", v)
			}
			shot("form-" + name + "-fout.png")
			axecheck.Check(t, ctx, name+": the form with a refused number")
			run(t, ctx, "a good BSN",
				chromedp.SendKeys(chromedp.ID("nummer"), bsn),
				chromedp.Click(chromedp.ID("vastleggen")),
				chromedp.WaitVisible(chromedp.ID("bewijs")),
				chromedp.WaitReady("body"), chromedp.WaitReady(chromedp.ID("nieuw")))
			if got := value(t, ctx, "the status", chromedp.Text(chromedp.ID("status"))); got != "Vastgelegd" {
				t.Fatalf("the receipt says %q", got)
			}
			findings := value(t, ctx, "the findings", chromedp.Text(chromedp.ID("bevindingen")))
			if want := events.FindingLabelNL(events.RuleCategoryNotNeeded) + " (" + cov.CategoryLabel(extra) + ")"; !strings.Contains(findings, want) {
				t.Errorf("the findings %q do not say %q", findings, want)
			}
			page()
			shot("form-" + name + ".png")
			axecheck.Check(t, ctx, name+": the receipt")
			if got := r.l.Head().Size; got != size+1 {
				t.Fatalf("the ledger grew from %d to %d leaves, want one event", size, got)
			}
			eventID := strings.TrimSpace(value(t, ctx, "the event id", chromedp.Text(chromedp.ID("kenmerk-verstrekking"))))
			found, err := r.l.FindEvent(context.Background(), own, eventID)
			if err != nil {
				t.Fatalf("the event %s is not in the ledger: %v", eventID, err)
			}
			env, err := r.l.Entry(context.Background(), found.Index)
			if err != nil {
				t.Fatal(err)
			}
			d, _, err := events.Open(env, cov.Origin, cov)
			if err != nil {
				t.Fatal(err)
			}
			if want := gateway.StaffID(r.env.Demo.Parties[own], "system-a"); d.Actor.StaffID != want || d.Discloser != own ||
				d.Channel != "phone" || !slices.Equal(d.Recipients, []string{recipient}) {
				t.Errorf("the logged disclosure: actor %+v, discloser %s, channel %s, recipients %v; want staff id %s",
					d.Actor, d.Discloser, d.Channel, d.Recipients, want)
			}
			run(t, ctx, "signing out", chromedp.Click(chromedp.CSS("form.uit button")), chromedp.WaitVisible(chromedp.ID("token")))
			r.checkNoNumberStored()
		})
	}
}

// TestFormSecurity: every page carries the headers that allow no script and
// no framing; a POST without the session's CSRF token, or from another
// origin, is refused and records nothing; without a session the form is
// the sign-in page.
func TestFormSecurity(t *testing.T) {
	r, srv := formRig(t, "amersfoort")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(gateway.FormPath)
	if !strings.Contains(body, `id="token"`) {
		t.Fatalf("without a session the form is not the sign-in page: %s", body)
	}
	h := resp.Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("security headers missing: %v", h)
	}
	csrf := between(body, `name="csrf" value="`, `"`)
	post := func(path string, form url.Values, origin string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(gateway.FormPath+"inloggen", url.Values{"token": {tokenA}}, ""); got != http.StatusForbidden {
		t.Errorf("sign-in without CSRF: %d, want 403", got)
	}
	if got := post(gateway.FormPath+"inloggen", url.Values{"token": {tokenA}, "csrf": {csrf}}, "http://evil.example"); got != http.StatusForbidden {
		t.Errorf("sign-in from another origin: %d, want 403", got)
	}
	if got := post(gateway.FormPath+"inloggen", url.Values{"token": {tokenA}, "csrf": {csrf}}, srv.URL); got != http.StatusSeeOther {
		t.Fatalf("sign-in: %d, want 303", got)
	}
	_, body = get(gateway.FormPath)
	if !strings.Contains(body, `id="formulier"`) {
		t.Fatalf("after sign-in no form: %s", body)
	}
	newCSRF := between(body, `name="csrf" value="`, `"`)
	if newCSRF == csrf {
		t.Error("the session kept its CSRF token across sign-in")
	}
	size := r.l.Head().Size
	good := url.Values{"sleutel": {"k1"}, "nummer": {bsn}, "soort": {"bsn"}, "leeftijd": {"12-15"}, "doel": {"verzuim-en-leerplicht"},
		"grondslag": {"c"}, "categorie": {"identificatie"}, "ontvanger": {partyB}, "kanaal": {"phone"}, "rol": {"leerplichtambtenaar"},
		"toelichting": {"Verzuim besproken"}, "activiteit": {"leerplicht"}, "tijdstip": {time.Now().Add(-time.Hour).In(amsterdam(t)).Format("2006-01-02T15:04")}}
	if got := post(gateway.FormPath+"vastleggen", good, ""); got != http.StatusForbidden {
		t.Errorf("record without CSRF: %d, want 403", got)
	}
	good.Set("csrf", csrf)
	if got := post(gateway.FormPath+"vastleggen", good, ""); got != http.StatusForbidden {
		t.Errorf("record with the anonymous session's CSRF token: %d, want 403", got)
	}
	good.Set("csrf", newCSRF)
	if got := post(gateway.FormPath+"vastleggen", good, "http://evil.example"); got != http.StatusForbidden {
		t.Errorf("record from another origin: %d, want 403", got)
	}
	if got := r.l.Head().Size; got != size {
		t.Fatalf("refused forms recorded %d events", got-size)
	}
	if got := post(gateway.FormPath+"vastleggen", good, srv.URL); got != http.StatusOK {
		t.Fatalf("record: %d, want 200", got)
	}
	if got := r.l.Head().Size; got != size+1 {
		t.Fatalf("the form recorded %d events, want 1", got-size)
	}
	r.checkNoNumberStored()
}

func amsterdam(t *testing.T) *time.Location {
	t.Helper()
	l, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
