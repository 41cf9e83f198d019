package tessera_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// These tests run a log not written here, a Tessera log on its POSIX
// driver, with `spoor witness serve` (the binary, in its own process) as
// the witness of its witness policy. Tessera sends its checkpoints to the
// witness with its own client code (tlog-witness, its consistency proofs
// built from its own tiles), and Tessera's own code decides whether the
// returned cosignatures satisfy the policy.

// spoorBin is the spoor binary TestMain builds from the Spoor module.
var spoorBin string

// oneShot makes a new connection for each request: the witness restarts
// on the same address, and a kept-alive connection to the process before
// could otherwise meet a POST, which Go does not retry.
var oneShot = &http.Transport{DisableKeepAlives: true}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spoor-interop-tessera-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	spoorBin, err = buildSpoor(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildSpoor builds ./cmd/spoor in the Spoor module itself (two folders
// up), so that the witness under test is the one Spoor ships, built with
// Spoor's own go.mod and not with this module's dependencies.
func buildSpoor(dir string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/spoor-ledger/spoor\n")) {
		return "", fmt.Errorf("the Spoor module is not at %s (read go.mod: %v)", root, err)
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		if goCmd, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("these tests build spoor and need the go command: %w", err)
		}
	}
	bin := filepath.Join(dir, "spoor")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/spoor")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/spoor: %w\n%s", err, out)
	}
	return bin, nil
}

// witnessKey makes a witness key with `spoor witness keygen` and returns
// the signer key's file and the verifier key it printed.
func witnessKey(t *testing.T, name string) (keyFile, vkey string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "witness.key")
	out, err := exec.Command(spoorBin, "witness", "keygen", "--name", name, "-o", keyFile).Output()
	if err != nil {
		t.Fatalf("spoor witness keygen: %v", err)
	}
	return keyFile, strings.TrimSpace(string(out))
}

// logKey is a Tessera log's checkpoint key: a plain Ed25519 note key named
// by the log's origin, as Tessera's WithCheckpointSigner wants it.
type logKey struct {
	origin   string
	vkey     string
	signer   note.Signer
	verifier note.Verifier
}

func newLogKey(t *testing.T, origin string) *logKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &logKey{origin: origin, vkey: vkey, signer: s, verifier: v}
}

// writeWitnessConfig writes the operator's file of `spoor witness serve`
// for the given logs.
func writeWitnessConfig(t *testing.T, keyFile string, logs ...*logKey) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "key_file: %s\nstate_dir: %s\nlisten: 127.0.0.1:0\nlogs:\n", keyFile, t.TempDir())
	for _, l := range logs {
		fmt.Fprintf(&b, "  - origin: %s\n    vkey: %s\n", l.origin, l.vkey)
	}
	path := filepath.Join(t.TempDir(), "witness.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// witnessProcess is a running `spoor witness serve`.
type witnessProcess struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:PORT
	listen string // 127.0.0.1:PORT, to come back on the same address
	done   chan error
	// stopped is set by stop, on the test's goroutine, as is the cleanup
	// that reads it.
	stopped bool
	mu      sync.Mutex
	stderr  bytes.Buffer
}

// startWitness starts `spoor witness serve` and waits for its "running"
// log line, which names the address it listens on. The wait ends either
// with that line or with the process's end: no clock is involved.
func startWitness(t *testing.T, config, listen string) *witnessProcess {
	t.Helper()
	wp := &witnessProcess{done: make(chan error, 1)}
	wp.cmd = exec.Command(spoorBin, "--log-format", "json", "witness", "serve", "--config", config, "--listen", listen)
	pipe, err := wp.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := wp.cmd.Start(); err != nil {
		t.Fatalf("start spoor witness serve: %v", err)
	}
	running := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			wp.mu.Lock()
			wp.stderr.Write(line)
			wp.stderr.WriteByte('\n')
			wp.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "spoor witness running" {
				running <- rec.HTTP
				sent = true
			}
		}
		// Read to the end before Wait, as exec.Cmd asks.
		_, _ = io.Copy(io.Discard, pipe)
		close(running)
		wp.done <- wp.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !wp.stopped {
			_ = wp.cmd.Process.Kill()
			<-wp.done
		}
	})
	u, ok := <-running
	if !ok {
		t.Fatalf("spoor witness serve ended before it listened: %v\n%s", <-wp.done, wp.log())
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("the witness's running line names %q: %v", u, err)
	}
	wp.url, wp.listen = u, pu.Host
	return wp
}

func (wp *witnessProcess) log() string {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return wp.stderr.String()
}

// stop sends SIGINT, as an operator's Ctrl-C, and wants a clean exit.
func (wp *witnessProcess) stop(t *testing.T) {
	t.Helper()
	if err := wp.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	wp.stopped = true
	if err := <-wp.done; err != nil {
		t.Fatalf("spoor witness serve did not stop cleanly: %v\n%s", err, wp.log())
	}
	if !strings.Contains(wp.log(), `"msg":"spoor witness stopped"`) {
		t.Fatalf("spoor witness serve exited without its stop line:\n%s", wp.log())
	}
}

// latest reads the last checkpoint the witness cosigned for origin
// (GET /<hex SHA-256 of origin>/checkpoint).
func (wp *witnessProcess) latest(t *testing.T, origin string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(origin))
	resp, err := (&http.Client{Transport: oneShot}).Get(wp.url + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the witness's latest checkpoint for %s: %d %v\n%s", origin, resp.StatusCode, err, b)
	}
	return b
}

// outcomes reads the witness's add-checkpoint outcomes for origin from its
// /metrics: outcome -> count.
func (wp *witnessProcess) outcomes(t *testing.T, origin string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Transport: oneShot}).Get(wp.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := map[string]float64{}
	prefix := fmt.Sprintf(`spoor_witness_add_checkpoint_total{log=%q,outcome="`, origin)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		outcome, count, _ := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(count, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		got[outcome] = n
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// policy is a C2SP tlog-policy text as Tessera parses it: witnesses with
// their URL, groups, a quorum.
func policy(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

func witnessGroup(t *testing.T, p []byte) tessera.WitnessGroup {
	t.Helper()
	g, err := tessera.NewWitnessGroupFromPolicy(p)
	if err != nil {
		t.Fatalf("Tessera refuses the policy: %v\n%s", err, p)
	}
	return g
}

// tesseraLog is a Tessera log on its POSIX driver whose checkpoints are
// witnessed under a policy.
type tesseraLog struct {
	key      *logKey
	dir      string
	appender *tessera.Appender
	awaiter  *tessera.PublicationAwaiter
}

// openTesseraLog opens (creating on first use) a POSIX log in dir.
// Tessera publishes the empty tree's checkpoint while it opens a new log,
// through the witnesses, failing closed: so an error here can be the
// witness policy not being met. Every request Tessera sends to a witness
// goes through a watch that cancels ctx (with the reason as its cause) at
// the first answer other than 200, so a refusal fails the test at once
// instead of leaving Tessera retrying and the test waiting.
func openTesseraLog(ctx context.Context, cancel context.CancelCauseFunc, key *logKey, dir string, group tessera.WitnessGroup) (*tesseraLog, error) {
	httpClient := &http.Client{Transport: &refusalWatch{cancel: cancel}}
	driver, err := posix.New(ctx, posix.Config{Path: dir, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("posix.New: %w", err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(key.signer).
		WithBatching(64, 10*time.Millisecond).
		WithCheckpointInterval(100*time.Millisecond).
		// FailOpen false: a checkpoint is published only with the
		// policy met, so each published checkpoint is the witness's work.
		WithWitnesses(group, &tessera.WitnessOptions{FailOpen: false})
	appender, _, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return nil, err
	}
	return &tesseraLog{key: key, dir: dir, appender: appender,
		awaiter: tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)}, nil
}

// refusalWatch is the transport of Tessera's witness requests: it cancels
// the log's context when a witness cannot be reached or answers other
// than 200 (the tests expect no 409 round either: Tessera knows the size
// the witness holds).
type refusalWatch struct {
	cancel context.CancelCauseFunc
}

func (w *refusalWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := oneShot.RoundTrip(req)
	if err != nil {
		w.cancel(fmt.Errorf("the witness at %s: %w", req.URL, err))
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		w.cancel(fmt.Errorf("the witness at %s answered %s: %q", req.URL, resp.Status, body))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

// appendAndAwait adds n entries and waits until a published checkpoint
// covers all of them.
func (l *tesseraLog) appendAndAwait(t *testing.T, ctx context.Context, n int, tag string) {
	t.Helper()
	futures := make([]tessera.IndexFuture, n)
	for i := range futures {
		futures[i] = l.appender.Add(ctx, tessera.NewEntry(fmt.Appendf(nil, "%s entry %d", tag, i)))
	}
	for _, f := range futures {
		if _, _, err := l.awaiter.Await(ctx, f); err != nil {
			t.Fatalf("awaiting publication: %v (cause: %v)", err, context.Cause(ctx))
		}
	}
}

// published reads the log's published checkpoint from its files and checks
// the log's signature with Tessera's client.
func (l *tesseraLog) published(t *testing.T, ctx context.Context) (size uint64, raw []byte) {
	t.Helper()
	fetch := tclient.FileFetcher{Root: l.dir}
	cp, raw, _, err := tclient.FetchCheckpoint(ctx, fetch.ReadCheckpoint, l.key.verifier, l.key.origin)
	if err != nil {
		t.Fatalf("Tessera's client refuses the published checkpoint: %v", err)
	}
	return cp.Size, raw
}

// tempLogDir is a folder for a Tessera log that the test removes itself:
// Tessera's publishing goroutine may still touch it as the test's context
// ends, which would fail t.TempDir's own cleanup.
func tempLogDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tessera-log-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing the log folder: %v", err)
		}
	})
	return dir
}

// TestTesseraLogWitnessedBySpoor: a Tessera POSIX log whose policy is
// `spoor witness serve` publishes only checkpoints that Spoor's witness
// cosigned; Tessera's own policy code counts that cosignature; the witness
// verifies Tessera's consistency proofs (sizes 0 -> 40 -> 340, across a
// full tile) and keeps its state across a restart.
func TestTesseraLogWitnessedBySpoor(t *testing.T) {
	key := newLogKey(t, "tessera.example/interop")
	keyFile, wvkey := witnessKey(t, "witness.example/spoor-interop")
	config := writeWitnessConfig(t, keyFile, key)
	wp := startWitness(t, config, "127.0.0.1:0")
	spoorPolicy := policy(
		"log "+key.vkey,
		"witness spoor "+wvkey+" "+wp.url,
		"quorum spoor")

	dir := tempLogDir(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	// Deferred, so Tessera stops before the cleanups stop the witness and
	// remove the log's folder.
	defer cancel(nil)
	lg, err := openTesseraLog(ctx, cancel, key, dir, witnessGroup(t, spoorPolicy))
	if err != nil {
		t.Fatalf("Tessera couldn't open its log with spoor witness as its policy: %v (cause: %v)\n%s",
			err, context.Cause(ctx), wp.log())
	}

	size, raw := lg.published(t, ctx)
	if size != 0 {
		t.Fatalf("a new log published size %d", size)
	}
	checkSatisfied(t, spoorPolicy, raw, true)

	lg.appendAndAwait(t, ctx, 40, "first")
	size, raw = lg.published(t, ctx)
	if size != 40 {
		t.Fatalf("published size %d, want 40", size)
	}
	checkSatisfied(t, spoorPolicy, raw, true)
	checkWitnessHolds(t, wp, lg, raw)
	checkOnlyCosigned(t, wp, key.origin)

	// The witness restarts on the same address with the same state: the
	// log goes on from the size the witness holds, with a proof.
	wp.stop(t)
	wp = startWitness(t, config, wp.listen)
	lg.appendAndAwait(t, ctx, 300, "second")
	size, raw = lg.published(t, ctx)
	if size != 340 {
		t.Fatalf("published size %d, want 340", size)
	}
	checkSatisfied(t, spoorPolicy, raw, true)
	checkWitnessHolds(t, wp, lg, raw)
	checkOnlyCosigned(t, wp, key.origin)

	// Tessera's policy code counts Spoor's cosignature and nothing else:
	_, otherVkey := witnessKey(t, "witness.example/not-asked")
	checkSatisfied(t, policy( // the same name with another key
		"witness spoor "+otherVkey+" "+wp.url,
		"quorum spoor"), raw, false)
	checkSatisfied(t, policy( // both needed, one cosigned
		"witness spoor "+wvkey+" "+wp.url,
		"witness other "+otherVkey+" http://127.0.0.1:1",
		"group both all spoor other",
		"quorum both"), raw, false)
	checkSatisfied(t, policy( // either will do
		"witness spoor "+wvkey+" "+wp.url,
		"witness other "+otherVkey+" http://127.0.0.1:1",
		"group either any spoor other",
		"quorum either"), raw, true)
	checkSatisfied(t, spoorPolicy, tamper(t, raw), false)
	checkSatisfied(t, spoorPolicy, stripCosignatures(raw), false)
}

// TestTesseraRefusesSpoorCosignatureOutsidePolicy: a Tessera log whose
// policy names a key that is not the Spoor witness's, at the Spoor
// witness's URL, gets a cosignature (the witness witnesses this log too)
// that Tessera's gateway does not count: failing closed, it does not even
// open the log.
func TestTesseraRefusesSpoorCosignatureOutsidePolicy(t *testing.T) {
	key := newLogKey(t, "tessera.example/interop-wrong-key")
	keyFile, spoors := witnessKey(t, "witness.example/spoor-interop")
	wp := startWitness(t, writeWitnessConfig(t, keyFile, key), "127.0.0.1:0")
	// Same name, another key: only the key tells them apart.
	_, notSpoors := witnessKey(t, "witness.example/spoor-interop")
	wrongPolicy := policy(
		"witness spoor "+notSpoors+" "+wp.url,
		"quorum spoor")

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	lg, err := openTesseraLog(ctx, cancel, key, tempLogDir(t), witnessGroup(t, wrongPolicy))
	if err == nil {
		size, _ := lg.published(t, ctx)
		t.Fatalf("Tessera opened the log (published size %d) with a cosignature by a key outside its policy", size)
	}
	if !strings.Contains(err.Error(), "witness policy was not satisfied") || context.Cause(ctx) != nil {
		t.Fatalf("Tessera failed to open the log for another reason: %v (cause: %v)", err, context.Cause(ctx))
	}
	// The witness did cosign (so Tessera's refusal is about the key): it
	// holds the empty tree with its cosignature, which verifies under its
	// real key and not under the key of the policy.
	held := wp.latest(t, key.origin)
	if n, err := note.Open(held, note.VerifierList(key.verifier)); err != nil || n.Text != key.origin+"\n0\n"+emptyRootB64+"\n" {
		t.Fatalf("the witness holds %q (%v), want the empty tree", held, err)
	}
	checkSatisfied(t, policy("witness spoor "+spoors+" "+wp.url, "quorum spoor"), held, true)
	checkSatisfied(t, wrongPolicy, held, false)
	if got := wp.outcomes(t, key.origin); got["cosigned"] < 1 {
		t.Fatalf("witness outcomes %v: it never cosigned", got)
	}
}

// emptyRootB64 is the root of the empty tree in a checkpoint.
var emptyRootB64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

// checkSatisfied checks what Tessera's own witness policy code
// (NewWitnessGroupFromPolicy, WitnessGroup.Satisfied) says of checkpoint.
func checkSatisfied(t *testing.T, p, checkpoint []byte, want bool) {
	t.Helper()
	if got := witnessGroup(t, p).Satisfied(checkpoint); got != want {
		t.Fatalf("Tessera says the policy is satisfied: %v, want %v\npolicy:\n%s\ncheckpoint:\n%s", got, want, p, checkpoint)
	}
}

// checkWitnessHolds checks that the checkpoint the witness holds as its
// latest for the log is the published one (same text), and that it too
// satisfies the log's policy by Tessera's code.
func checkWitnessHolds(t *testing.T, wp *witnessProcess, lg *tesseraLog, published []byte) {
	t.Helper()
	held := wp.latest(t, lg.key.origin)
	hn, err := note.Open(held, note.VerifierList(lg.key.verifier))
	if err != nil {
		t.Fatalf("the witness's latest does not verify under the log key: %v\n%s", err, held)
	}
	pn, err := note.Open(published, note.VerifierList(lg.key.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if hn.Text != pn.Text {
		t.Fatalf("the witness holds\n%s\nthe log published\n%s", hn.Text, pn.Text)
	}
}

// checkOnlyCosigned checks from the witness's metrics that every request
// the log sent it was cosigned: Tessera's old size and proofs were right
// the first time (no 409 round, no bad proof).
func checkOnlyCosigned(t *testing.T, wp *witnessProcess, origin string) {
	t.Helper()
	got := wp.outcomes(t, origin)
	if got["cosigned"] < 1 {
		t.Fatalf("witness outcomes %v: nothing cosigned", got)
	}
	for outcome, n := range got {
		if outcome != "cosigned" && n > 0 {
			t.Fatalf("witness outcomes %v: %s", got, outcome)
		}
	}
}

// tamper flips one bit in the signature of the last line (the witness's
// cosignature: the log's own signature comes first).
func tamper(t *testing.T, checkpoint []byte) []byte {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(checkpoint), "\n"), "\n")
	last := lines[len(lines)-1]
	i := strings.LastIndexByte(last, ' ')
	if !strings.HasPrefix(last, "— ") || i < 0 {
		t.Fatalf("no signature line to tamper with in\n%s", checkpoint)
	}
	sig := []byte(last[i+1:])
	// A base64 character of the signature's middle: still base64, another
	// signature.
	j := len(sig) / 2
	if sig[j] == 'A' {
		sig[j] = 'B'
	} else {
		sig[j] = 'A'
	}
	lines[len(lines)-1] = last[:i+1] + string(sig)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// stripCosignatures keeps the checkpoint's text and the log's own first
// signature line only.
func stripCosignatures(checkpoint []byte) []byte {
	text, sigs, _ := bytes.Cut(checkpoint, []byte("\n\n"))
	first, _, _ := bytes.Cut(sigs, []byte("\n"))
	return append(append(append(bytes.Clone(text), "\n\n"...), first...), '\n')
}
