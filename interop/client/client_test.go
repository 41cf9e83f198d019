package client_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/witness/persistence/inmemory"
	tw "github.com/transparency-dev/witness/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
	"github.com/spoor-ledger/spoor/witness/client"
)

// testLog is a Spoor log in memory: real checkpoints (log key and its own
// cosigner) over an x/mod tree.
type testLog struct {
	t      *testing.T
	origin string
	vkey   string
	signer *verifier.CheckpointSigner
	keys   *verifier.LogKeys
	tree   *memtree.MemTree
	size   int64
}

func newTestLog(t *testing.T) *testLog {
	t.Helper()
	origin := "spoor.example/client"
	logSkey, logVkey, cosSkey, cosVkey, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verifier.NewCheckpointSigner(logSkey, cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(logVkey, cosVkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, vkey: logVkey, signer: s, keys: keys, tree: memtree.New()}
}

// grow adds n leaves and returns the checkpoint of the new size.
func (l *testLog) grow(n int) *verifier.Checkpoint {
	l.t.Helper()
	l.tree.Grow(l.t, n)
	l.size += int64(n)
	return l.sign(l.size, l.tree.Root(l.t, l.size))
}

func (l *testLog) sign(size int64, root [32]byte) *verifier.Checkpoint {
	l.t.Helper()
	b, err := l.signer.Sign(l.origin, uint64(size), root)
	if err != nil {
		l.t.Fatal(err)
	}
	cp, err := verifier.OpenCheckpoint(b, l.keys)
	if err != nil {
		l.t.Fatal(err)
	}
	return cp
}

func (l *testLog) proof(_ context.Context, old, new uint64) ([][]byte, error) {
	return l.tree.Proof(l.t, int64(old), int64(new)), nil
}

// testWitness is a witness server with a request counter.
type testWitness struct {
	name     string
	vkey     string
	url      string
	requests atomic.Int64
	srv      *httptest.Server
}

func witnessKey(t *testing.T, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := verifier.GenerateWitnessKey(name + ".example")
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func serve(t *testing.T, name, vkey string, h http.Handler) *testWitness {
	tw := &testWitness{name: name, vkey: vkey}
	tw.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		tw.requests.Add(1)
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(tw.srv.Close)
	tw.url = tw.srv.URL
	return tw
}

// spoorWitness runs Spoor's own witness (package witness) for l.
func spoorWitness(t *testing.T, name string, l *testLog) (*testWitness, *witness.Witness) {
	t.Helper()
	signer, vkey := witnessKey(t, name)
	w, err := witness.New(witness.Config{Signer: signer, VKey: vkey, StateDir: t.TempDir(),
		Logs: []witness.LogConfig{{Origin: l.origin, VKey: l.vkey}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return serve(t, name, vkey, w.Handler()), w
}

// peerWitness runs transparency-dev/witness, an implementation not
// written here, for l.
func peerWitness(t *testing.T, name string, l *testLog) *testWitness {
	t.Helper()
	signer, vkey := witnessKey(t, name)
	logV, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := tw.New(context.Background(), tw.Opts{Persistence: inmemory.New(), Signers: []note.Signer{signer},
		VerifierForLog: func(_ context.Context, origin string) (note.Verifier, bool, error) {
			return logV, origin == l.origin, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", tw.NewHTTPHandler(peer).AddCheckpoint)
	return serve(t, name, vkey, mux)
}

// implWitness runs Spoor's witness ("spoor") or transparency-dev's
// ("peer").
func implWitness(t *testing.T, impl, name string, l *testLog) *testWitness {
	t.Helper()
	if impl == "spoor" {
		w, _ := spoorWitness(t, name, l)
		return w
	}
	return peerWitness(t, name, l)
}

// newClient makes a client for a policy over ws with quorum "k of all".
func newClient(t *testing.T, l *testLog, k int, ws ...*testWitness) (*client.Client, *events.WitnessPolicy) {
	t.Helper()
	var text, names strings.Builder
	fmt.Fprintf(&text, "log %s\n", l.vkey)
	for _, w := range ws {
		fmt.Fprintf(&text, "witness %s %s %s\n", w.name, w.vkey, w.url)
		names.WriteString(" " + w.name)
	}
	fmt.Fprintf(&text, "group all-witnesses %d%s\nquorum all-witnesses\n", k, names.String())
	p, err := events.ParseWitnessPolicy(text.String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Policy: p, Proof: l.proof, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// withCosignatures returns cp's note with the gathered lines appended,
// opened again, for the verifier's policy check.
func withCosignatures(t *testing.T, l *testLog, cp *verifier.Checkpoint, res *client.GatherResult) *verifier.Checkpoint {
	t.Helper()
	b := append([]byte(nil), cp.Note...)
	for _, cs := range res.Cosignatures {
		b = append(b, cs.Lines...)
	}
	out, err := verifier.OpenCheckpoint(b, l.keys)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGatherQuorumOneDown: 2 of 3 witnesses (Spoor's and
// transparency-dev's, the third down) cosign, through growth of the log,
// and the verifier's policy check accepts the gathered cosignatures.
func TestGatherQuorumOneDown(t *testing.T) {
	l := newTestLog(t)
	a, _ := spoorWitness(t, "fg-a", l)
	b := peerWitness(t, "fg-b", l)
	down, _ := spoorWitness(t, "fg-c", l)
	down.srv.Close()
	c, policy := newClient(t, l, 2, a, b, down)
	ctx := context.Background()
	for _, n := range []int{5, 1, 300} {
		cp := l.grow(n)
		res, err := c.Gather(ctx, cp, cp.Size)
		if err != nil || !res.Met || len(res.Cosignatures) != 2 {
			t.Fatalf("size %d: %+v, %v; want 2 cosignatures", cp.Size, res, err)
		}
		if err := res.Errors["fg-c"]; err == nil {
			t.Errorf("size %d: no error for the witness that is down", cp.Size)
		}
		if pr, err := verifier.CheckWitnessPolicy(withCosignatures(t, l, cp, res), policy); err != nil || !pr.Met {
			t.Fatalf("size %d: the verifier does not accept the gathered cosignatures: %+v, %v", cp.Size, pr, err)
		}
	}
	// Two down: no quorum, and the error says so.
	a.srv.Close()
	cp := l.grow(2)
	if res, err := c.Gather(ctx, cp, cp.Size); !errors.Is(err, verifier.ErrQuorumNotMet) || res.Met {
		t.Fatalf("two of three down: %+v, %v; want ErrQuorumNotMet", res, err)
	}
}

// TestStaleWitnessCaughtUp: a witness that cosigned size 9 for another
// client answers a fresh client's "old 0" with 409 and 9; the client
// resends from 9 with a proof and gets the cosignature, for both
// implementations.
func TestStaleWitnessCaughtUp(t *testing.T) {
	for _, impl := range []string{"spoor", "peer"} {
		t.Run(impl, func(t *testing.T) {
			l := newTestLog(t)
			w := implWitness(t, impl, "fg-a", l)
			first, _ := newClient(t, l, 1, w)
			cp9 := l.grow(9)
			if _, err := first.Submit(context.Background(), "fg-a", cp9, 9); err != nil {
				t.Fatal(err)
			}
			fresh, _ := newClient(t, l, 1, w)
			cp25 := l.grow(16)
			before := w.requests.Load()
			cs, err := fresh.Submit(context.Background(), "fg-a", cp25, 25)
			if err != nil || cs.Witness != "fg-a" || len(cs.Lines) == 0 {
				t.Fatalf("catching up from 9: %+v, %v", cs, err)
			}
			if got := w.requests.Load() - before; got != 2 {
				t.Errorf("%d requests, want 2 (409, then 200)", got)
			}
		})
	}
}

// TestForkAlarmNotRetried: after size 10 is cosigned, another root at
// size 10 (and a tree beyond it not extending the cosigned one) raises a
// fork alarm after exactly one request, with Spoor's witness (422) and
// transparency-dev's (which may answer 409 echoing the old size).
func TestForkAlarmNotRetried(t *testing.T) {
	for _, impl := range []string{"spoor", "peer"} {
		t.Run(impl, func(t *testing.T) {
			l := newTestLog(t)
			w := implWitness(t, impl, "fg-a", l)
			c, _ := newClient(t, l, 1, w)
			ctx := context.Background()
			cp := l.grow(10)
			if _, err := c.Submit(ctx, "fg-a", cp, 10); err != nil {
				t.Fatal(err)
			}
			fork := l.sign(10, sha256.Sum256([]byte("another tree")))
			before := w.requests.Load()
			_, err := c.Submit(ctx, "fg-a", fork, 10)
			var alarm *client.ForkAlarm
			if !errors.As(err, &alarm) || !errors.Is(err, client.ErrFork) || alarm.Witness != "fg-a" {
				t.Fatalf("same size, another root: %v; want a ForkAlarm", err)
			}
			t.Logf("%s witness: %v", impl, alarm)
			if got := w.requests.Load() - before; got != 1 {
				t.Errorf("%d requests for the fork, want 1 (never retried)", got)
			}
			// The real next checkpoint is still cosigned.
			if _, err := c.Submit(ctx, "fg-a", l.grow(3), 13); err != nil {
				t.Fatalf("the log's own next checkpoint after the fork alarm: %v", err)
			}
		})
	}
}

// TestRollbackAlarm: a witness holding size 30 while the log's tree has
// 20 (a backup restored behind the witnesses) raises the rollback alarm;
// a witness merely ahead of the checkpoint sent, within the log, is not an
// alarm.
func TestRollbackAlarm(t *testing.T) {
	l := newTestLog(t)
	w, _ := spoorWitness(t, "fg-a", l)
	c, _ := newClient(t, l, 1, w)
	ctx := context.Background()
	cp20 := l.grow(20)
	cp30 := l.grow(10)
	if _, err := c.Submit(ctx, "fg-a", cp30, 30); err != nil {
		t.Fatal(err)
	}
	// A new client of the restored log: its tree has 20 leaves.
	restored, _ := newClient(t, l, 1, w)
	_, err := restored.Submit(ctx, "fg-a", cp20, 20)
	var alarm *client.RollbackAlarm
	if !errors.As(err, &alarm) || !errors.Is(err, client.ErrRollback) || alarm.WitnessSize != 30 || alarm.LogSize != 20 {
		t.Fatalf("witness at 30, log at 20: %v; want a RollbackAlarm", err)
	}
	// The same answer for a log whose tree has 30: an older checkpoint,
	// not an alarm.
	fresh, _ := newClient(t, l, 1, w)
	if _, err := fresh.Submit(ctx, "fg-a", cp20, 30); !errors.Is(err, client.ErrWitnessAhead) {
		t.Fatalf("witness at 30, checkpoint 20, log 30: %v; want ErrWitnessAhead", err)
	}
}

// TestAnswersWithoutMeaning: a 200 whose cosignature is not by the
// policy's key, a 409 without a size or echoing the old size (how
// tlog-witness v1.0.0 witnesses answer a fork), a 500, and 409s that never
// settle each give their typed error.
func TestAnswersWithoutMeaning(t *testing.T) {
	l := newTestLog(t)
	_, vkey := witnessKey(t, "fg-a")
	impostor, _ := witnessKey(t, "fg-a")
	cp := l.grow(4)
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want func(error) bool
	}{
		{"cosignature by another key", func(rw http.ResponseWriter, r *http.Request) {
			text := cp.Note[:strings.LastIndex(string(cp.Note), "\n\n")+1]
			signed, _ := note.Sign(&note.Note{Text: string(text)}, impostor)
			_, _ = rw.Write(signed[len(text)+1:])
		}, func(err error) bool { return errors.Is(err, client.ErrBadCosignature) }},
		{"409 without a size", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
		}, func(err error) bool { return errors.Is(err, client.ErrFork) }},
		{"409 echoing the request's old size", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			_, _ = rw.Write([]byte("0\n")) // the client sent old 0
		}, func(err error) bool { return errors.Is(err, client.ErrFork) }},
		{"500", func(rw http.ResponseWriter, r *http.Request) {
			http.Error(rw, "boom", http.StatusInternalServerError)
		}, func(err error) bool {
			var se *client.StatusError
			return errors.As(err, &se) && se.Status == 500
		}},
		{"409 forever", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			// Always one more than asked: never the size the client sends.
			body := make([]byte, 64)
			n, _ := r.Body.Read(body)
			var old uint64
			_, _ = fmt.Sscanf(string(body[:n]), "old %d", &old)
			fmt.Fprintf(rw, "%d\n", (old+1)%4)
		}, func(err error) bool { return errors.Is(err, client.ErrTooManyConflicts) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, "fg-a", vkey, tc.h)
			c, _ := newClient(t, l, 1, w)
			if _, err := c.Submit(context.Background(), "fg-a", cp, 4); !tc.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestGatherDoesNotWaitForSlowWitness: a witness that never answers does
// not hold up Gather once the quorum is met (it returns after the greedy
// window), and when the quorum needs it, Gather returns after the
// per-witness timeout with the timeout as that witness's error.
func TestGatherDoesNotWaitForSlowWitness(t *testing.T) {
	l := newTestLog(t)
	fast, _ := spoorWitness(t, "fg-a", l)
	_, vkey := witnessKey(t, "fg-b")
	stop := make(chan struct{})
	slow := serve(t, "fg-b", vkey, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		<-stop // the server would not notice the client leaving before it reads the body
	}))
	t.Cleanup(func() { close(stop) }) // runs before the server's Close
	cp := l.grow(3)
	for _, tc := range []struct {
		k    int
		met  bool
		most time.Duration
	}{{1, true, time.Second}, {2, false, 2 * time.Second}} {
		policy, err := events.ParseWitnessPolicy(fmt.Sprintf("witness fg-a %s %s\nwitness fg-b %s %s\ngroup g %d fg-a fg-b\nquorum g\n",
			fast.vkey, fast.url, slow.vkey, slow.url, tc.k))
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Config{Policy: policy, Proof: l.proof, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := c.Gather(context.Background(), cp, cp.Size)
		took := time.Since(start)
		if res.Met != tc.met || (err == nil) != tc.met || took > tc.most {
			t.Fatalf("quorum %d: met %v, %v after %v", tc.k, res.Met, err, took)
		}
		if tc.k == 1 && took >= 300*time.Millisecond {
			t.Errorf("quorum 1 met by the fast witness, yet Gather took %v (the slow one's timeout)", took)
		}
		if tc.k == 2 && !errors.Is(res.Errors["fg-b"], context.DeadlineExceeded) {
			t.Errorf("the slow witness's error is %v, want a timeout", res.Errors["fg-b"])
		}
	}
}
