package websession

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ss := NewStore[string](15*time.Minute, 8*time.Hour, func() time.Time { return now })
	anon := ss.Create()
	if ss.Get(anon.ID) != anon || anon.User != "" {
		t.Fatal("an anonymous session is not found, or has a user")
	}
	in := ss.SignIn(anon, "desk-1")
	if ss.Get(anon.ID) != nil || in.ID == anon.ID || in.CSRF == anon.CSRF || in.User != "desk-1" {
		t.Fatal("sign-in did not replace the anonymous session")
	}
	now = now.Add(14 * time.Minute)
	if ss.Get(in.ID) == nil {
		t.Fatal("a session seen 14 minutes ago ended")
	}
	now = now.Add(16 * time.Minute)
	if ss.Get(in.ID) != nil {
		t.Fatal("a session idle for 16 minutes is still live")
	}
	long := ss.Create()
	for range 40 { // seen every 14 minutes, for over 9 hours
		now = now.Add(14 * time.Minute)
		ss.Get(long.ID)
	}
	if ss.Get(long.ID) != nil {
		t.Fatal("a session older than its absolute limit is still live")
	}
	s := ss.Create()
	ss.SetFlash(s, "ok", "klaar")
	if k, m := ss.TakeFlash(s); k != "ok" || m != "klaar" {
		t.Fatal("the flash was lost")
	}
	if k, m := ss.TakeFlash(s); k != "" || m != "" {
		t.Fatal("the flash was shown twice")
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	s := &Session[bool]{CSRF: "token"}
	post := func(csrf string, hdr map[string]string) (bool, bool) {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8090/x", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return s.ValidCSRF(r), SameOrigin(r, false)
	}
	if ok, same := post("token", map[string]string{"Origin": "http://127.0.0.1:8090", "Sec-Fetch-Site": "same-origin"}); !ok || !same {
		t.Fatal("the screen's own form is refused")
	}
	if ok, _ := post("other", nil); ok {
		t.Fatal("a wrong CSRF token passes")
	}
	if ok, _ := post("", nil); ok {
		t.Fatal("a missing CSRF token passes")
	}
	for _, hdr := range []map[string]string{{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://127.0.0.1:8090"}} {
		if _, same := post("token", hdr); same {
			t.Errorf("a form with %v passes as the screen's own", hdr)
		}
	}
}
