package desk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/desk"
	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// logBuffer collects the log lines of the ledger and the desk, to be
// searched for the BSN.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// deskUser is a desk user of the fixture: their password and TOTP secret.
type deskUser struct {
	name, party, password string
	secret                []byte
}

// deskFixture is a real ledger (Pebble on a temp dir, the demo covenant)
// behind the real HTTP API, and a real desk in front of it, both on
// loopback, with disclosures about one child in the first desk users'
// scope.
type deskFixture struct {
	t      *testing.T
	env    *testledger.Env
	l      *ledger.Ledger
	store  *pebblestore.Store
	ledger *httptest.Server
	desk   *httptest.Server
	users  map[string]*deskUser
	child  synth.Child
	// leaves are the disclosures about the child in desk-1's scope.
	leaves []uint64
	logs   *logBuffer
	// skew moves the desk's clock, for the idle timeout.
	skew atomic.Int64
	// used is the TOTP code each desk user last signed in with.
	used map[string]string
}

func newDeskFixture(t *testing.T, name string) *deskFixture {
	t.Helper()
	e := testledger.NewDemo(t, name)
	f := &deskFixture{t: t, env: e, users: map[string]*deskUser{}, used: map[string]string{}, logs: &logBuffer{}, child: under16(t, e.Gen.Children())}
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	f.l, f.store = l, s
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("ledger.Close: %v", err)
		}
		s.Close()
	})

	// Disclosures about the child by the party of desk-1 and desk-2 (on
	// Regio Amersfoort, whose central desk answers for all, by any party),
	// and others about other children.
	deskUsers := demo.DeskUsers(name)
	party := deskUsers[0].Party
	var envs [][]byte
	for range 6 {
		d, _ := e.Gen.Next()
		for party != "" && (d.Discloser != party && slices.Contains(d.Recipients, party)) {
			d, _ = e.Gen.Next()
		}
		if party != "" {
			d.Discloser = party
		}
		d.Subject.Pseudonym = f.child.Pseudonym
		d.SubjectAgeBand = f.child.AgeBand
		envs = append(envs, e.Sign(t, d))
	}
	out, err := e.SubmitEnvelopes(t, l, envs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("event %d: %v", i, o.Err)
		}
		f.leaves = append(f.leaves, o.Index)
	}
	if _, err := e.SubmitEvents(t, l, 30); err != nil {
		t.Fatal(err)
	}

	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokens := map[[32]byte]httpapi.Principal{}
	usersFile := filepath.Join(t.TempDir(), "desk-users.json")
	for _, du := range deskUsers {
		tok := randomHex(32)
		tokens[httpapi.TokenHash(tok)] = httpapi.Principal{Role: httpapi.RoleDesk, Party: du.Party, Name: du.Name}
		u := &deskUser{name: du.Name, party: du.Party, password: "wachtwoord van " + du.Name + " " + randomHex(4)}
		if u.secret, err = desk.AddUser(usersFile, u.name, u.password, tok); err != nil {
			t.Fatal(err)
		}
		f.users[du.Name] = u
	}
	f.ledger = httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Tokens: tokens, Logger: logger.With("component", "ledger"),
		Answers: answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})}))
	t.Cleanup(f.ledger.Close)

	f.desk = httptest.NewUnstartedServer(nil)
	d, err := desk.New(desk.Config{LedgerURL: f.ledger.URL, UsersFile: usersFile, SubjectKeys: []events.SubjectKey{e.Demo.SubjectKey},
		LogVkey: e.LogVkey, CosignerVkey: e.CosVkey, AdminVkey: e.Demo.AdminVkey, Hosts: desk.HostsFor(f.desk.Listener.Addr().String()),
		IdleTimeout: 10 * time.Minute, Logger: logger.With("component", "desk"),
		Now: func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	f.desk.Config.Handler = d.Handler()
	f.desk.Start()
	t.Cleanup(f.desk.Close)
	return f
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// code is the desk user's current TOTP code.
func (f *deskFixture) code(name string) string {
	return desk.TOTP(f.users[name].secret, time.Now().Add(time.Duration(f.skew.Load())))
}

// client is a browser without a browser: a cookie jar and no redirects
// followed, so that each answer can be checked.
func (f *deskFixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a desk page and returns its status, body and CSRF token.
func (f *deskFixture) get(c *http.Client, path string) (int, string, string) {
	f.t.Helper()
	resp, err := c.Get(f.desk.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := csrfField.FindStringSubmatch(string(b))
	if m == nil {
		return resp.StatusCode, string(b), ""
	}
	return resp.StatusCode, string(b), m[1]
}

// post sends a form and returns the status, the Location and the body.
func (f *deskFixture) post(c *http.Client, path string, form url.Values, header ...string) (int, string, string) {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.desk.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// signIn signs name in with c and returns the session's CSRF token.
func (f *deskFixture) signIn(c *http.Client, name string) string {
	f.t.Helper()
	_, _, csrf := f.get(c, "/inloggen")
	f.used[name] = f.code(name)
	code, loc, body := f.post(c, "/inloggen", url.Values{"csrf": {csrf}, "naam": {name}, "wachtwoord": {f.users[name].password}, "code": {f.used[name]}})
	if code != http.StatusSeeOther || loc != "/" {
		f.t.Fatalf("sign-in of %s: %d to %q: %s", name, code, loc, body)
	}
	_, _, csrf = f.get(c, "/")
	if csrf == "" {
		f.t.Fatalf("no CSRF token on the list page after sign-in of %s", name)
	}
	return csrf
}

var requestLink = regexp.MustCompile(`href="/verzoek/([0-9a-f-]{36})"`)

// list returns the request ids on the desk's list page.
func (f *deskFixture) list(c *http.Client) []string {
	f.t.Helper()
	code, body, _ := f.get(c, "/")
	if code != http.StatusOK {
		f.t.Fatalf("the list page: %d", code)
	}
	var ids []string
	for _, m := range requestLink.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// noBSN fails when the child's BSN is in the logs, in the ledger's store
// (every key and value, and the raw files of its folder) or in text.
func (f *deskFixture) noBSN(what string, texts ...string) {
	f.t.Helper()
	bsn := f.child.BSN
	for i, s := range texts {
		if strings.Contains(s, bsn) {
			f.t.Errorf("%s: text %d holds the BSN", what, i)
		}
	}
	if strings.Contains(f.logs.String(), bsn) {
		f.t.Errorf("%s: a log line holds the BSN", what)
	}
	err := f.store.Scan(context.Background(), nil, bytes.Repeat([]byte{0xff}, 32), func(k, v []byte) error {
		if bytes.Contains(k, []byte(bsn)) || bytes.Contains(v, []byte(bsn)) {
			f.t.Errorf("%s: the ledger's store holds the BSN under key %x", what, k[:min(len(k), 8)])
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	err = filepath.WalkDir(datadir.Dir(f.env.Dir).Ledger(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(bsn)) {
			f.t.Errorf("%s: the ledger's file %s holds the BSN", what, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// under16 picks a child under 16, for whom a parent may ask (a young person
// of 16 or over asks alone: a parent's release is refused then).
func under16(t testing.TB, children []synth.Child) synth.Child {
	t.Helper()
	for _, c := range children {
		if c.AgeBand != events.Age16Plus {
			return c
		}
	}
	t.Fatal("the synthetic children are all 16 or over")
	return synth.Child{}
}
