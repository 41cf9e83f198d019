package desk_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/desk"
	"github.com/spoor-ledger/spoor/events"
)

var requestURL = regexp.MustCompile(`^/verzoek/([0-9a-f-]{36})$`)

// register registers an inzage for the fixture's child as a parent and
// returns the request id.
func (f *deskFixture) register(c *http.Client, csrf string) string {
	f.t.Helper()
	code, loc, body := f.post(c, "/nieuw", url.Values{"csrf": {csrf}, "soort": {"bsn"}, "nummer": {f.child.BSN}, "relatie": {"parent"}})
	m := requestURL.FindStringSubmatch(loc)
	if code != http.StatusSeeOther || m == nil {
		f.t.Fatalf("register: %d to %q: %s", code, loc, body)
	}
	f.noBSN("the answer to the registration", loc, body)
	return m[1]
}

// TestDeskSecurity, on the Waterweg covenant (a desk per party): a wrong
// TOTP code, a replayed one and a wrong password are refused; a form
// without its CSRF token, with another session's, or from another origin
// is refused; another Host is refused; a BSN that fails the elfproef is
// refused without being shown again; another party's desk neither lists
// nor opens the request; an idle session ends; and the BSN is in no URL,
// page, log line or the ledger's store.
func TestDeskSecurity(t *testing.T) {
	f := newDeskFixture(t, "waterweg")

	c := f.client()
	_, _, csrf := f.get(c, "/inloggen")
	u := f.users["desk-1"]
	wrong := map[string]url.Values{
		"wrong code":     {"csrf": {csrf}, "naam": {"desk-1"}, "wachtwoord": {u.password}, "code": {"000000"}},
		"wrong password": {"csrf": {csrf}, "naam": {"desk-1"}, "wachtwoord": {u.password + "x"}, "code": {f.code("desk-1")}},
		"unknown name":   {"csrf": {csrf}, "naam": {f.child.BSN}, "wachtwoord": {u.password}, "code": {f.code("desk-1")}},
		"no csrf":        {"naam": {"desk-1"}, "wachtwoord": {u.password}, "code": {f.code("desk-1")}},
	}
	for what, form := range wrong {
		code, loc, _ := f.post(c, "/inloggen", form)
		if code == http.StatusSeeOther || code == http.StatusOK {
			t.Errorf("sign-in with a %s: %d to %q, want a refusal", what, code, loc)
		}
	}
	csrf = f.signIn(c, "desk-1")
	// The code just used is spent: a second sign-in with it is refused.
	c2 := f.client()
	_, _, csrf2 := f.get(c2, "/inloggen")
	if code, _, _ := f.post(c2, "/inloggen", url.Values{"csrf": {csrf2}, "naam": {"desk-1"}, "wachtwoord": {u.password}, "code": {f.used["desk-1"]}}); code != http.StatusUnauthorized {
		t.Errorf("a replayed TOTP code: %d, want 401", code)
	}

	for what, tc := range map[string]struct {
		csrf   string
		header []string
	}{
		"no CSRF token":         {"", nil},
		"another session's":     {csrf2, nil},
		"another origin":        {csrf, []string{"Origin", "http://evil.example"}},
		"a cross-site request":  {csrf, []string{"Sec-Fetch-Site", "cross-site"}},
		"another Host (rebind)": {csrf, []string{"Host", "evil.example"}},
	} {
		fm := url.Values{"soort": {"bsn"}, "nummer": {f.child.BSN}, "relatie": {"parent"}}
		if tc.csrf != "" {
			fm.Set("csrf", tc.csrf)
		}
		code, loc, body := f.post(c, "/nieuw", fm, tc.header...)
		if code < 400 {
			t.Errorf("registration with %s: %d to %q, want a refusal", what, code, loc)
		}
		f.noBSN("registration with "+what, loc, body)
	}
	if reqs := f.list(c); len(reqs) != 0 {
		t.Errorf("refused forms registered requests: %v", reqs)
	}

	// A number that fails the elfproef: refused, and not shown again.
	bad := f.child.BSN[:8] + string('0'+(f.child.BSN[8]-'0'+1)%10)
	code, _, body := f.post(c, "/nieuw", url.Values{"csrf": {csrf}, "soort": {"bsn"}, "nummer": {bad}, "relatie": {"parent"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "elfproef") || strings.Contains(body, bad) {
		t.Errorf("a BSN failing the elfproef: %d, shown again %v", code, strings.Contains(body, bad))
	}

	id := f.register(c, csrf)
	if got := f.list(c); len(got) != 1 || got[0] != id {
		t.Errorf("desk-1 lists %v, want [%s]", got, id)
	}

	// desk-3 answers for another party (swv-ppo-nwn): it neither lists nor
	// opens desk-1's request.
	c3 := f.client()
	f.signIn(c3, "desk-3")
	if got := f.list(c3); len(got) != 0 {
		t.Errorf("another party's desk lists %v", got)
	}
	for _, p := range []string{"/verzoek/" + id, "/verzoek/" + id + "/antwoord.json"} {
		if code, body, _ := f.get(c3, p); code != http.StatusNotFound || strings.Contains(body, f.child.Pseudonym) {
			t.Errorf("another party's desk opens %s: %d", p, code)
		}
	}

	// An idle session ends: after the idle timeout the list page sends
	// the desk user to sign in again.
	f.skew.Store(int64(11 * time.Minute))
	resp, err := c.Get(f.desk.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/inloggen" {
		t.Errorf("an idle session: %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	f.noBSN("after the whole run")
}

// TestDeskCookieUnderTLS: served over TLS, the session cookie is Secure,
// HttpOnly, SameSite=Strict and carries the __Host- prefix, and the pages
// say Strict-Transport-Security; over plain HTTP on loopback it is not
// Secure (the browser would drop it) but keeps the rest.
func TestDeskCookieUnderTLS(t *testing.T) {
	for _, tls := range []bool{true, false} {
		srv := httptest.NewUnstartedServer(nil)
		d, err := desk.New(desk.Config{LedgerURL: "http://127.0.0.1:1", UsersFile: filepath.Join(t.TempDir(), "users.json"),
			SubjectKeys: []events.SubjectKey{{ID: "k1", Secret: make([]byte, 32)}}, Hosts: desk.HostsFor(srv.Listener.Addr().String()), TLS: tls})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = d.Handler()
		if tls {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		resp, err := srv.Client().Get(srv.URL + "/inloggen")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) != 1 {
			t.Fatalf("TLS %v: %d cookies", tls, len(cs))
		}
		c := cs[0]
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tls ||
			strings.HasPrefix(c.Name, "__Host-") != tls {
			t.Errorf("TLS %v: cookie %s", tls, c.String())
		}
		if got := resp.Header.Get("Strict-Transport-Security") != ""; got != tls {
			t.Errorf("TLS %v: Strict-Transport-Security sent: %v", tls, got)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("TLS %v: CSP %q", tls, csp)
		}
		srv.Close()
	}
}
