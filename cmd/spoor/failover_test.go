package main

// TestLedgerFailover is the second cluster test of issue 9: two `spoor
// serve` processes on the same log against three nats-server processes
// clustered on loopback (R3). One is the active ledger (--replicate), the
// other a --standby that applies SPOOR_LOG to its own Pebble. Parties
// publish continuously; the active ledger is killed with SIGKILL; the
// standby must take the lease within its TTL (plus the time to notice),
// catch up and continue the same tree, and ingest goes on. At the end every
// receipted event is in the new active's log exactly once at the leaf its
// receipt named, and every checkpoint seen from either ledger is a prefix
// of the final tree: the tree only grew.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
)

// The patience of the failover test.
const (
	failoverLeaseTTL = 3 * time.Second
	failoverAckWait  = 5 * time.Second
	failoverBefore   = 3 * time.Second
	// failoverTakeover bounds how long after the kill the standby must be
	// the active ledger: the lease's TTL, the standby's poll (TTL/3) and
	// the catch-up, with room for a loaded machine.
	failoverTakeover = failoverLeaseTTL + 7*time.Second
	failoverResumed  = 50
	failoverAfter    = 2 * time.Second
	failoverDrain    = 30 * time.Second
)

func TestLedgerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("the failover test runs three nats-server processes and two spoor serve; skipped with -short")
	}
	began := time.Now()
	ctx := t.Context()
	cl, users, spoorBin, dir := startTestCluster(t)

	common := []string{"--nats", cl.urls("ledger", users.plain["SPOOR_LEDGER_PASSWORD"]), "--replicas", "3",
		"--retention-interval", "0", "--lease-ttl", failoverLeaseTTL.String(), "--ack-wait", failoverAckWait.String(),
		"--idle-cosign", "1s"}
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	active := newServeProc(t, spoorBin, dirA, append([]string{"--replicate"}, common...)...)
	startServe(t, active)
	t.Logf("active ledger ready after %s", time.Since(began).Round(time.Millisecond))

	// The standby runs the same log: the same log and cosigner keys, the
	// same covenant (here the demo one, with its keys) and FG token.
	for _, name := range []string{"log.key", "log.vkey", "cosigner.key", "cosigner.vkey", "index-vrf.key", "fg.token", "demo-keys"} {
		if err := copyTree(filepath.Join(active.data, name), filepath.Join(dirB, "data", name)); err != nil {
			t.Fatal(err)
		}
	}
	standby := newServeProc(t, spoorBin, dirB, append([]string{"--standby"}, common...)...)
	startServe(t, standby)
	if !standby.runLogContains("following SPOOR_LOG as a standby") {
		t.Fatal("the standby does not say it follows SPOOR_LOG")
	}

	h := newClusterHarness(t, cl, active, users)
	defer h.stop()
	w := &failoverWatch{keys: h.keys}
	wctx, stopWatch := context.WithCancel(ctx)
	var watchers sync.WaitGroup
	for _, s := range []*serveProc{active, standby} {
		watchers.Add(1)
		go func() { defer watchers.Done(); w.poll(wctx, s) }()
	}

	h.startLoad(ctx)
	sleepCtx(ctx, failoverBefore)
	before := h.snapshot()
	if standby.runLogContains("now the active one") {
		t.Fatal("the standby became active while the active ledger ran")
	}
	if err := active.kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("killed the active ledger with SIGKILL after %s of load: %d events made, %d acked by the bus, %d receipted",
		failoverBefore, before.made, before.acked, before.receipted)

	var takeover, resumed time.Duration
	for time.Since(killedAt) < failoverTakeover+20*time.Second && sleepCtx(ctx, 20*time.Millisecond) {
		if takeover == 0 && standby.runLogContains("this ledger is now the active one") {
			takeover = time.Since(killedAt)
		}
		if resumed == 0 && h.snapshot().receipted >= before.receipted+failoverResumed {
			resumed = time.Since(killedAt)
		}
		if takeover != 0 && resumed != 0 {
			break
		}
	}
	switch {
	case takeover == 0:
		t.Fatalf("the standby did not take over within %s of the kill", failoverTakeover+20*time.Second)
	case takeover > failoverTakeover:
		t.Errorf("the standby took over %s after the kill, want within %s (lease TTL %s)", takeover, failoverTakeover, failoverLeaseTTL)
	}
	if resumed == 0 {
		t.Errorf("after the takeover, %d more events were not receipted", failoverResumed)
	}
	t.Logf("the standby took over %s after the kill (lease TTL %s); %d more events receipted %s after the kill",
		takeover.Round(time.Millisecond), failoverLeaseTTL, failoverResumed, resumed.Round(time.Millisecond))

	sleepCtx(ctx, failoverAfter)
	h.stopProducers()
	if err := h.drain(failoverDrain); err != nil {
		t.Error(err)
	}
	stopWatch()
	watchers.Wait()

	// The new active holds the log now: every receipted event once, at
	// its leaf; every checkpoint seen is a prefix of its tree.
	h.srv = standby
	st := h.checkLog(ctx)
	n, err := w.check(ctx, standby)
	if err != nil {
		t.Error(err)
	}
	if err := standby.interrupt(15 * time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("failover test: %d events made, %d receipted; the log holds %d entries (%d disclosures), each receipted event exactly once; %d checkpoints of both ledgers consistent with the final tree; took %s",
		len(h.events), h.receipted.Load(), st.size, st.disclosures, n, time.Since(began).Round(time.Millisecond))
}

// copyTree copies a file or a folder (0600 files, 0700 folders).
func copyTree(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if !fi.IsDir() {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	des, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := copyTree(filepath.Join(src, de.Name()), filepath.Join(dst, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// failoverWatch collects the checkpoints both ledgers serve.
type failoverWatch struct {
	keys *verifier.LogKeys
	mu   sync.Mutex
	cps  []*verifier.Checkpoint
	bad  []string
}

func (w *failoverWatch) poll(ctx context.Context, s *serveProc) {
	for sleepCtx(ctx, 100*time.Millisecond) {
		if !s.running() {
			continue
		}
		b, err := getWithToken(ctx, s.url()+"/checkpoint", "")
		if err != nil {
			continue
		}
		cp, err := verifier.OpenCheckpoint(b, w.keys)
		w.mu.Lock()
		if err != nil {
			w.bad = append(w.bad, err.Error())
		} else {
			w.cps = append(w.cps, cp)
		}
		w.mu.Unlock()
	}
}

// check verifies that checkpoints of one size agree and that each is
// consistent with the final tree of s (by the ledger's proof).
func (w *failoverWatch) check(ctx context.Context, s *serveProc) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		return 0, fmt.Errorf("%d checkpoints did not verify, first: %s", len(w.bad), w.bad[0])
	}
	b, err := getWithToken(ctx, s.url()+"/checkpoint", "")
	if err != nil {
		return 0, err
	}
	final, err := verifier.OpenCheckpoint(b, w.keys)
	if err != nil {
		return 0, err
	}
	cps := slices.Clone(w.cps)
	slices.SortFunc(cps, func(a, b *verifier.Checkpoint) int { return cmpUint(a.Size, b.Size) })
	bySize := map[uint64][32]byte{}
	for _, cp := range cps {
		if cp.Size > final.Size {
			return 0, fmt.Errorf("a checkpoint of size %d was served, but the final tree has %d: the tree shrank", cp.Size, final.Size)
		}
		if h, ok := bySize[cp.Size]; ok {
			if h != cp.Hash {
				return 0, fmt.Errorf("two checkpoints of size %d with different roots (a fork)", cp.Size)
			}
			continue
		}
		bySize[cp.Size] = cp.Hash
		if cp.Size == 0 || cp.Size == final.Size {
			if cp.Size == final.Size && cp.Hash != final.Hash {
				return 0, fmt.Errorf("two checkpoints of size %d with different roots (a fork)", cp.Size)
			}
			continue
		}
		pb, err := getWithToken(ctx, fmt.Sprintf("%s/v1/proof/consistency?old=%d&new=%d", s.url(), cp.Size, final.Size), "")
		if err != nil {
			return 0, err
		}
		var resp httpapi.ConsistencyResponse
		if err := json.Unmarshal(pb, &resp); err != nil {
			return 0, err
		}
		if err := verifier.VerifyConsistency(cp.Size, final.Size, cp.Hash, final.Hash, resp.Proof); err != nil {
			return 0, fmt.Errorf("checkpoint of size %d is not a prefix of the final tree: %w", cp.Size, err)
		}
	}
	if len(bySize) < 3 {
		return 0, fmt.Errorf("only %d checkpoint sizes were seen", len(bySize))
	}
	return len(cps), nil
}

// TestReplicateNeedsCluster: replication runs over an external cluster;
// spoor serve refuses --replicate or --standby without --nats, and a lease
// too short to renew, before it touches the data folder.
func TestReplicateNeedsCluster(t *testing.T) {
	for _, c := range []struct {
		repl replicaFlags
		nats string
	}{
		{replicaFlags{replicate: true, leaseTTL: time.Second}, ""},
		{replicaFlags{standby: true, leaseTTL: time.Second}, ""},
		{replicaFlags{standby: true, leaseTTL: time.Millisecond}, "nats://127.0.0.1:1"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		err := runServe(t.Context(), slog.New(slog.DiscardHandler), &serveFlags{data: data, replicas: 1, natsURL: c.nats, repl: c.repl})
		if err == nil || !(strings.Contains(err.Error(), "--nats") || strings.Contains(err.Error(), "--lease-ttl")) {
			t.Errorf("%+v with --nats %q: %v, want a refusal", c.repl, c.nats, err)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("%+v: the data folder was created before the refusal", c.repl)
		}
	}
}
