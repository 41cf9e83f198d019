package logtest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/trilliantest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/trillianlog"
)

// TestLedgerSurvivesTrillianRestart runs the ledger on a
// trillian_log_server of its own (on the harness's database), kills that
// server with SIGKILL while batches are being integrated and starts it
// again on the same address: every batch must still be acknowledged, once,
// with Trillian's tree equal to the ledger's and every proof verifying with
// x/mod's tlog.
func TestLedgerSurvivesTrillianRestart(t *testing.T) {
	env := trilliantest.Env(t, "go test ./ledger/logtest/", "TRILLIAN_ADDR", "TRILLIAN_BIN_DIR", "TRILLIAN_PG_URI")
	addr, binDir, uri := env[0], env[1], env[2]
	srv := &ownServer{t: t, bin: filepath.Join(binDir, "trillian_log_server"), uri: uri, addr: loopbackAddr(t), dir: t.TempDir()}
	srv.start()
	t.Cleanup(srv.kill)

	// The tree is made through the harness's server (same database), so
	// that it exists whatever state our own server is in.
	id := trilliantest.Tree(t, addr, "spoor-restart")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := trillianlog.Dial(ctx, srv.addr, id, trillianlog.Options{ChunkSize: 20, IntegrateTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{Merkle: b, IdleCosign: -1})
	defer s.Close()
	defer l.Close()

	const batches, per = 12, 40
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		// Once a few batches are in, crash the server and bring it back.
		for l.Head().Size < 1+3*per {
			time.Sleep(5 * time.Millisecond)
		}
		srv.kill()
		time.Sleep(700 * time.Millisecond)
		srv.start()
	}()
	for i := range batches {
		subs := make([]ledger.Submission, per)
		for j := range subs {
			env, _ := e.Event(t)
			subs[j] = e.Submission(t, l, env)
		}
		p, err := l.Submit(context.Background(), subs)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		out, err := p.Wait(context.Background())
		if err != nil {
			t.Fatalf("batch %d was not committed across the restart: %v", i, err)
		}
		for j, o := range out {
			if o.Err != nil || o.Duplicate {
				t.Fatalf("batch %d event %d: %+v", i, j, o)
			}
		}
	}
	<-restarted
	if srv.runs < 2 {
		t.Fatal("the log server was never restarted")
	}

	head := l.Head()
	if head.Size != 1+batches*per {
		t.Fatalf("head size %d, want %d", head.Size, 1+batches*per)
	}
	if n, err := b.Size(context.Background()); err != nil || n != head.Size {
		t.Fatalf("Trillian holds %d leaves (%v), want %d", n, err, head.Size)
	}
	var hs hashes
	leaf := make([]tlog.Hash, head.Size)
	for i := range head.Size {
		rec, err := l.LeafRecordBytes(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		leaf[i] = tlog.RecordHash(rec)
		add, err := tlog.StoredHashes(int64(i), rec, hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, add...)
	}
	if th, err := tlog.TreeHash(int64(head.Size), hs); err != nil || [32]byte(th) != head.Root {
		t.Fatalf("tlog's root %x (%v) differs from the checkpoint's %x", th[:8], err, head.Root[:8])
	}
	for i := range head.Size {
		p, err := l.InclusionProof(context.Background(), i, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		proof := make([]tlog.Hash, len(p))
		for k := range p {
			copy(proof[k][:], p[k])
		}
		if err := tlog.CheckRecord(proof, int64(head.Size), tlog.Hash(head.Root), int64(i), leaf[i]); err != nil {
			t.Fatalf("Trillian's proof of leaf %d: %v", i, err)
		}
	}
}

type hashes []tlog.Hash

func (h hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

// ownServer is a trillian_log_server this test runs, and kills, itself.
type ownServer struct {
	t    *testing.T
	bin  string
	uri  string
	addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	runs int
}

func (s *ownServer) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	out, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("log-server-%d.log", s.runs)))
	if err != nil {
		s.t.Error(err)
		return
	}
	defer out.Close()
	cmd := exec.Command(s.bin, "--storage_system=postgresql", "--postgresql_uri="+s.uri, "--quota_system=noop",
		"--rpc_endpoint="+s.addr, "--http_endpoint="+loopbackAddr(s.t))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Errorf("starting %s: %v", s.bin, err)
		return
	}
	s.cmd = cmd
}

// kill ends the server with SIGKILL, as a crash would.
func (s *ownServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func loopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
