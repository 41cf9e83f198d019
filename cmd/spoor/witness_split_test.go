package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// TestSplitViewRefused plays the operator turned rogue of issue 20: it
// holds the log key and the log's cosigner key (serve's data folder) and
// wants to show one party a tree the others do not see. The ledger runs as
// `spoor serve` on a covenant whose 2-of-3 witness policy names three
// `spoor witness serve` processes.
//
//   - Split view at the witnesses: for each witness, at the size it
//     cosigned, the rogue signs another root (a tree of the log's own first
//     leaf records, then forged ones), and a fork beyond it with a
//     consistency proof from that forged tree. Every witness refuses every
//     one (422, or 409 where the protocol answers so) and still serves the
//     checkpoint it had. The ledger is not fooled: it serves the same
//     witnessed head, raises no alarm, and its next checkpoint is
//     witnessed as before.
//   - A bundle on the fork: a real bundle from `spoor inzage`, its
//     checkpoint swapped for the forged one (the log's own signatures) and
//     every inclusion proof recomputed in the forged tree, so that nothing
//     but the witnesses can tell: `spoor verify` refuses it (exit 1, the
//     witness quorum the only problem), with no witness lines, with the
//     real checkpoint's witness lines copied over, and at a size beyond.
//   - The monitor (`spoor monitor --once`), having verified the real log,
//     pointed at a server that serves the fork raises a fork alarm (exit 2),
//     and goes on with the real log afterwards.
//   - One witness fooled: the rogue gets fg-c to cosign a forged extension
//     before the real log reaches that size. Once the log grows past it the
//     ledger raises a fork alarm for fg-c (an ERROR line, the metric,
//     /healthz degraded) and fg-a and fg-b still make the quorum.
func TestSplitViewRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve and three spoor witness processes")
	}
	w := startWitnessedServe(t)

	// Traffic through the real command line, receipts and all.
	report := filepath.Join(t.TempDir(), "simulate.json")
	if _, errOut, code := runBin(t, w.bin, "", "simulate", "--data", w.srv.data, "--nats", w.srv.natsURL(),
		"--events", "60", "--children", "6", "--seed", "7", "--report", report); code != 0 {
		t.Fatalf("spoor simulate: exit %d\n%s", code, errOut)
	}
	w.waitWitnessed()
	head, by := w.checkpoint()
	if len(by) < 2 {
		t.Fatalf("the witnessed head has %d cosignatures", len(by))
	}
	headBytes := w.get("/checkpoint")
	records := w.leafRecords(head, head.Size)
	w.settleWitnesses(head.Size)

	// 1. Every witness refuses the split view.
	for _, name := range witnessNames {
		p := w.ws[name]
		before := servedCheckpoint(t, p.url(), w.origin)
		held := w.openWitnessed(before, name).Size
		if held < 2 || held > head.Size {
			t.Fatalf("%s holds size %d, the log %d", name, held, head.Size)
		}
		// The log's first leaves, then forged ones from the one before the
		// size the witness holds: another root at that size.
		rogue := memtree.New()
		for _, rec := range records[:held-1] {
			rogue.Append(t, rec)
		}
		for i := range 5 {
			rogue.Append(t, fmt.Appendf(nil, "a disclosure only one party is shown (%s, %d)", name, i))
		}
		atSize := w.sign(int64(held), rogue.Root(t, int64(held)))
		beyond := w.sign(int64(held)+4, rogue.Root(t, int64(held)+4))
		for _, probe := range []struct {
			what string
			req  *witness.AddCheckpointRequest
			want []int
		}{
			{"another root at the size it cosigned", &witness.AddCheckpointRequest{OldSize: held, Checkpoint: atSize}, []int{422, 409}},
			{"a fork beyond it, with a proof from the forged tree", &witness.AddCheckpointRequest{OldSize: held,
				Proof: rogue.Proof(t, int64(held), int64(held)+4), Checkpoint: beyond}, []int{422}},
			{"the fork at its size, claiming old 0", &witness.AddCheckpointRequest{OldSize: 0, Checkpoint: atSize}, []int{409}},
		} {
			code, _, body := rawPost(t, p.url(), probe.req.Marshal())
			if !slices.Contains(probe.want, code) {
				t.Fatalf("%s, %s: %d %q, want one of %v", name, probe.what, code, body, probe.want)
			}
			if code == http.StatusConflict && string(body) != fmt.Sprintf("%d\n", held) {
				t.Fatalf("%s, %s: 409 %q, want the size it holds (%d)", name, probe.what, body, held)
			}
			t.Logf("%s (holds %d), %s: %d", name, held, probe.what, code)
		}
		if after := servedCheckpoint(t, p.url(), w.origin); !bytes.Equal(after, before) {
			t.Fatalf("%s changed what it serves after refusing the forks:\n%s\nto\n%s", name, before, after)
		}
	}
	// The ledger was not asked and is not fooled: the same witnessed head,
	// no alarm, and the next checkpoint witnessed as before.
	if got := w.get("/checkpoint"); !bytes.Equal(got, headBytes) {
		t.Fatalf("/checkpoint changed while the log did not grow:\n%s\nto\n%s", headBytes, got)
	}
	h := w.publishAndWitness(20)
	grown, by := w.checkpoint()
	if grown.Size <= head.Size || len(by) < 2 {
		t.Fatalf("after the forks: witnessed size %d (was %d), cosigned by %v", grown.Size, head.Size, by)
	}
	w.noAlarm("after the witnesses refused the forks", h)

	// 2. A bundle built on a fork fails spoor verify.
	w.bundleOnFork(t, report)

	// 3. The monitor alarms at a server that serves the fork.
	w.monitorOnFork(t)

	// 4. One witness fooled: fg-c cosigns a forged extension of what it
	// holds, one leaf, before the real log has that leaf. The real log's
	// next checkpoint is then at least that size: another tree at a size
	// this log has, a fork (never a rollback: the witness is never ahead
	// of the log's tree when it is next asked).
	h = w.waitWitnessed()
	cur, _ := w.checkpoint()
	w.settleWitnesses(cur.Size)
	victim := w.ws["fg-c"]
	held := w.openWitnessed(servedCheckpoint(t, victim.url(), w.origin), "fg-c").Size
	records = w.leafRecords(cur, held)
	rogue := memtree.New()
	for _, rec := range records {
		rogue.Append(t, rec)
	}
	rogue.Append(t, []byte("a disclosure the real log never had"))
	fooled := w.sign(int64(held)+1, rogue.Root(t, int64(held)+1))
	if code, _, body := rawPost(t, victim.url(), (&witness.AddCheckpointRequest{OldSize: held,
		Proof: rogue.Proof(t, int64(held), int64(held)+1), Checkpoint: fooled}).Marshal()); code != http.StatusOK {
		t.Fatalf("fg-c refused the rogue extension it cannot tell from a real one: %d %q", code, body)
	}
	h = w.publishAndWitness(10)
	for deadline := time.Now().Add(30 * time.Second); !w.srv.runLogContains("FORK ALARM"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no FORK ALARM in serve's log within 30 s of the log passing the fooled witness's size")
		}
	}
	if !w.srv.runLogContains(`witness=fg-c`) || w.srv.runLogContains("ROLLBACK ALARM") {
		t.Fatalf("the alarm does not name fg-c, or a rollback alarm was raised:\n%s", w.srv.logTail(30))
	}
	if got := w.alarmMetrics(); len(got) != 1 || got["fg-c/fork"] != 1 {
		t.Fatalf("alarm metrics %v, want one fork alarm for fg-c", got)
	}
	h = w.health()
	if h.Status != "degraded" || !strings.Contains(h.Witnessing, "fg-c") {
		t.Fatalf("/healthz with a fork alarm open: %+v", h)
	}
	final, by := w.checkpoint()
	if final.Size != h.TreeSize || !by["fg-a"] || !by["fg-b"] || by["fg-c"] {
		t.Fatalf("the witnessed head (size %d of %d) is cosigned by %v, want fg-a and fg-b only", final.Size, h.TreeSize, by)
	}
	if final.Size <= held+1 {
		t.Fatalf("the log (%d) did not pass the fooled witness's size (%d)", final.Size, held+1)
	}
	t.Logf("fg-c fooled at size %d; the log at %d, witnessed by fg-a and fg-b; /healthz: %s", held+1, final.Size, h.Witnessing)
}

// settleWitnesses waits, up to 10 s, until every witness holds the log's
// head of the given size. The ledger's round ends once the quorum answered
// and cancels the request still out to the third witness, which may
// persist it a moment later all the same; the rogue must see what each
// witness holds after that, or a probe races the ledger's own request. A
// witness still behind after 10 s is not answering anything any more, and
// what it holds then is what the probes start from.
func (w *witnessedServe) settleWitnesses(size uint64) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range witnessNames {
		for time.Now().Before(deadline) {
			if w.openWitnessed(servedCheckpoint(w.t, w.ws[name].url(), w.origin), name).Size == size {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// sign signs a checkpoint with the log key and the cosigner key from
// serve's data folder: the log's own signatures on a tree of the rogue's.
func (w *witnessedServe) sign(size int64, root [32]byte) []byte {
	w.t.Helper()
	b, err := w.rogue.Sign(w.origin, uint64(size), root)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// openWitnessed opens a checkpoint a witness serves.
func (w *witnessedServe) openWitnessed(b []byte, name string) *verifier.Checkpoint {
	w.t.Helper()
	cp, err := verifier.OpenCheckpoint(b, w.keys)
	if err != nil {
		w.t.Fatalf("%s serves a checkpoint that is not the log's: %v\n%s", name, err, b)
	}
	return cp
}

// noAlarm checks that the ledger raised no alarm: none in the log of this
// run, none in the metrics, /healthz not degraded.
func (w *witnessedServe) noAlarm(when string, h health) {
	w.t.Helper()
	if w.srv.runLogContains("ALARM") {
		w.t.Fatalf("%s: an alarm in serve's log:\n%s", when, w.srv.logTail(40))
	}
	if got := w.alarmMetrics(); len(got) > 0 {
		w.t.Fatalf("%s: alarm metrics %v", when, got)
	}
	if h.Status != "ok" || h.Witnessing != "" {
		w.t.Fatalf("%s: /healthz %+v", when, h)
	}
}

// bundleOnFork gets a real bundle through `spoor inzage`, checks that
// `spoor verify` accepts it, and then that it refuses the same bundle moved
// onto forked trees signed with the log's own keys.
func (w *witnessedServe) bundleOnFork(t *testing.T, reportPath string) {
	var rep SimulationReport
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	child := childUnder16(t, &rep)
	subjectKey := filepath.Join(w.srv.data, "demo-keys", "subject-k1.key")
	id, errOut, code := runBin(t, w.bin, child.BSN+"\n", "inzage", "request", "--url", w.srv.url(), "--token", w.deskTokens["desk-1"],
		"--subject-key", subjectKey, "--relation", "parent")
	if code != 0 {
		t.Fatalf("spoor inzage request: exit %d\n%s", code, errOut)
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "bundle.json")
	if _, errOut, code := runBin(t, w.bin, "", "inzage", "release", strings.TrimSpace(id), "--url", w.srv.url(),
		"--token", w.deskTokens["desk-2"], "-o", real); code != 0 {
		t.Fatalf("spoor inzage release: exit %d\n%s", code, errOut)
	}
	verify := func(path string) (string, string, int) {
		return runBin(t, w.bin, "", "verify", path, "--vkey", "@"+filepath.Join(w.srv.data, "log.vkey"), "--admin", "@"+w.adminPub)
	}
	if out, errOut, code := verify(real); code != 0 || !strings.Contains(out, "witnesses:") {
		t.Fatalf("the real bundle: exit %d\n%s%s", code, out, errOut)
	}

	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := verifier.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := verifier.OpenCheckpoint([]byte(bundle.Checkpoint), w.keys)
	if err != nil {
		t.Fatal(err)
	}
	var witnessLines string
	for line := range strings.Lines(bundle.Checkpoint) {
		if strings.HasPrefix(line, "— witness.example/") {
			witnessLines += line
		}
	}
	if witnessLines == "" {
		t.Fatalf("the real bundle's checkpoint carries no witness lines:\n%s", bundle.Checkpoint)
	}
	inBundle := map[uint64]bool{}
	for _, e := range bundle.Covenants {
		inBundle[e.Index] = true
	}
	for _, e := range bundle.Entries {
		inBundle[e.Index] = true
	}
	if bundle.Answer != nil {
		inBundle[bundle.Answer.Index] = true
	}
	if bundle.Index != nil {
		inBundle[bundle.Index.Head.Index] = true
	}
	if len(bundle.Entries) == 0 || len(bundle.Withheld) > 0 || len(bundle.Erased) > 0 {
		t.Fatalf("the bundle holds %d entries, %d withheld, %d erased; the test moves entries only", len(bundle.Entries), len(bundle.Withheld), len(bundle.Erased))
	}
	// The forged tree: the log's leaves with one that is in no entry of
	// the bundle swapped for a forged one, so that every entry of the
	// bundle is still in it, at another root.
	records := w.leafRecords(cp, cp.Size)
	swap := -1
	for i := len(records) - 1; i >= 0; i-- {
		if !inBundle[uint64(i)] {
			swap = i
			break
		}
	}
	if swap < 0 {
		t.Fatal("every leaf is in the bundle")
	}
	rogue := memtree.New()
	for i, rec := range records {
		if i == swap {
			rec = []byte("the disclosure the parent is not shown")
		}
		rogue.Append(t, rec)
	}
	for i := range 5 {
		rogue.Append(t, fmt.Appendf(nil, "forged beyond %d", i))
	}
	move := func(size int64, lines string) []byte {
		f := *bundle
		f.Checkpoint = string(w.sign(size, rogue.Root(t, size))) + lines
		prove := func(es []verifier.BundleEntry) []verifier.BundleEntry {
			out := slices.Clone(es)
			for i := range out {
				out[i].InclusionProof = nil
				for _, h := range rogue.InclusionProof(t, int64(out[i].Index), size) {
					out[i].InclusionProof = append(out[i].InclusionProof, verifier.Base64Bytes(h))
				}
			}
			return out
		}
		f.Covenants, f.Entries = prove(bundle.Covenants), prove(bundle.Entries)
		if bundle.Answer != nil { // a v2 bundle: its answer entry is proven too
			a := *bundle.Answer
			a.InclusionProof = nil
			for _, h := range rogue.InclusionProof(t, int64(a.Index), size) {
				a.InclusionProof = append(a.InclusionProof, verifier.Base64Bytes(h))
			}
			f.Answer = &a
		}
		if bundle.Index != nil { // a v3 bundle: its index head is proven too
			ix := *bundle.Index
			ix.Head.InclusionProof = nil
			for _, h := range rogue.InclusionProof(t, int64(ix.Head.Index), size) {
				ix.Head.InclusionProof = append(ix.Head.InclusionProof, verifier.Base64Bytes(h))
			}
			f.Index = &ix
		}
		b, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	size := int64(cp.Size)
	for _, c := range []struct {
		what string
		data []byte
	}{
		{"another root at the bundle's size, the log's signatures only", move(size, "")},
		{"another root at the bundle's size, the real checkpoint's witness lines copied", move(size, witnessLines)},
		{"a fork beyond the bundle's size, the real checkpoint's witness lines copied", move(size+5, witnessLines)},
	} {
		// In the verifier first: the witnesses are the one thing wrong, so
		// the forgery is sound in every other respect.
		_, err := verifier.VerifyBundle(c.data, w.keys, w.demo.AdminVkey)
		var es verifier.BundleErrors
		if !errors.As(err, &es) || len(es) != 1 || !errors.Is(es[0], verifier.ErrWitnesses) {
			t.Fatalf("%s: VerifyBundle: %v; want ErrWitnesses as the only problem", c.what, err)
		}
		path := filepath.Join(dir, "forged.json")
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := verify(path)
		if code != 1 || !strings.Contains(errOut, verifier.ErrWitnesses.Error()) || !strings.Contains(errOut, "(1 problem(s)") {
			t.Fatalf("%s: spoor verify: exit %d, want 1 for the witness quorum alone\n%s%s", c.what, code, out, errOut)
		}
		t.Logf("bundle on a fork, %s: spoor verify exit %d: %s", c.what, code, firstLineOf(errOut, "witness"))
	}
}

// monitorOnFork runs `spoor monitor --once` on the real log (first use,
// then growth), then at a server that serves a forked tree signed with the
// log's keys: at the verified size with another root, and beyond it. Each
// is a fork alarm (exit 2), the state stays, and the real log is followed
// on afterwards.
func (w *witnessedServe) monitorOnFork(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "monitor.state")
	monitor := func(url string) (string, int) {
		_, errOut, code := runBin(t, w.bin, "", "monitor", "--once", "--url", url, "--vkey", "@"+filepath.Join(w.srv.data, "log.vkey"),
			"--cosigner-vkey", "@"+filepath.Join(w.srv.data, "cosigner.vkey"), "--state", state, "--timeout", "10s")
		return errOut, code
	}
	if errOut, code := monitor(w.srv.url()); code != 0 {
		t.Fatalf("monitor, first use: exit %d\n%s", code, errOut)
	}
	verified, _ := w.checkpoint()
	records := w.leafRecords(verified, verified.Size)
	rogue := memtree.New()
	for _, rec := range records[:verified.Size-1] {
		rogue.Append(t, rec)
	}
	for i := range 300 { // across a tile boundary, so the proof needs several tiles
		rogue.Append(t, fmt.Appendf(nil, "the fork's leaf %d", i))
	}
	fork := &forkServer{t: t, tree: rogue}
	srv := httptest.NewServer(fork)
	defer srv.Close()
	for _, size := range []int64{int64(verified.Size), rogue.Size()} {
		fork.set(w.sign(size, rogue.Root(t, size)))
		errOut, code := monitor(srv.URL)
		if code != exitMonitorAlarm || !strings.Contains(errOut, "ALARM") || !strings.Contains(errOut, "kind=fork") {
			t.Fatalf("monitor on a fork of size %d: exit %d, want %d and a fork alarm\n%s", size, code, exitMonitorAlarm, errOut)
		}
		t.Logf("monitor on a fork of size %d (verified %d): exit %d: %s", size, verified.Size, code, firstLineOf(errOut, "ALARM"))
	}
	w.publishAndWitness(5)
	if errOut, code := monitor(w.srv.url()); code != 0 {
		t.Fatalf("monitor back on the real log: exit %d\n%s", code, errOut)
	}
}

// firstLineOf returns the first line of s that holds sub.
func firstLineOf(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// forkServer serves a forked tree as a tlog-tiles log: its checkpoint and
// its hash tiles, as a rogue operator would serve one party.
type forkServer struct {
	t    *testing.T
	tree *memtree.MemTree // read only

	mu         sync.Mutex
	checkpoint []byte
}

func (s *forkServer) set(cp []byte) {
	s.mu.Lock()
	s.checkpoint = cp
	s.mu.Unlock()
}

func (s *forkServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "checkpoint" {
		s.mu.Lock()
		cp := s.checkpoint
		s.mu.Unlock()
		_, _ = rw.Write(cp)
		return
	}
	level, n, width, entries, err := verifier.ParseTilePath(p)
	if err != nil || entries {
		http.NotFound(rw, r)
		return
	}
	count := uint64(s.tree.Size()) >> (verifier.TileHeight * level)
	if start := n * verifier.TileWidth; start >= count || uint64(width) > min(uint64(verifier.TileWidth), count-start) {
		http.NotFound(rw, r)
		return
	}
	b, err := s.tree.TileData(tlog.Tile{H: verifier.TileHeight, L: level, N: int64(n), W: width})
	if err != nil {
		s.t.Errorf("tile %s: %v", p, err)
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = rw.Write(b)
}
