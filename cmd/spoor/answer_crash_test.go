package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/crashpoint"
	"github.com/spoor-ledger/spoor/verifier"
)

// TestAnswerCrashBeforeBundle kills `spoor serve` with SIGKILL at the crash
// point answer-logged-before-bundle: the release's answer entry is durable
// (the request marked released in the same batch), and the bundle was
// neither made, kept nor sent. The desk user's release call fails. After a
// restart on the same data folder:
//   - the request is released, and `spoor inzage bundle` downloads its
//     bundle, which verifies with the pinned keys (a v2 bundle, its
//     metadata proven by the answer entry logged before the kill);
//   - a second release is refused (already_released), not logged again;
//   - the log holds exactly one answer entry, the bundle's, for the
//     request (the FG's /v1/entries, read with the FG token);
//   - a second download returns the same bytes.
func TestAnswerCrashBeforeBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process and kills it")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	srv := newServeProc(t, bin, dir)
	if err := srv.start(crashpoint.AnswerLogged + ":1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	data := srv.data
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runBin(t, bin, stdin, args...)
		if code != 0 {
			t.Fatalf("spoor %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	simReport := filepath.Join(dir, "simulation.json")
	run("", "simulate", "--data", data, "--nats", srv.natsURL(), "--events", "200", "--seed", "5", "--report", simReport)
	var rep SimulationReport
	if err := json.Unmarshal([]byte(readFile(t, simReport)), &rep); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(run(childUnder16(t, &rep).BSN+"\n", "inzage", "request", "--data", data, "--url", srv.url(), "--relation", "parent"))

	// The release reaches the crash point: the process dies with the
	// answer logged and no bundle sent.
	bundlePath := filepath.Join(dir, "bundle.json")
	if out, errOut, code := runBin(t, bin, "", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", bundlePath); code == 0 {
		t.Fatalf("the release succeeded although the server was to be killed before the bundle:\n%s%s", out, errOut)
	}
	st, err := srv.waitExit(30 * time.Second)
	if err != nil {
		t.Fatalf("the crash point was not reached: %v", err)
	}
	if !killedBySIGKILL(st) {
		t.Fatalf("spoor serve exited with %s, not killed at %s", st, crashpoint.AnswerLogged)
	}
	if _, err := os.Stat(bundlePath); err == nil {
		t.Fatal("a bundle was written although the server died before sending it")
	}

	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.interrupt(30 * time.Second) }()

	// Downloaded after the restart, and verified (--html verifies the
	// bundle with the pinned keys before it writes the report).
	report := filepath.Join(dir, "report.html")
	run("", "inzage", "bundle", id, "--data", data, "--url", srv.url(), "-o", bundlePath, "--html", report)
	first := readFile(t, bundlePath)
	var b verifier.Bundle
	if err := json.Unmarshal([]byte(first), &b); err != nil {
		t.Fatal(err)
	}
	// spoor serve keeps the subject index: the bundle proves its
	// completeness too (v3), with the proofs made in the answer's batch,
	// which was durable before the crash.
	if b.Format != verifier.BundleFormatV3 || b.Answer == nil || b.Index == nil || b.Request.ID != id {
		t.Fatalf("the bundle after the restart is %s for request %s, answer %v, index %v; want a v3 bundle of %s with its answer entry and index proofs",
			b.Format, b.Request.ID, b.Answer != nil, b.Index != nil, id)
	}
	out, errOut, code := runBin(t, bin, "", "verify", bundlePath, "--vkey", "@"+filepath.Join(data, "log.vkey"), "--admin", "@"+filepath.Join(data, "demo-keys", "admin.pub"))
	if code != 0 {
		t.Fatalf("spoor verify refuses the bundle downloaded after the crash: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "complete:    for the log before leaf") || strings.Contains(out, "volledigheid niet bewezen") {
		t.Errorf("spoor verify does not say what the v3 bundle proves complete:\n%s", out)
	}

	// Not released a second time.
	if _, errOut, code := runBin(t, bin, "", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", filepath.Join(dir, "again.json")); code == 0 || !strings.Contains(errOut, "already_released") {
		t.Errorf("a second release after the crash: exit %d, %s", code, errOut)
	}
	// The same bytes again.
	run("", "inzage", "bundle", id, "--data", data, "--url", srv.url(), "-o", bundlePath)
	if again := readFile(t, bundlePath); again != first {
		t.Error("a second download returned other bytes than the first")
	}

	// Exactly one answer entry for the request in the whole log.
	var answers []uint64
	fg := strings.TrimSpace(readFile(t, filepath.Join(data, "fg.token")))
	for from := uint64(0); ; {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/entries?from=%d&limit=1000", srv.url(), from), nil)
		req.Header.Set("Authorization", "Bearer "+fg)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page verifier.EntriesResponse
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/entries: %d, %v", resp.StatusCode, err)
		}
		for _, e := range page.Entries {
			rec, err := verifier.ParseLeafRecord(e.LeafRecord)
			if err != nil {
				t.Fatalf("leaf %d: %v", e.Index, err)
			}
			if rec.Type != verifier.EntryAnswer {
				continue
			}
			a, err := verifier.ParseAnswerBody(e.Body)
			if err != nil {
				t.Fatalf("answer entry %d: %v", e.Index, err)
			}
			if a.Request.ID == id {
				answers = append(answers, e.Index)
			}
		}
		if page.Next == nil {
			break
		}
		from = *page.Next
	}
	if len(answers) != 1 || answers[0] != b.Answer.Index {
		t.Fatalf("the log holds answer entries %v for the request; want exactly the bundle's, %d", answers, b.Answer.Index)
	}
}
