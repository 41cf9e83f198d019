package index_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/dashboard/index"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// BenchmarkFollowVsAudit builds the copy of a served ledger of
// SPOOR_BENCH_ENTRIES entries (default 10000) from scratch and, in the same
// run, audits the ledger over HTTP as `spoor audit --url` does; it reports
// both rates in entries per second and their ratio (target >= 0.8).
//
//	SPOOR_BENCH_ENTRIES=20000 go test -run '^$' -bench FollowVsAudit -benchtime 1x -count 3 ./dashboard/index/
func BenchmarkFollowVsAudit(b *testing.B) {
	n := uint64(10000)
	if v, err := strconv.ParseUint(os.Getenv("SPOOR_BENCH_ENTRIES"), 10, 64); err == nil && v > 0 {
		n = v
	}
	env := testledger.New(b)
	sl := env.Serve(b)
	sl.Grow(b, n)
	size := sl.L.Head().Size
	ctx := context.Background()
	for b.Loop() {
		src := &audit.HTTPSource{URL: sl.Srv.URL, Token: testledger.FGToken}
		t0 := time.Now()
		rep, err := audit.Run(ctx, src, audit.Config{Keys: env.Keys, AdminVkey: env.Demo.AdminVkey})
		if err != nil || !rep.OK {
			b.Fatalf("audit: %v", err)
		}
		auditRate := float64(size) / time.Since(t0).Seconds()
		x, err := index.Open(b.TempDir(), env.Keys)
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if _, err := x.Follow(ctx, index.Remote{Src: src}, nil, nil, nil); err != nil || x.Size() != size {
			b.Fatalf("follow: %v at %d", err, x.Size())
		}
		followRate := float64(size) / time.Since(t0).Seconds()
		t0 = time.Now()
		if _, err := audit.Run(ctx, x, audit.Config{Keys: env.Keys, AdminVkey: env.Demo.AdminVkey}); err != nil {
			b.Fatal(err)
		}
		localRate := float64(size) / time.Since(t0).Seconds()
		x.Close()
		b.ReportMetric(auditRate, "audit-url-entries/s")
		b.ReportMetric(followRate, "index-build-entries/s")
		b.ReportMetric(followRate/auditRate, "ratio")
		b.ReportMetric(localRate, "audit-of-copy-entries/s")
	}
}
