package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
	"github.com/spoor-ledger/spoor/witness/client"
)

// witnessProc runs `spoor witness serve` as a child process, again and
// again on the same state folder and address, so that a SIGKILL hits a
// whole witness and nothing of it survives but what it wrote to disk. Its
// output goes to one log file, printed when the test fails.
type witnessProc struct {
	t       *testing.T
	bin     string
	name    string
	vkey    string
	cfgFile string
	addr    string
	state   string
	logPath string

	starts int
	cmd    *exec.Cmd
	exited chan struct{}
}

// newWitnessProc writes a key and a configuration for a witness named name
// that witnesses the logs given (origin, vkey), in a folder of its own.
func newWitnessProc(t *testing.T, bin, name string, logs ...witness.LogConfig) *witnessProc {
	t.Helper()
	dir := t.TempDir()
	skey, vkey, err := verifier.GenerateWitnessKey(name)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "witness.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &witnessProc{t: t, bin: bin, name: name, vkey: vkey, addr: freeAddr(t),
		state: filepath.Join(dir, "state"), cfgFile: filepath.Join(dir, "witness.yaml"), logPath: filepath.Join(dir, "witness.log")}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "key_file: %s\nstate_dir: %s\nlisten: %s\nlogs:\n", keyFile, p.state, p.addr)
	for _, l := range logs {
		fmt.Fprintf(&cfg, "  - origin: %s\n    vkey: %s\n", l.Origin, l.VKey)
	}
	if err := os.WriteFile(p.cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("%s output, last lines:\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return p
}

func (p *witnessProc) url() string { return "http://" + p.addr }

// start starts the next run and waits until it answers its status page.
func (p *witnessProc) start() {
	p.t.Helper()
	p.starts++
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== run %d\n", p.starts)
	cmd := exec.Command(p.bin, "witness", "serve", "--config", p.cfgFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("couldn't start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-exited:
			p.t.Fatalf("%s exited at start (run %d)", p.name, p.starts)
		default:
		}
		if resp, err := probe.Get(p.url() + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer within 30 s (run %d)", p.name, p.starts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process; nothing runs after it.
func (p *witnessProc) kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// rawPost sends one add-checkpoint body on a fresh connection and returns
// the status, the Content-Type and the body.
func rawPost(t *testing.T, url string, body []byte) (int, string, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("add-checkpoint: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// servedCheckpoint reads the witness's monitoring endpoint for origin: the
// last checkpoint it cosigned, with its cosignature.
func servedCheckpoint(t *testing.T, url, origin string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(origin))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		t.Fatalf("GET checkpoint: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET checkpoint: %d %q", resp.StatusCode, b)
	}
	return b
}

// faultLog is a log in memory for the witness tests: a real x/mod Merkle
// tree and real log keys (log key and its own cosigner, as the ledger
// signs), guarded by mu because the load and the checks share it.
type faultLog struct {
	mu     sync.Mutex
	origin string
	vkey   string
	keys   *verifier.LogKeys
	signer *verifier.CheckpointSigner
	tree   *memtree.MemTree
}

func newFaultLog(t *testing.T, origin string) *faultLog {
	t.Helper()
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
	return &faultLog{origin: origin, vkey: logVkey, keys: keys, signer: s, tree: memtree.New()}
}

// sign signs a checkpoint of size and root with the log's keys. The caller
// holds mu when it reads the root from the tree.
func (l *faultLog) sign(t testing.TB, size int64, root [32]byte) *verifier.Checkpoint {
	t.Helper()
	b, err := l.signer.Sign(l.origin, uint64(size), root)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := verifier.OpenCheckpoint(b, l.keys)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// proofFunc gives the witness client proofs from the tree; the client
// calls it inside Submit, which the load runs with mu held.
func (l *faultLog) proofFunc(t testing.TB) client.ProofFunc {
	return func(_ context.Context, old, new uint64) ([][]byte, error) {
		return l.tree.Proof(t, int64(old), int64(new)), nil
	}
}

// cosigned is one cosignature the load collected.
type cosigned struct {
	size uint64
	root [32]byte
	note []byte // the checkpoint as sent, the log's signatures only
}

// TestWitnessFaults kills `spoor witness serve` with SIGKILL 50 times at
// random moments while a load submits growing checkpoints of a real tree
// with real consistency proofs, and restarts it on the same state folder.
// After each restart, with the load paused:
//   - the checkpoint it serves is one of the log's own (its root is the
//     tree's at its size), carries its cosignature, and its size is at
//     least every size it cosigned before the kill (a request in flight at
//     the kill may have been persisted without an answer: never the other
//     way round), and consistent with each of them;
//   - the checkpoint cosigned before that one, sent with old 0, gets 409
//     with the size it holds;
//   - a checkpoint signed with the log key at the size it holds with
//     another root gets 422 (Spoor's witness answers a same-size fork 422,
//     as the current tlog-witness text says; v1.0.0 said 409, which the
//     client also takes as a fork, but this is Spoor's own witness);
//   - neither probe changes what it serves.
//
// The load runs through witness/client, so each restart also shows the
// client catching up (409) when the witness persisted a checkpoint whose
// answer the kill swallowed, and never raising a fork or rollback alarm.
func TestWitnessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("kills spoor witness processes")
	}
	const kills = 50
	bin := buildSpoor(t)
	lg := newFaultLog(t, "spoor.example/witness-faults")
	wp := newWitnessProc(t, bin, "witness.example/fg-faults", witness.LogConfig{Origin: lg.origin, VKey: lg.vkey})
	wp.start()
	witV, err := fnote.NewVerifierForCosignatureV1(wp.vkey)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := events.ParseWitnessPolicy(fmt.Sprintf("log %s\nwitness w %s %s\nquorum w\n", lg.vkey, wp.vkey, wp.url()))
	if err != nil {
		t.Fatal(err)
	}
	wc, err := client.New(client.Config{Policy: policy, Proof: lg.proofFunc(t), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	loadRng := rand.New(rand.NewPCG(seed, 2))

	// The load: one request at a time, as a log sends to one witness,
	// each with the tree grown by 1 to 16 leaves.
	var (
		collected []cosigned // under lg.mu
		alarms    []error    // under lg.mu
		inFlight  atomic.Bool
		failed    atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			lg.mu.Lock()
			lg.tree.Grow(t, 1+loadRng.IntN(16))
			size := lg.tree.Size()
			cp := lg.sign(t, size, lg.tree.Root(t, size))
			inFlight.Store(true)
			cs, err := wc.Submit(ctx, "w", cp, cp.Size)
			inFlight.Store(false)
			switch {
			case err == nil:
				if !bytes.Contains(cs.Lines, []byte("— "+wp.name+" ")) {
					alarms = append(alarms, fmt.Errorf("a cosignature not by the witness: %q", cs.Lines))
				}
				collected = append(collected, cosigned{size: cp.Size, root: cp.Hash, note: cp.Note})
			case errors.Is(err, client.ErrFork), errors.Is(err, client.ErrRollback):
				alarms = append(alarms, err)
			default:
				failed.Add(1) // the witness is down or was killed mid-request
			}
			lg.mu.Unlock()
			if err != nil {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	stopLoad := func() { cancel(); wg.Wait() }
	defer stopLoad()

	// Two cosignatures before the first kill, so that there is always a
	// checkpoint before the last one cosigned.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		lg.mu.Lock()
		n := len(collected)
		lg.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no cosignatures from the witness within 30 s")
		}
	}

	var (
		prevSize   uint64
		prevRoot   [32]byte
		checkedTo  int // collected[:checkedTo] were checked after an earlier restart
		midRequest int // kills that landed while a request was in flight
		ahead      int // restarts after which the witness held more than the load had collected
	)
	for i := range kills {
		time.Sleep(time.Duration(5+rng.IntN(120)) * time.Millisecond)
		if inFlight.Load() {
			midRequest++
		}
		wp.kill()
		wp.start()

		lg.mu.Lock()
		served := servedCheckpoint(t, wp.url(), lg.origin)
		cp, err := verifier.OpenCheckpoint(served, lg.keys)
		if err != nil {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the served checkpoint is not the log's: %v\n%s", i, err, served)
		}
		if n, err := note.Open(served, note.VerifierList(witV)); err != nil || len(n.Sigs) != 1 {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the served checkpoint carries no cosignature of the witness: %v\n%s", i, err, served)
		}
		size, root := cp.Size, cp.Hash
		if size > uint64(lg.tree.Size()) || root != lg.tree.Root(t, int64(size)) {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the witness holds size %d with a root that is not the tree's (tree size %d)", i, size, lg.tree.Size())
		}
		if size < prevSize {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the witness went back from %d to %d", i, prevSize, size)
		}
		if err := verifier.VerifyConsistency(prevSize, size, prevRoot, root, lg.tree.Proof(t, int64(prevSize), int64(size))); prevSize > 0 && err != nil {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the state after (%d) does not extend the state before (%d): %v", i, size, prevSize, err)
		}
		var maxCollected uint64
		for _, c := range collected[checkedTo:] {
			if c.size > size {
				lg.mu.Unlock()
				t.Fatalf("kill %d: the witness cosigned size %d before the kill and holds %d after", i, c.size, size)
			}
			if err := verifier.VerifyConsistency(c.size, size, c.root, root, lg.tree.Proof(t, int64(c.size), int64(size))); err != nil {
				lg.mu.Unlock()
				t.Fatalf("kill %d: the cosigned size %d is not consistent with the state %d: %v", i, c.size, size, err)
			}
			maxCollected = max(maxCollected, c.size)
		}
		if size > maxCollected && maxCollected > 0 {
			ahead++
		}
		checkedTo = len(collected)

		// (a) The checkpoint cosigned before the one held, with old 0.
		var before *cosigned
		for j := len(collected) - 1; j >= 0; j-- {
			if collected[j].size < size {
				before = &collected[j]
				break
			}
		}
		if before == nil {
			lg.mu.Unlock()
			t.Fatalf("kill %d: no cosigned checkpoint below %d", i, size)
		}
		code, ct, body := rawPost(t, wp.url(), (&witness.AddCheckpointRequest{OldSize: 0, Checkpoint: before.note}).Marshal())
		if code != http.StatusConflict || ct != "text/x.tlog.size" || string(body) != strconv.FormatUint(size, 10)+"\n" {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the checkpoint of size %d with old 0: %d %s %q, want 409 text/x.tlog.size %d", i, before.size, code, ct, body, size)
		}
		// (b) Another root at the size held, signed with the log key.
		fork := lg.sign(t, int64(size), sha256.Sum256(fmt.Appendf(nil, "fork %d", i)))
		if code, _, body := rawPost(t, wp.url(), (&witness.AddCheckpointRequest{OldSize: size, Checkpoint: fork.Note}).Marshal()); code != http.StatusUnprocessableEntity {
			lg.mu.Unlock()
			t.Fatalf("kill %d: another root at the size held (%d): %d %q, want 422", i, size, code, body)
		}
		if after := servedCheckpoint(t, wp.url(), lg.origin); !bytes.Equal(after, served) {
			lg.mu.Unlock()
			t.Fatalf("kill %d: the probes changed the served checkpoint:\n%s\nto\n%s", i, served, after)
		}
		prevSize, prevRoot = size, root
		lg.mu.Unlock()
	}
	stopLoad()
	if len(alarms) > 0 {
		t.Fatalf("%d alarms under kills; the first: %v", len(alarms), alarms[0])
	}
	if midRequest == 0 {
		t.Fatalf("none of the %d kills landed during a request: the test did not test that", kills)
	}
	t.Logf("%d kills (%d during a request), %d cosignatures collected, %d requests failed by the kills, "+
		"%d restarts found the witness ahead of what the load collected; final size %d",
		kills, midRequest, len(collected), failed.Load(), ahead, prevSize)
}

// witnessOutcomes reads a witness's /metrics: its add-checkpoint answers
// for origin by outcome.
func witnessOutcomes(t *testing.T, url, origin string) map[string]int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("GET metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	prefix := `spoor_witness_add_checkpoint_total{log="` + origin + `",outcome="`
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		outcome, value, _ := strings.Cut(rest, `"} `)
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[outcome] = n
	}
	return out
}

// servedSize is the size of the checkpoint the witness serves for l.
func servedSize(t *testing.T, url string, l *faultLog) uint64 {
	t.Helper()
	cp, err := verifier.OpenCheckpoint(servedCheckpoint(t, url, l.origin), l.keys)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// TestWitnessQuorumWithWitnessesDown runs three `spoor witness` processes
// under a 2-of-3 policy and gathers with witness/client:
//   - one killed (SIGKILL): the quorum is met by the other two, and the
//     verifier's policy check accepts the gathered cosignatures;
//   - a second one frozen (SIGSTOP: its socket still accepts, nothing
//     answers): Gather returns ErrQuorumNotMet after the per-witness
//     timeout, with no fork or rollback alarm;
//   - both back (the killed one restarted on its state, the frozen one
//     resumed: it then works through the requests the kernel held for it
//     and may persist a checkpoint whose answer nobody read): the same
//     client meets the quorum with all three, learning through 409 the size
//     the resumed witness holds when it is not the one it believed;
//   - a new client (as after a failover) starts from old 0 and learns each
//     witness's size through exactly one 409 per witness.
func TestWitnessQuorumWithWitnessesDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three spoor witness processes")
	}
	bin := buildSpoor(t)
	lg := newFaultLog(t, "spoor.example/witness-quorum")
	logCfg := witness.LogConfig{Origin: lg.origin, VKey: lg.vkey}
	names := []string{"fg-a", "fg-b", "fg-c"}
	procs := map[string]*witnessProc{}
	var policyText strings.Builder
	fmt.Fprintf(&policyText, "log %s\n", lg.vkey)
	for _, n := range names {
		p := newWitnessProc(t, bin, "witness.example/"+n, logCfg)
		p.start()
		procs[n] = p
		fmt.Fprintf(&policyText, "witness %s %s %s\n", n, p.vkey, p.url())
	}
	policyText.WriteString("group fgs 2 fg-a fg-b fg-c\nquorum fgs\n")
	policy, err := events.ParseWitnessPolicy(policyText.String())
	if err != nil {
		t.Fatal(err)
	}
	newClient := func() *client.Client {
		c, err := client.New(client.Config{Policy: policy, Proof: lg.proofFunc(t), Timeout: time.Second, GreedyWindow: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wc := newClient()
	ctx := context.Background()
	grow := func(n int) *verifier.Checkpoint {
		lg.mu.Lock()
		defer lg.mu.Unlock()
		lg.tree.Grow(t, n)
		return lg.sign(t, lg.tree.Size(), lg.tree.Root(t, lg.tree.Size()))
	}
	noAlarm := func(step string, res *client.GatherResult) {
		t.Helper()
		for name, err := range res.Errors {
			if errors.Is(err, client.ErrFork) || errors.Is(err, client.ErrRollback) {
				t.Fatalf("%s: an alarm for %s: %v", step, name, err)
			}
		}
	}
	gatherMet := func(step string, c *client.Client, want ...string) *verifier.Checkpoint {
		t.Helper()
		cp := grow(7)
		res, err := c.Gather(ctx, cp, cp.Size)
		if err != nil || !res.Met {
			t.Fatalf("%s: %+v, %v; want the quorum met", step, res, err)
		}
		noAlarm(step, res)
		got := map[string]bool{}
		withCos := bytes.Clone(cp.Note)
		for _, cs := range res.Cosignatures {
			got[cs.Witness] = true
			withCos = append(withCos, cs.Lines...)
		}
		for _, n := range want {
			if !got[n] {
				t.Fatalf("%s: no cosignature from %s: %v", step, n, res.Errors[n])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: cosignatures from %v, want %v", step, got, want)
		}
		opened, err := verifier.OpenCheckpoint(withCos, lg.keys)
		if err != nil {
			t.Fatal(err)
		}
		if pr, err := verifier.CheckWitnessPolicy(opened, policy); err != nil || !pr.Met {
			t.Fatalf("%s: the verifier does not accept the gathered cosignatures: %+v, %v", step, pr, err)
		}
		return cp
	}

	gatherMet("all up", wc, "fg-a", "fg-b", "fg-c")

	// One down.
	cSize := servedSize(t, procs["fg-c"].url(), lg)
	procs["fg-c"].kill()
	for i := range 3 {
		gatherMet(fmt.Sprintf("fg-c down, checkpoint %d", i), wc, "fg-a", "fg-b")
	}

	// Two down: fg-b frozen too.
	b := procs["fg-b"]
	bBelieved := servedSize(t, b.url(), lg)
	bBefore := witnessOutcomes(t, b.url(), lg.origin)
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The signal is delivered asynchronously: on a busy machine the
	// witness could still answer the first request. Wait until the kernel
	// reports it stopped.
	waitProcessStopped(t, b.cmd.Process.Pid)
	stopped := true
	defer func() {
		if stopped {
			_ = b.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	const frozenRequests = 2
	for i := range frozenRequests {
		cp := grow(7)
		res, err := wc.Gather(ctx, cp, cp.Size)
		if !errors.Is(err, verifier.ErrQuorumNotMet) || res.Met {
			t.Fatalf("two down, checkpoint %d: %+v, %v; want ErrQuorumNotMet", i, res, err)
		}
		noAlarm("two down", res)
		if len(res.Cosignatures) != 1 || res.Cosignatures[0].Witness != "fg-a" || res.Errors["fg-b"] == nil || res.Errors["fg-c"] == nil {
			t.Fatalf("two down, checkpoint %d: %+v; want fg-a's cosignature and errors for fg-b and fg-c", i, res)
		}
	}

	// Both back. The resumed witness first decides the requests it held.
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	procs["fg-c"].start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		done := 0
		for outcome, n := range witnessOutcomes(t, b.url(), lg.origin) {
			done += n - bBefore[outcome]
		}
		if done >= frozenRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed witness decided %d of the %d requests it held", done, frozenRequests)
		}
	}
	bHolds := servedSize(t, b.url(), lg)
	if bHolds == bBelieved {
		t.Fatalf("the resumed witness persisted none of the requests it held (size %d): the catch-up below is not tested", bHolds)
	}
	if got := servedSize(t, procs["fg-c"].url(), lg); got != cSize {
		t.Fatalf("fg-c restarted at %d, held %d before", got, cSize)
	}
	before := map[string]map[string]int{}
	for _, n := range names {
		before[n] = witnessOutcomes(t, procs[n].url(), lg.origin)
	}
	cp := gatherMet("both back, the same client", wc, "fg-a", "fg-b", "fg-c")
	for _, n := range names {
		after := witnessOutcomes(t, procs[n].url(), lg.origin)
		wantConflicts := 0
		if n == "fg-b" {
			wantConflicts = 1 // it holds bHolds; the client believed bBelieved
		}
		if got := after["conflict"] - before[n]["conflict"]; got != wantConflicts {
			t.Errorf("both back: %d 409s from %s, want %d", got, n, wantConflicts)
		}
		if got := servedSize(t, procs[n].url(), lg); got != cp.Size {
			t.Errorf("both back: %s holds %d, want %d", n, got, cp.Size)
		}
	}

	// A new client learns every witness's size through one 409 each.
	for _, n := range names {
		before[n] = witnessOutcomes(t, procs[n].url(), lg.origin)
	}
	cp = gatherMet("a new client", newClient(), "fg-a", "fg-b", "fg-c")
	for _, n := range names {
		after := witnessOutcomes(t, procs[n].url(), lg.origin)
		if c, s := after["conflict"]-before[n]["conflict"], after["cosigned"]-before[n]["cosigned"]; c != 1 || s != 1 {
			t.Errorf("a new client: %s answered %d 409s and %d cosignatures, want 1 and 1", n, c, s)
		}
		if got := servedSize(t, procs[n].url(), lg); got != cp.Size {
			t.Errorf("a new client: %s holds %d, want %d", n, got, cp.Size)
		}
	}
	t.Logf("fg-b held %d when frozen, %d after working through the %d requests held for it", bBelieved, bHolds, frozenRequests)
}

// waitProcessStopped waits until /proc says process pid is stopped (state
// T), as it is some moment after SIGSTOP.
func waitProcessStopped(t *testing.T, pid int) {
	t.Helper()
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("reading the state of process %d: %v", pid, err)
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("process %d did not stop after SIGSTOP", pid)
		case <-time.After(time.Millisecond):
		}
	}
}
