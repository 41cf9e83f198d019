package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/verifier/monitor"
)

// TestForkAlarmOnHealthPage: a console whose copy followed one ledger and
// is then served another tree under the same keys (a fork) keeps its copy
// at the last verified checkpoint and shows the alarm on the overview.
func TestForkAlarmOnHealthPage(t *testing.T) {
	ctx := context.Background()
	env := testledger.New(t)
	sl := env.Serve(t)
	sl.Grow(t, 30)
	twin := env.Twin(t).Serve(t)
	twin.Grow(t, 60)
	pw := filepath.Join(t.TempDir(), "pw.json")
	if err := SetPassword(pw, "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(url string) *Server {
		s, err := New(Config{LedgerURL: url, Token: testledger.FGToken, Keys: env.Keys, AdminVkey: env.Demo.AdminVkey,
			PasswordFile: pw, Hosts: []string{"console.test"}, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(sl.Srv.URL)
	s.Follow(ctx)
	size := s.idx.Size()
	if size != sl.L.Head().Size {
		t.Fatalf("the copy has %d, the ledger %d", size, sl.L.Head().Size)
	}
	s.Close()

	s = open(twin.Srv.URL)
	defer s.Close()
	if s.Follow(ctx) {
		t.Fatal("the copy grew from a fork")
	}
	st := s.snapshot()
	if st.Alarm == nil || (st.Alarm.Kind != monitor.Fork && st.Alarm.Kind != monitor.BadTiles) || st.Size != size {
		t.Fatalf("after a fork: alarm %v, size %d (was %d)", st.Alarm, st.Size, size)
	}
	ss := s.sess.SignIn(s.sess.Create(), true)
	req := httptest.NewRequest(http.MethodGet, "http://console.test/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: ss.ID})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `id="alarm"`) || !strings.Contains(body, "ALARM ("+string(st.Alarm.Kind)+")") {
		t.Fatalf("the overview after a fork: %d\n%s", rec.Code, body)
	}
}
