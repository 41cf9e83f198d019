package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/verifier"
)

// TestInzageYoungPerson16Plus runs the desk's commands against spoor serve
// for a child the disclosures show to be 16 or over, asked about by a
// parent: the release is refused (409 young_person_16_plus) and the
// request stays open; released again with the young person's consent
// recorded (--young-person-consent), the bundle verifies, its answer entry
// holds the decision and the Dutch report says it.
func TestInzageYoungPerson16Plus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	srv := newServeProc(t, bin, dir)
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.interrupt(30 * time.Second) }()
	data := srv.data
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runBin(t, bin, stdin, args...)
	}
	simReport := filepath.Join(dir, "simulation.json")
	if out, errOut, code := run("", "simulate", "--data", data, "--nats", srv.natsURL(), "--events", "300", "--seed", "7", "--report", simReport); code != 0 {
		t.Fatalf("simulate: %s%s", out, errOut)
	}
	var rep SimulationReport
	if err := json.Unmarshal([]byte(readFile(t, simReport)), &rep); err != nil {
		t.Fatal(err)
	}
	var bsn string
	for _, c := range rep.Children {
		if c.AgeBand == string(events.Age16Plus) && c.Events > 0 {
			bsn = c.BSN
			break
		}
	}
	if bsn == "" {
		t.Fatal("the simulation has no child of 16 or over with disclosures")
	}
	out, errOut, code := run(bsn+"\n", "inzage", "request", "--data", data, "--url", srv.url(), "--relation", "parent")
	if code != 0 {
		t.Fatalf("inzage request: %s%s", out, errOut)
	}
	id := strings.TrimSpace(out)
	bundle := filepath.Join(dir, "bundle.json")
	// --html without the pinned keys (no --data to take them from) is
	// refused before the release: the request stays open, as the refusal
	// below (young_person_16_plus, not already_released) shows.
	if _, errOut, code := run("", "inzage", "release", id, "--url", srv.url(), "--token", "@"+datadir.Dir(data).DemoDeskToken("desk-2"),
		"-o", bundle, "--html", filepath.Join(dir, "early.html")); code == 0 || !strings.Contains(errOut, "not released: --html needs the pinned keys") {
		t.Fatalf("release --html without keys: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(bundle); err == nil {
		t.Fatal("release --html without keys wrote a bundle")
	}
	if _, errOut, code := run("", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", bundle); code == 0 || !strings.Contains(errOut, "young_person_16_plus") {
		t.Fatalf("release to a parent of a child of 16 or over: exit %d, %s; want young_person_16_plus", code, errOut)
	}
	const ref = "dossier JZ-2026/7"
	report := filepath.Join(dir, "rapport.html")
	if out, errOut, code := run("", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", bundle,
		"--young-person-consent", ref, "--html", report); code != 0 {
		t.Fatalf("release with the young person's consent: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := run("", "verify", bundle, "--vkey", "@"+filepath.Join(data, "log.vkey"), "--admin", "@"+filepath.Join(data, "demo-keys", "admin.pub")); code != 0 {
		t.Fatalf("spoor verify: exit %d\n%s%s", code, out, errOut)
	}
	b, err := verifier.ParseBundle([]byte(readFile(t, bundle)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := verifier.ParseAnswerBody(b.Answer.Body)
	if err != nil {
		t.Fatal(err)
	}
	if body.YoungPerson == nil || body.YoungPerson.ConsentReference != ref || len(body.YoungPerson.Leaves) == 0 {
		t.Fatalf("the answer entry records %+v; want the consent with its reference", body.YoungPerson)
	}
	page := readFile(t, report)
	for _, want := range []string{"Jongere van 16 jaar of ouder", "toestemming", ref} {
		if !strings.Contains(page, want) {
			t.Errorf("the Dutch report does not say %q", want)
		}
	}
}

// childUnder16 returns the simulated child with the most disclosures
// among those under 16: a parent may ask about them without the young
// person's consent (release refuses a parent's request about a child the
// disclosures show to be 16 or over).
func childUnder16(t *testing.T, rep *SimulationReport) SimChild {
	t.Helper()
	var child SimChild
	for _, c := range rep.Children {
		if c.AgeBand != string(events.Age16Plus) && c.Events > child.Events {
			child = c
		}
	}
	if child.Events == 0 {
		t.Fatal("the simulation logged no disclosure about a child under 16")
	}
	return child
}
