package trillianlog_test

// These tests run against a real Trillian (log server, log signer,
// PostgreSQL), which .ci/trillian.sh starts:
//
//	bash .ci/trillian.sh run go test -race -count=1 ./ledger/trillianlog/
//
// Without TRILLIAN_ADDR they skip, except under CI=true, where a missing
// Trillian is a failure. Every test makes its own PREORDERED_LOG tree and
// checks Trillian's answers against golang.org/x/mod/sumdb/tlog, a Merkle
// implementation independent of both Trillian and the ledger.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/trillian"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/spoor-ledger/spoor/internal/trilliantest"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
	"github.com/spoor-ledger/spoor/verifier"
)

// trillianAddr returns the harness's log server, or skips (fails under CI).
func trillianAddr(tb testing.TB) string {
	tb.Helper()
	return trilliantest.Addr(tb, "go test ./ledger/trillianlog/")
}

func dialRaw(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// newTree creates and initialises a tree of the given type, as createtree
// does, and deletes it when the test ends (the signer then skips it).
func newTree(tb testing.TB, addr string, typ trillian.TreeType) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := dialRaw(tb, addr)
	admin := trillian.NewTrillianAdminClient(conn)
	tree, err := admin.CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        typ,
		DisplayName:     "spoor-test",
		MaxRootDuration: durationpb.New(time.Hour),
	}})
	if err != nil {
		tb.Fatalf("CreateTree: %v", err)
	}
	if _, err := trillian.NewTrillianLogClient(conn).InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
		tb.Fatalf("InitLog: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.DeleteTree(ctx, &trillian.DeleteTreeRequest{TreeId: tree.TreeId}); err != nil {
			tb.Logf("DeleteTree %d: %v", tree.TreeId, err)
		}
	})
	return tree.TreeId
}

// records makes n distinct leaf records in the ledger's byte form, with a
// tombstone every 50th.
func records(tb testing.TB, n int, seed string) [][]byte {
	tb.Helper()
	out := make([][]byte, n)
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range out {
		rec := verifier.LeafRecord{
			Type:          verifier.EntryDisclosure,
			BodyHash:      sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, i)),
			IntegratedAt:  base.Add(time.Duration(i) * time.Millisecond),
			CovenantIndex: 0,
		}
		if i == 0 {
			rec.Type = verifier.EntryCovenant
		} else if i%50 == 0 {
			rec.Type = verifier.EntryTombstone
			rec.ErasedIndex = uint64(i - 1)
			rec.RuleID = "retention.jeugdzorg:15y"
		}
		b, err := rec.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// tlogTree is the reference: the same records in golang.org/x/mod/sumdb/tlog.
type tlogTree struct {
	tb     testing.TB
	hashes []tlog.Hash
	n      int64
}

func (tt *tlogTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(tt.hashes)) {
			return nil, fmt.Errorf("stored hash %d not there", x)
		}
		out[i] = tt.hashes[x]
	}
	return out, nil
}

func (tt *tlogTree) add(recs ...[]byte) {
	for _, r := range recs {
		hs, err := tlog.StoredHashes(tt.n, r, tt)
		if err != nil {
			tt.tb.Fatal(err)
		}
		tt.hashes = append(tt.hashes, hs...)
		tt.n++
	}
}

func (tt *tlogTree) root(size uint64) [32]byte {
	h, err := tlog.TreeHash(int64(size), tt)
	if err != nil {
		tt.tb.Fatal(err)
	}
	return h
}

func dial(tb testing.TB, addr string, tree int64, opts trillianlog.Options) *trillianlog.Backend {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := trillianlog.Dial(ctx, addr, tree, opts)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

func TestIntegrateAgreesWithTlog(t *testing.T) {
	addr := trillianAddr(t)
	b := dial(t, addr, newTree(t, addr, trillian.TreeType_PREORDERED_LOG), trillianlog.Options{ChunkSize: 300})
	ctx := context.Background()

	recs := records(t, 2001, t.Name())
	ref := &tlogTree{tb: t}
	var ends []uint64
	first := uint64(0)
	for _, n := range []int{1, 2, 5, 256, 700, 1037} {
		end := first + uint64(n)
		got, err := b.Integrate(ctx, first, recs[first:end])
		if err != nil {
			t.Fatalf("Integrate(%d, %d leaves): %v", first, n, err)
		}
		ref.add(recs[first:end]...)
		if want := ref.root(end); got != want {
			t.Fatalf("root at %d: Trillian %x, tlog %x", end, got, want)
		}
		ends = append(ends, end)
		first = end
	}
	if size, err := b.Size(ctx); err != nil || size != first {
		t.Fatalf("Size = %d, %v; want %d", size, err, first)
	}
	// An empty batch is the root at that size.
	if got, err := b.Integrate(ctx, first, nil); err != nil || got != ref.root(first) {
		t.Fatalf("empty Integrate: %x, %v", got, err)
	}

	// Roots at older sizes, worked out from Trillian's proofs.
	for _, size := range []uint64{1, 2, 3, 8, 9, 263, 1000, 2000} {
		got, err := b.Root(ctx, size)
		if err != nil {
			t.Fatalf("Root(%d): %v", size, err)
		}
		if want := ref.root(size); got != want {
			t.Fatalf("Root(%d) = %x, tlog %x", size, got, want)
		}
	}

	for _, size := range ends {
		for _, idx := range []uint64{0, size / 3, size / 2, size - 1} {
			p, err := b.InclusionProof(ctx, idx, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", idx, size, err)
			}
			if err := verifier.VerifyInclusion(idx, size, verifier.LeafHash(recs[idx]), p, ref.root(size)); err != nil {
				t.Fatalf("inclusion proof of %d in %d: %v", idx, size, err)
			}
			want, err := tlog.ProveRecord(int64(size), int64(idx), ref)
			if err != nil {
				t.Fatal(err)
			}
			if !sameHashes(p, want) {
				t.Fatalf("inclusion proof of %d in %d differs from tlog's", idx, size)
			}
		}
	}
	for i, old := range ends {
		for _, newer := range ends[i:] {
			p, err := b.ConsistencyProof(ctx, old, newer)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", old, newer, err)
			}
			if err := verifier.VerifyConsistency(old, newer, ref.root(old), ref.root(newer), p); err != nil {
				t.Fatalf("consistency %d -> %d: %v", old, newer, err)
			}
			want, err := tlog.ProveTree(int64(newer), int64(old), ref)
			if err != nil {
				t.Fatal(err)
			}
			if !sameHashes(p, want) {
				t.Fatalf("consistency proof %d -> %d differs from tlog's", old, newer)
			}
		}
	}

	if _, err := b.InclusionProof(ctx, 5, first+1); !errors.Is(err, trillianlog.ErrNotCovered) {
		t.Fatalf("InclusionProof beyond the tree: %v, want ErrNotCovered", err)
	}
	if _, err := b.ConsistencyProof(ctx, 10, first+1); !errors.Is(err, trillianlog.ErrNotCovered) {
		t.Fatalf("ConsistencyProof beyond the tree: %v, want ErrNotCovered", err)
	}
	if _, err := b.Root(ctx, first+1); !errors.Is(err, trillianlog.ErrNotCovered) {
		t.Fatalf("Root beyond the tree: %v, want ErrNotCovered", err)
	}
}

func sameHashes[H ~[32]byte](a [][]byte, b []H) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i][:]) {
			return false
		}
	}
	return true
}

func TestIntegrateRetryAndDivergence(t *testing.T) {
	addr := trillianAddr(t)
	b := dial(t, addr, newTree(t, addr, trillian.TreeType_PREORDERED_LOG), trillianlog.Options{ChunkSize: 40})
	ctx := context.Background()
	recs := records(t, 200, t.Name())
	ref := &tlogTree{tb: t}
	ref.add(recs...)

	integrate := func(first uint64, leaves [][]byte) {
		t.Helper()
		got, err := b.Integrate(ctx, first, leaves)
		if err != nil {
			t.Fatalf("Integrate(%d, %d leaves): %v", first, len(leaves), err)
		}
		if want := ref.root(first + uint64(len(leaves))); got != want {
			t.Fatalf("Integrate(%d, %d leaves) = %x, tlog %x", first, len(leaves), got, want)
		}
	}
	integrate(0, recs[:100])
	// The same range again: every leaf is refused as present, checked, done.
	integrate(0, recs[:100])
	// Overlapping: half present, half new.
	integrate(50, recs[50:150])
	// An older range while Trillian is further along (a retry after a
	// crash): the root at exactly that size.
	integrate(0, recs[:10])
	integrate(97, recs[97:98])

	// A different leaf at an index Trillian holds is refused and reported.
	other := records(t, 200, "other")
	mixed := append([][]byte(nil), recs[:100]...)
	mixed[42] = other[42]
	if _, err := b.Integrate(ctx, 0, mixed); !errors.Is(err, trillianlog.ErrDiverged) {
		t.Fatalf("Integrate with another leaf at 42: %v, want ErrDiverged", err)
	}
	// In a batch that also adds new leaves: the new ones go in, the
	// diverging one is still reported.
	batch := [][]byte{recs[148], other[149], recs[150], recs[151]}
	if _, err := b.Integrate(ctx, 148, batch); !errors.Is(err, trillianlog.ErrDiverged) {
		t.Fatalf("Integrate with another leaf at 149: %v, want ErrDiverged", err)
	}
	if got, err := b.Root(ctx, 152); err != nil || got != ref.root(152) {
		t.Fatalf("Root(152) after the refusals = %x, %v; want tlog's %x", got, err, ref.root(152))
	}

	// A gap would never be integrated.
	if _, err := b.Integrate(ctx, 160, recs[160:170]); !errors.Is(err, trillianlog.ErrGap) {
		t.Fatalf("Integrate after a gap: %v, want ErrGap", err)
	}
	if _, err := b.Integrate(ctx, 0, [][]byte{{}}); err == nil {
		t.Fatal("Integrate of an empty leaf succeeded")
	}
	integrate(152, recs[152:])
}

func TestDialRefusesWrongTree(t *testing.T) {
	addr := trillianAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plain := newTree(t, addr, trillian.TreeType_LOG)
	if _, err := trillianlog.Dial(ctx, addr, plain, trillianlog.Options{}); !errors.Is(err, trillianlog.ErrWrongTree) {
		t.Fatalf("Dial on a LOG tree: %v, want ErrWrongTree", err)
	}
	if _, err := trillianlog.Dial(ctx, addr, 1<<62+12345, trillianlog.Options{}); !errors.Is(err, trillianlog.ErrWrongTree) {
		t.Fatalf("Dial on a tree that does not exist: %v, want ErrWrongTree", err)
	}
}

func TestDialUnreachable(t *testing.T) {
	// No Trillian needed: nothing listens on a port we just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = trillianlog.Dial(context.Background(), addr, 1, trillianlog.Options{ReadTimeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a closed port: %v, want a deadline error", err)
	}
}

// logServer is a trillian_log_server this test starts (and may kill) on
// the harness's database, next to the harness's own server and signer.
type logServer struct {
	tb   testing.TB
	bin  string
	uri  string
	addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	runs int
}

func startLogServer(tb testing.TB) *logServer {
	tb.Helper()
	env := trilliantest.Env(tb, "go test ./ledger/trillianlog/", "TRILLIAN_BIN_DIR", "TRILLIAN_PG_URI")
	binDir, uri := env[0], env[1]
	s := &logServer{tb: tb, bin: filepath.Join(binDir, "trillian_log_server"), uri: uri, addr: freeAddr(tb), dir: tb.TempDir()}
	s.start()
	tb.Cleanup(s.kill)
	return s
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *logServer) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	logFile, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("server-%d.log", s.runs)))
	if err != nil {
		s.tb.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--storage_system=postgresql", "--postgresql_uri="+s.uri, "--quota_system=noop",
		"--rpc_endpoint="+s.addr, "--http_endpoint="+freeAddr(s.tb))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting %s: %v", s.bin, err)
	}
	logFile.Close()
	s.cmd = cmd
}

// kill ends the server at once (SIGKILL), as a crash would.
func (s *logServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

func TestLogServerRestartLosesNothing(t *testing.T) {
	addr := trillianAddr(t)
	srv := startLogServer(t)
	tree := newTree(t, addr, trillian.TreeType_PREORDERED_LOG)
	b := dial(t, srv.addr, tree, trillianlog.Options{ChunkSize: 50, IntegrateTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	ctx := context.Background()

	const batches, per = 30, 100
	recs := records(t, batches*per, t.Name())
	ref := &tlogTree{tb: t}
	ref.add(recs...)

	restarted := make(chan struct{})
	for i := range batches {
		if i == 10 {
			// Kill the server while the next batches are under way, and
			// bring it back on the same address a little later.
			go func() {
				defer close(restarted)
				srv.kill()
				time.Sleep(700 * time.Millisecond)
				srv.start()
			}()
		}
		first := uint64(i * per)
		got, err := b.Integrate(ctx, first, recs[first:first+per])
		if err != nil {
			t.Fatalf("Integrate batch %d: %v", i, err)
		}
		if want := ref.root(first + per); got != want {
			t.Fatalf("batch %d: root %x, tlog %x", i, got, want)
		}
	}
	<-restarted
	if srv.runs != 2 {
		t.Fatalf("the server ran %d times, want 2", srv.runs)
	}

	// Nothing lost: every leaf is there, in order, through the harness's
	// own server too.
	conn := dialRaw(t, addr)
	client := trillian.NewTrillianLogClient(conn)
	var got [][]byte
	for uint64(len(got)) < uint64(len(recs)) {
		resp, err := client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: tree,
			StartIndex: int64(len(got)), Count: int64(len(recs) - len(got))})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Leaves) == 0 {
			t.Fatalf("Trillian has %d of %d leaves", len(got), len(recs))
		}
		for _, l := range resp.Leaves {
			got = append(got, l.LeafValue)
		}
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Fatalf("leaf %d differs after the restart", i)
		}
	}
	size := uint64(len(recs))
	for _, idx := range []uint64{0, 999, 1000, 1001, 2999} {
		p, err := b.InclusionProof(ctx, idx, size)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", idx, err)
		}
		if err := verifier.VerifyInclusion(idx, size, verifier.LeafHash(recs[idx]), p, ref.root(size)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.ConsistencyProof(ctx, 1000, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifyConsistency(1000, size, ref.root(1000), ref.root(size), p); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// BenchmarkIntegrate integrates b.N batches of 1000 leaf records into a
// fresh tree and reports leaves per second, Trillian's signer included:
//
//	bash .ci/trillian.sh run go test -run '^$' -bench Integrate -benchtime 20x ./ledger/trillianlog/
func BenchmarkIntegrate(b *testing.B) {
	addr := trillianAddr(b)
	backend := dial(b, addr, newTree(b, addr, trillian.TreeType_PREORDERED_LOG), trillianlog.Options{})
	ctx := context.Background()
	const per = 1000
	recs := make([][]byte, per)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// Fresh records per batch (distinct body hashes), made outside
		// Trillian's time as far as it matters: 1000 SHA-256s.
		for j := range recs {
			var body [32]byte
			binary.BigEndian.PutUint64(body[:], uint64(i*per+j))
			rec := verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: body,
				IntegratedAt: time.UnixMilli(int64(i*per + j)).UTC()}
			recs[j], _ = rec.MarshalBinary()
		}
		if _, err := backend.Integrate(ctx, uint64(i*per), recs); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*per)/elapsed.Seconds(), "leaves/s")
}
