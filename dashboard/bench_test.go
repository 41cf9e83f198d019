package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// BenchmarkConsole measures the console on a served ledger of
// SPOOR_BENCH_ENTRIES entries (default 20000), in one run: `spoor audit
// --url`'s audit over HTTP, the console's copy built from scratch (with
// its tables), the audit of the copy, the time from a new entry at the
// ledger to the copy holding it (on top of the follow interval), and every
// page's server time (p95 of 40 requests each, through the console's
// handler with a signed-in session), and a restart.
//
//	SPOOR_BENCH_ENTRIES=200000 go test -run '^$' -bench Console -benchtime 1x -count 3 -timeout 2h ./dashboard/
func BenchmarkConsole(b *testing.B) {
	n := uint64(20000)
	if v, err := strconv.ParseUint(os.Getenv("SPOOR_BENCH_ENTRIES"), 10, 64); err == nil && v > 0 {
		n = v
	}
	env := testledger.New(b)
	sl := env.Serve(b)
	t0 := time.Now()
	for sl.L.Head().Size < n {
		if _, err := env.SubmitEvents(b, sl.L, int(min(2000, n-sl.L.Head().Size))); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("the ledger: %d entries in %v", sl.L.Head().Size, time.Since(t0).Round(time.Second))
	ctx := context.Background()
	pw := filepath.Join(b.TempDir(), "pw.json")
	if err := SetPassword(pw, "correct horse battery staple"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		size := sl.L.Head().Size
		src := &audit.HTTPSource{URL: sl.Srv.URL, Token: testledger.FGToken}
		t0 := time.Now()
		if rep, err := audit.Run(ctx, src, audit.Config{Keys: env.Keys, AdminVkey: env.Demo.AdminVkey}); err != nil || !rep.OK {
			b.Fatalf("audit --url: %v", err)
		}
		auditRate := float64(size) / time.Since(t0).Seconds()

		s, err := New(Config{LedgerURL: sl.Srv.URL, Token: testledger.FGToken, Keys: env.Keys, AdminVkey: env.Demo.AdminVkey,
			PasswordFile: pw, Hosts: []string{"console.test"}, DataDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		s.Follow(ctx)
		if s.idx.Size() != size {
			b.Fatalf("the copy has %d of %d: %s", s.idx.Size(), size, s.snapshot().FollowErr)
		}
		buildRate := float64(size) / time.Since(t0).Seconds()
		t0 = time.Now()
		s.Refresh(ctx)
		if s.AuditedSize() != size {
			b.Fatalf("the audit of the copy: %s", s.snapshot().LastErr)
		}
		localRate := float64(size) / time.Since(t0).Seconds()

		// One new entry: the follow that brings it in.
		if _, err := env.SubmitEvents(b, sl.L, 1); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		s.Follow(ctx)
		newEntry := time.Since(t0)
		if s.idx.Size() != size+1 {
			b.Fatalf("the new entry did not arrive")
		}

		ss := s.sess.SignIn(s.sess.Create(), true)
		st := s.snapshot()
		pages := []string{"/", "/tabellen", "/bevindingen", "/afwijkingen", "/antwoorden", "/tabellen/csv/organisatie", "/rapport"}
		if len(st.Findings) > 0 {
			f := st.Findings[len(st.Findings)/2]
			pages = append(pages, "/bevindingen?organisatie="+f.Discloser, "/bevindingen?leeftijd=under-12&van=2020-01-01",
				"/vermelding/"+strconv.FormatUint(f.Leaf, 10), "/bevindingen.csv")
		}
		worst := 0.0
		for _, p := range pages {
			var ds []time.Duration
			for range 40 {
				req := httptest.NewRequest(http.MethodGet, "http://console.test"+p, nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: ss.ID})
				rec := httptest.NewRecorder()
				t0 := time.Now()
				s.Handler().ServeHTTP(rec, req)
				ds = append(ds, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", p, rec.Code)
				}
			}
			slices.Sort(ds)
			p95 := ds[len(ds)*95/100-1]
			b.Logf("%-50s p50 %8.2f ms, p95 %8.2f ms", p, ms(ds[len(ds)/2]), ms(p95))
			worst = max(worst, ms(p95))
		}
		b.Logf("%d entries, %d findings: audit --url %.0f/s, copy built %.0f/s (ratio %.2f), audit of the copy %.0f/s, a new entry followed in %v",
			size, len(st.Findings), auditRate, buildRate, buildRate/auditRate, localRate, newEntry.Round(time.Millisecond))
		b.ReportMetric(auditRate, "audit-url-entries/s")
		b.ReportMetric(buildRate, "copy-build-entries/s")
		b.ReportMetric(buildRate/auditRate, "ratio")
		b.ReportMetric(localRate, "audit-of-copy-entries/s")
		b.ReportMetric(ms(newEntry), "new-entry-ms")
		b.ReportMetric(worst, "worst-page-p95-ms")
		// A restart: the copy reopened (the tree re-checked, the
		// tombstones re-applied) and the tables recounted.
		dir := s.cfg.DataDir
		s.Close()
		t0 = time.Now()
		s, err = New(Config{LedgerURL: sl.Srv.URL, Token: testledger.FGToken, Keys: env.Keys, AdminVkey: env.Demo.AdminVkey,
			PasswordFile: pw, Hosts: []string{"console.test"}, DataDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Since(t0)
		s.tables.startBuild(s.idx.Size())
		if err := s.buildTables(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("restart: the copy reopened in %v, the tables recounted in %v", opened.Round(time.Millisecond), (time.Since(t0) - opened).Round(time.Millisecond))
		b.ReportMetric(time.Since(t0).Seconds(), "restart-s")
		s.Close()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
