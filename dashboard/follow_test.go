package dashboard_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signIn returns a client with a signed-in session at the console.
func (f *fixture) signIn(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	body := get(t, c, f.srv.URL+"/inloggen", http.StatusOK)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	resp, err := c.PostForm(f.srv.URL+"/inloggen", url.Values{"csrf": {m[1]}, "wachtwoord": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		t.Fatalf("signing in ended at %s", resp.Request.URL)
	}
	return c
}

func get(t *testing.T, c *http.Client, u string, want int) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

// TestConsoleFollowsAndErases: a new entry in the ledger is on the
// console within 2 s (the follow interval is 200 ms); an erasure in the
// ledger removes the envelope from the console's copy (its page says
// erased, its bytes are gone from the copy's files, the tables no longer
// count it).
func TestConsoleFollowsAndErases(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t)
	size := f.sl.L.Head().Size
	if _, err := f.sl.Env.SubmitEvents(t, f.sl.L, 1); err != nil {
		t.Fatal(err)
	}
	logged := time.Now()
	want := strconv.FormatUint(f.sl.L.Head().Size, 10)
	for !strings.Contains(get(t, c, f.srv.URL+"/", http.StatusOK), `<td id="kopie-omvang">`+want+`</td>`) {
		if time.Since(logged) > 2*time.Second {
			t.Fatalf("the new entry (size %d after %d) is not on the console after 2 s", f.sl.L.Head().Size, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a new entry was on the console %v after the ledger logged it", time.Since(logged).Round(time.Millisecond))

	// The hostile disclosure: its page, then its erasure.
	leaf := f.hostileLeaf(t)
	page := get(t, c, f.srv.URL+"/vermelding/"+strconv.FormatUint(leaf, 10), http.StatusOK)
	for _, s := range []string{"Geverifieerd", "Klopt: gecontroleerd", f.hostile.Subject.Pseudonym, "&lt;script&gt;"} {
		if !strings.Contains(page, s) {
			t.Errorf("the entry page lacks %q", s)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("the hostile justification is markup on the entry page")
	}
	before := orgTotal(t, c, f, f.hostile.Discloser)
	e, _ := f.sl.L.Entry(context.Background(), leaf)
	if _, err := f.sl.L.Erase(context.Background(), leaf, "avg-17-1-d"); err != nil {
		t.Fatal(err)
	}
	erased := time.Now()
	for !strings.Contains(get(t, c, f.srv.URL+"/vermelding/"+strconv.FormatUint(leaf, 10), http.StatusOK), `id="gewist"`) {
		if time.Since(erased) > 2*time.Second {
			t.Fatal("the erased disclosure is still on the console after 2 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := orgTotal(t, c, f, f.hostile.Discloser); after != before-1 {
		t.Errorf("the organisation's total went from %d to %d after the erasure, want %d", before, after, before-1)
	}
	err := filepath.Walk(f.dataDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), string(e[len(e)-100:])) {
			t.Errorf("the erased envelope is still in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(get(t, c, f.srv.URL+"/tabellen", http.StatusOK), f.hostile.Subject.Pseudonym) {
		t.Error("the tables show a pseudonym")
	}

	// The button: the copy re-verified from its files, erased entry and
	// all.
	m := csrfField.FindStringSubmatch(get(t, c, f.srv.URL+"/", http.StatusOK))
	resp, err := c.PostForm(f.srv.URL+"/verifieren", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for page := ""; !strings.Contains(page, "vermeldingen zonder inhoud"); page = get(t, c, f.srv.URL+"/", http.StatusOK) {
		select {
		case <-t.Context().Done():
			t.Fatal("no re-verification on the overview")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if page := get(t, c, f.srv.URL+"/", http.StatusOK); !strings.Contains(page, ", 1 vermeldingen zonder inhoud") {
		t.Errorf("the re-verification does not count the one erased entry: %s", page)
	}
}

// hostileLeaf finds the hostile disclosure's leaf in the ledger.
func (f *fixture) hostileLeaf(t *testing.T) uint64 {
	t.Helper()
	for i := uint64(0); i < f.sl.L.Head().Size; i++ {
		e, err := f.sl.L.Entry(context.Background(), i)
		if err == nil {
			if id, err := parseDisclosure(e); err == nil && id == f.hostile.ID {
				return i
			}
		}
	}
	t.Fatal("the hostile disclosure is not in the ledger")
	return 0
}

// orgTotal reads an organisation's total from the organisations' CSV.
func orgTotal(t *testing.T, c *http.Client, f *fixture, org string) int {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(get(t, c, f.srv.URL+"/tabellen/csv/organisatie", http.StatusOK))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		if r[0] == org {
			n, _ := strconv.Atoi(r[len(r)-1])
			return n
		}
	}
	t.Fatalf("organisation %s has no row in %v", org, rows)
	return 0
}

// TestSignInThrottled: after five wrong passwords the next attempt, even
// with the right one, is refused with 429 and Retry-After.
func TestSignInThrottled(t *testing.T) {
	f := newFixture(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	m := csrfField.FindStringSubmatch(get(t, c, f.srv.URL+"/inloggen", http.StatusOK))
	try := func(pw string) *http.Response {
		resp, err := c.PostForm(f.srv.URL+"/inloggen", url.Values{"csrf": {m[1]}, "wachtwoord": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for range 5 {
		if resp := try("wrong password, long enough"); resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "mislukt" {
			t.Fatalf("a wrong password: %d at %s", resp.StatusCode, resp.Request.URL)
		}
	}
	sixth := try("wrong password, long enough")
	if resp := try(password); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the right password right after six wrong ones: %d, Retry-After %q; want 429 (the sixth: %d)", resp.StatusCode, resp.Header.Get("Retry-After"), sixth.StatusCode)
	}
}
