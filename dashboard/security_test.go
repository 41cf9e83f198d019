package dashboard_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsoleRefuses: an unknown Host header, a form from another origin,
// a form without the CSRF token and a visitor without a session are all
// refused before any page is served.
func TestConsoleRefuses(t *testing.T) {
	f := newFixture(t)
	base := f.srv.URL
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) *http.Response {
		t.Helper()
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// DNS rebinding: the right address under another name.
	req, _ := http.NewRequest("GET", base+"/inloggen", nil)
	req.Host = "evil.example:80"
	if resp := do(req); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("an unknown Host: %d, want 421", resp.StatusCode)
	}
	// No session: every page sends the visitor to sign in, the CSV too.
	for _, p := range []string{"/", "/bevindingen", "/bevindingen.csv", "/antwoorden"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		if resp := do(req); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/inloggen" {
			t.Errorf("%s without a session: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A sign-in page's session and token.
	resp, err := http.Get(base + "/inloggen")
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	m := csrfField.FindStringSubmatch(body.String())
	cookies := resp.Cookies()
	if m == nil || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("the sign-in page: csrf %v, cookies %+v", m, cookies)
	}
	post := func(token, origin string) *http.Response {
		form := url.Values{"wachtwoord": {password}}
		if token != "" {
			form.Set("csrf", token)
		}
		req, _ := http.NewRequest("POST", base+"/inloggen", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.AddCookie(cookies[0])
		return do(req)
	}
	if resp := post("", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp := post("wrong", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp := post(m[1], "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in from another origin: %d, want 403", resp.StatusCode)
	}
	resp = post(m[1], base)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in with the token and the password: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	signed := resp.Cookies()
	if len(signed) != 1 || signed[0].Value == cookies[0].Value {
		t.Fatalf("sign-in did not give a new session: %+v", signed)
	}
	// Signed in, the refresh button still needs the token.
	req, _ = http.NewRequest("POST", base+"/verifieren", strings.NewReader("csrf=wrong"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(signed[0])
	if resp := do(req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the refresh button without the session's token: %d, want 403", resp.StatusCode)
	}
	// The session from before sign-in is worth nothing now.
	req, _ = http.NewRequest("GET", base+"/", nil)
	req.AddCookie(cookies[0])
	if resp := do(req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the pre-sign-in session opens the overview: %d", resp.StatusCode)
	}
}
