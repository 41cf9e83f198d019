package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
)

// testLog is a real Merkle log in memory with a real Ed25519 log key: it
// makes signed checkpoints and consistency proofs between any two sizes.
type testLog struct {
	t      testing.TB
	origin string
	vkey   string
	signer note.Signer
	tree   *memtree.MemTree
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, _, _, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, vkey: vkey, signer: s, tree: memtree.New()}
}

func (l *testLog) grow(n int)                    { l.tree.Grow(l.t, n) }
func (l *testLog) root(size int64) [32]byte      { return l.tree.Root(l.t, size) }
func (l *testLog) proof(from, to int64) [][]byte { return l.tree.Proof(l.t, from, to) }

// checkpoint signs a checkpoint of the given size and root with signers
// (the log's own key when none are given).
func (l *testLog) checkpoint(size int64, root [32]byte, signers ...note.Signer) []byte {
	l.t.Helper()
	if len(signers) == 0 {
		signers = []note.Signer{l.signer}
	}
	b, err := note.Sign(&note.Note{Text: string(verifier.FormatCheckpoint(l.origin, uint64(size), root))}, signers...)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// testWitness is a witness on a temp state folder, served over HTTP.
type testWitness struct {
	t        *testing.T
	w        *Witness
	srv      *httptest.Server
	dir      string
	skey     string
	vkey     string
	cosigner note.Verifier
	logs     []LogConfig
}

func newTestWitness(t *testing.T, logs ...*testLog) *testWitness {
	t.Helper()
	skey, vkey, err := verifier.GenerateWitnessKey("witness.example/fg-amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{t: t, dir: t.TempDir(), skey: skey, vkey: vkey}
	for _, l := range logs {
		tw.logs = append(tw.logs, LogConfig{Origin: l.origin, VKey: l.vkey})
	}
	if tw.cosigner, err = fnote.NewVerifierForCosignatureV1(vkey); err != nil {
		t.Fatal(err)
	}
	tw.start()
	t.Cleanup(func() { tw.stop() })
	return tw
}

func (tw *testWitness) start() {
	tw.t.Helper()
	signer, err := fnote.NewSignerForCosignatureV1(tw.skey)
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.w, err = New(Config{Signer: signer, VKey: tw.vkey, Logs: tw.logs, StateDir: tw.dir})
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.srv = httptest.NewServer(tw.w.Handler())
}

func (tw *testWitness) stop() {
	if tw.srv != nil {
		tw.srv.Close()
		tw.w.Close()
		tw.srv = nil
	}
}

func (tw *testWitness) post(body []byte) (int, string, []byte) {
	tw.t.Helper()
	resp, err := http.Post(tw.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		tw.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func (tw *testWitness) add(old uint64, proof [][]byte, cp []byte) (int, string, []byte) {
	tw.t.Helper()
	return tw.post((&AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: cp}).Marshal())
}

// checkCosignature checks that line is a valid timestamped cosignature of
// checkpoint by the witness's key, made within the last minute.
func (tw *testWitness) checkCosignature(checkpoint, line []byte) {
	tw.t.Helper()
	signed := append(bytes.TrimRight(bytes.Clone(checkpoint), "\n"), '\n')
	signed = append(signed, line...)
	n, err := note.Open(signed, note.VerifierList(tw.cosigner))
	if err != nil || len(n.Sigs) != 1 {
		tw.t.Fatalf("the cosignature %q does not verify with the witness key: %v", line, err)
	}
	at, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
		tw.t.Fatalf("cosignature time %v (%v), want now", at, err)
	}
}

// TestStatuses holds the witness to the tlog-witness specification's
// answers, one request at a time, on one log and its state.
func TestStatuses(t *testing.T) {
	lg := newTestLog(t, "spoor.example/regio-amersfoort")
	tw := newTestWitness(t, lg)
	other := newTestLog(t, "spoor.example/elders")
	lg.grow(5)
	cp5 := lg.checkpoint(5, lg.root(5))

	// Refused before any state: nothing is stored by these.
	stranger, _ := note.NewSigner(mustSkey(t, lg.origin))
	var proof64 [][]byte
	for range 64 {
		proof64 = append(proof64, make([]byte, 32))
	}
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"unknown log", (&AddCheckpointRequest{Checkpoint: other.checkpoint(0, other.root(0))}).Marshal(), http.StatusNotFound},
		{"signed by another key only", (&AddCheckpointRequest{Checkpoint: lg.checkpoint(5, lg.root(5), stranger)}).Marshal(), http.StatusForbidden},
		{"log signature does not verify", (&AddCheckpointRequest{Checkpoint: bytes.Replace(cp5, []byte("\n5\n"), []byte("\n6\n"), 1)}).Marshal(), http.StatusForbidden},
		{"old size above the checkpoint's", (&AddCheckpointRequest{OldSize: 6, Checkpoint: cp5}).Marshal(), http.StatusBadRequest},
		{"64 proof lines", (&AddCheckpointRequest{OldSize: 1, Proof: proof64, Checkpoint: cp5}).Marshal(), http.StatusBadRequest},
		{"garbage", []byte("hello\n"), http.StatusBadRequest},
		{"no checkpoint", []byte("old 0\n\n"), http.StatusBadRequest},
		{"leading zero", append([]byte("old 00\n\n"), cp5...), http.StatusBadRequest},
		{"over 16 KiB", append([]byte("old 0\n\n"), bytes.Repeat([]byte("x"), MaxRequestBytes)...), http.StatusRequestEntityTooLarge},
		{"a proof with old 0", (&AddCheckpointRequest{OldSize: 0, Proof: [][]byte{make([]byte, 32)}, Checkpoint: cp5}).Marshal(), http.StatusUnprocessableEntity},
		{"size 0 with another root", (&AddCheckpointRequest{Checkpoint: lg.checkpoint(0, lg.root(5))}).Marshal(), http.StatusUnprocessableEntity},
	} {
		if code, _, b := tw.post(c.body); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, b, c.want)
		}
	}
	if tw.w.Latest(lg.origin) != nil {
		t.Fatal("a refused request changed the state")
	}

	// The first checkpoint, trusted on first use with old 0.
	code, _, line := tw.add(0, nil, cp5)
	if code != http.StatusOK {
		t.Fatalf("first checkpoint: %d %s", code, line)
	}
	tw.checkCosignature(cp5, line)

	// A client that thinks the witness is at 0: 409 with the size held.
	if code, ct, b := tw.add(0, nil, cp5); code != http.StatusConflict || ct != "text/x.tlog.size" || string(b) != "5\n" {
		t.Errorf("stale old size: %d %q %q, want 409 text/x.tlog.size \"5\\n\"", code, ct, b)
	}

	// Extending with a good proof.
	lg.grow(5)
	cp10 := lg.checkpoint(10, lg.root(10))
	if code, _, b := tw.add(5, lg.proof(5, 10), cp10); code != http.StatusOK {
		t.Fatalf("5 -> 10 with a good proof: %d %s", code, b)
	}
	// A bad proof: 422, and the refused checkpoint is kept as evidence.
	lg.grow(2)
	cp12 := lg.checkpoint(12, lg.root(12))
	bad := lg.proof(10, 12)
	bad[0] = bytes.Repeat([]byte{7}, 32)
	if code, _, b := tw.add(10, bad, cp12); code != http.StatusUnprocessableEntity {
		t.Errorf("a bad proof: %d %s, want 422", code, b)
	}
	// A fork: the size held with another root (422).
	fork := lg.checkpoint(10, lg.root(9))
	if code, _, b := tw.add(10, nil, fork); code != http.StatusUnprocessableEntity {
		t.Errorf("a fork at the size held: %d %s, want 422", code, b)
	}
	// The same checkpoint again: cosigned again with a fresh time.
	if code, _, b := tw.add(10, nil, cp10); code != http.StatusOK {
		t.Errorf("the checkpoint held, again: %d %s", code, b)
	}
	// A rollback: an older checkpoint (old above its size, 400; or old
	// 0 with the old checkpoint, 409).
	if code, _, _ := tw.add(10, nil, cp5); code != http.StatusBadRequest {
		t.Errorf("a rollback with old 10: %d, want 400", code)
	}
	if code, _, b := tw.add(0, nil, cp5); code != http.StatusConflict || string(b) != "10\n" {
		t.Errorf("a rollback with old 0: %d %q, want 409 10", code, b)
	}
	ev, _ := os.ReadDir(filepath.Join(tw.w.store.logDir(lg.origin), "evidence"))
	if len(ev) < 3 {
		t.Errorf("%d refused checkpoints kept as evidence, want at least 3 (bad proof, fork, stale)", len(ev))
	}

	// Monitors read the latest cosigned checkpoint.
	h := sha256.Sum256([]byte(lg.origin))
	resp, err := http.Get(tw.srv.URL + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(latest, []byte(lg.origin+"\n10\n")) {
		t.Errorf("GET checkpoint: %d %q", resp.StatusCode, latest)
	}
	if _, err := note.Open(latest, note.VerifierList(tw.cosigner)); err != nil {
		t.Errorf("the served checkpoint carries no cosignature of the witness: %v", err)
	}
	resp, err = http.Get(tw.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	status, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(status), lg.origin) || !strings.Contains(string(status), "size 10") || !strings.Contains(string(status), tw.vkey) {
		t.Errorf("status page:\n%s", status)
	}
}

// mustSkey makes a signer key named name that is not the log's.
func mustSkey(t *testing.T, name string) string {
	t.Helper()
	skey, _, _, _, err := verifier.GenerateLogKeys(name)
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// TestStateSurvivesRestart: the state is on disk before the answer, is
// found again by the next process, stays locked against a second one, and
// stays when the log leaves the configuration and comes back.
func TestStateSurvivesRestart(t *testing.T) {
	lg := newTestLog(t, "spoor.example/waterweg")
	tw := newTestWitness(t, lg)
	lg.grow(7)
	if code, _, b := tw.add(0, nil, lg.checkpoint(7, lg.root(7))); code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	signer, _ := fnote.NewSignerForCosignatureV1(tw.skey)
	if _, err := New(Config{Signer: signer, Logs: tw.logs, StateDir: tw.dir}); !errors.Is(err, ErrStateLocked) {
		t.Fatalf("a second witness on the same state: %v, want ErrStateLocked", err)
	}
	tw.stop()
	tw.start()
	if code, _, b := tw.add(0, nil, lg.checkpoint(7, lg.root(7))); code != http.StatusConflict || string(b) != "7\n" {
		t.Fatalf("after a restart: %d %q, want 409 7", code, b)
	}
	// Removed from the configuration: unknown; added again: resumes.
	tw.stop()
	logs := tw.logs
	tw.logs = nil
	tw.start()
	if code, _, _ := tw.add(7, nil, lg.checkpoint(7, lg.root(7))); code != http.StatusNotFound {
		t.Fatalf("a log no longer configured: %d, want 404", code)
	}
	tw.stop()
	tw.logs = logs
	tw.start()
	lg.grow(3)
	if code, _, b := tw.add(7, lg.proof(7, 10), lg.checkpoint(10, lg.root(10))); code != http.StatusOK {
		t.Fatalf("the log configured again resumes from 7: %d %s", code, b)
	}
}

// TestPushback: beyond MaxInFlight requests the witness answers 429 with
// Retry-After instead of queueing.
func TestPushback(t *testing.T) {
	lg := newTestLog(t, "spoor.example/pushback")
	tw := newTestWitness(t, lg)
	for range cap(tw.w.inFlight) {
		tw.w.inFlight <- struct{}{}
	}
	resp, err := http.Post(tw.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader((&AddCheckpointRequest{Checkpoint: lg.checkpoint(0, lg.root(0))}).Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a full witness: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	for range cap(tw.w.inFlight) {
		<-tw.w.inFlight
	}
	if code, _, b := tw.add(0, nil, lg.checkpoint(0, lg.root(0))); code != http.StatusOK {
		t.Fatalf("after the pushback: %d %s", code, b)
	}
}

// TestRequestRoundTrip: Marshal and ParseAddCheckpoint agree.
func TestRequestRoundTrip(t *testing.T) {
	req := &AddCheckpointRequest{OldSize: 12, Proof: [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}, Checkpoint: []byte("o\n20\nroot\n\n— o sig\n")}
	got, err := ParseAddCheckpoint(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.OldSize != 12 || len(got.Proof) != 2 || !bytes.Equal(got.Proof[1], req.Proof[1]) || !bytes.Equal(got.Checkpoint, req.Checkpoint) {
		t.Fatalf("round trip: %+v", got)
	}
}

// FuzzParseAddCheckpoint: the parser never panics, respects its limits,
// and what it accepts marshals back to the same bytes.
func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\norigin\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— origin AAAA\n"))
	f.Add((&AddCheckpointRequest{OldSize: 5, Proof: [][]byte{make([]byte, 32)}, Checkpoint: []byte("x\n")}).Marshal())
	f.Add([]byte("old 18446744073709551615\n\nx"))
	f.Add([]byte("old 18446744073709551616\n\nx"))
	f.Add([]byte("old -1\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseAddCheckpoint(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrTooManyProofLines) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if len(req.Proof) > MaxProofLines || len(req.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof lines, checkpoint %q", len(req.Proof), req.Checkpoint)
		}
		if got := req.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("marshal of the parsed request differs:\n%q\n%q", got, body)
		}
	})
}

// stateFiles reads every file of the witness's state folder but its lock:
// what a refused request must leave exactly as it was.
func stateFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".lock" {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// served reads the monitoring endpoint of origin.
func (tw *testWitness) served(origin string) string {
	tw.t.Helper()
	h := sha256.Sum256([]byte(origin))
	resp, err := http.Get(tw.srv.URL + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		tw.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// TestBadInputChangesNothing: with a state in place (size 10, its hourly
// file), each request that is not a checkpoint the log signed gets its
// status, and leaves every file of the state folder and the served
// checkpoint byte for byte as they were: no new state, no evidence (only
// validly signed checkpoints are evidence), no hourly file. A good request
// after them all still extends the state, so the comparison can fail.
func TestBadInputChangesNothing(t *testing.T) {
	lg := newTestLog(t, "spoor.example/slechte-invoer")
	other := newTestLog(t, "spoor.example/elders")
	tw := newTestWitness(t, lg, other)
	lg.grow(10)
	if code, _, b := tw.add(0, nil, lg.checkpoint(10, lg.root(10))); code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	lg.grow(2)
	cp12 := lg.checkpoint(12, lg.root(12))
	text12 := verifier.FormatCheckpoint(lg.origin, 12, lg.root(12))
	proof := lg.proof(10, 12)
	stranger, _ := note.NewSigner(mustSkey(t, lg.origin))
	var proof64 [][]byte
	for i := range 64 {
		proof64 = append(proof64, bytes.Repeat([]byte{byte(i)}, 32))
	}
	unknownOrigin := newTestLog(t, "spoor.example/niet-geconfigureerd")
	unknownOrigin.grow(12)

	files, latest := stateFiles(t, tw.dir), tw.served(lg.origin)
	if len(files) < 2 || !strings.HasPrefix(latest, "200 ") {
		t.Fatalf("the state before: %d files, served %q", len(files), latest)
	}
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"oversized", append((&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: cp12}).Marshal(), bytes.Repeat([]byte("\n"), MaxRequestBytes)...), http.StatusRequestEntityTooLarge},
		{"64 proof lines", (&AddCheckpointRequest{OldSize: 10, Proof: proof64, Checkpoint: cp12}).Marshal(), http.StatusBadRequest},
		{"garbage", []byte("\x00\xff garbage \x00\n\n\n"), http.StatusBadRequest},
		{"garbage after the log's origin", append([]byte("old 10\n\n"+lg.origin+"\n"), []byte("\x00 not a note \xff\n\n— x y\n")...), http.StatusBadRequest},
		{"a proof line that is not a hash", append([]byte("old 10\nAAAA\n\n"), cp12...), http.StatusBadRequest},
		{"wrong origin", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: unknownOrigin.checkpoint(12, unknownOrigin.root(12))}).Marshal(), http.StatusNotFound},
		{"another configured log's key on this origin", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: lg.checkpoint(12, lg.root(12), other.signer)}).Marshal(), http.StatusForbidden},
		{"unsigned, text only", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: text12}).Marshal(), http.StatusForbidden},
		{"unsigned, with the blank line", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: append(bytes.Clone(text12), '\n')}).Marshal(), http.StatusForbidden},
		{"signed by an unknown key", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: lg.checkpoint(12, lg.root(12), stranger)}).Marshal(), http.StatusForbidden},
		{"the log's signature over another text", (&AddCheckpointRequest{OldSize: 10, Proof: proof, Checkpoint: bytes.Replace(cp12, []byte("\n12\n"), []byte("\n13\n"), 1)}).Marshal(), http.StatusForbidden},
	} {
		if code, _, b := tw.post(c.body); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, b, c.want)
		}
		if got := stateFiles(t, tw.dir); !maps.Equal(got, files) {
			t.Errorf("%s: the state folder changed: %d files before, %d after", c.name, len(files), len(got))
		}
		if got := tw.served(lg.origin); got != latest {
			t.Errorf("%s: the served checkpoint changed:\n%s\nto\n%s", c.name, latest, got)
		}
	}
	if code, _, b := tw.add(10, proof, cp12); code != http.StatusOK {
		t.Fatalf("the good request after the bad ones: %d %s", code, b)
	}
	if maps.Equal(stateFiles(t, tw.dir), files) || tw.served(lg.origin) == latest {
		t.Fatal("a cosigned extension left the state folder or the served checkpoint as they were: the comparison above proves nothing")
	}
}
