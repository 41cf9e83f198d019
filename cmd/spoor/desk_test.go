package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// TestDeskWorkflowBothCovenants runs the privacy desk's commands as a
// newcomer would, against spoor serve on each demo covenant with the demo
// desk users: an inzage answered by two desk users, and an erasure that
// one desk user proposes and a second confirms. On the Waterweg covenant
// (no central desk) each party's desk answers for its own disclosures only.
func TestDeskWorkflowBothCovenants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spoor serve as a process")
	}
	bin := buildSpoor(t)
	for _, name := range demo.Names() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			srv := newServeProc(t, bin, dir, "--demo", name)
			if err := srv.start(""); err != nil {
				t.Fatal(err)
			}
			if err := srv.waitReady(secReady); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.interrupt(30 * time.Second) }()
			data := srv.data
			run := func(stdin string, args ...string) string {
				t.Helper()
				out, errOut, code := runBin(t, bin, stdin, args...)
				if code != 0 {
					t.Fatalf("spoor %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
				}
				return out
			}
			refused := func(stdin string, args ...string) string {
				t.Helper()
				out, errOut, code := runBin(t, bin, stdin, args...)
				if code == 0 {
					t.Fatalf("spoor %s succeeded; it should have been refused\n%s", strings.Join(args, " "), out)
				}
				return errOut
			}
			simReport := filepath.Join(dir, "simulation.json")
			run("", "simulate", "--data", data, "--nats", srv.natsURL(), "--events", "300", "--seed", "7", "--report", simReport)
			var rep SimulationReport
			if err := json.Unmarshal([]byte(readFile(t, simReport)), &rep); err != nil {
				t.Fatal(err)
			}

			// The inzage, answered with desk-1 and desk-2.
			id := strings.TrimSpace(run(childUnder16(t, &rep).BSN+"\n", "inzage", "request", "--data", data, "--url", srv.url(), "--relation", "parent"))
			bundlePath := filepath.Join(dir, "bundle.json")
			refused("", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", bundlePath, "--token", "@"+filepath.Join(data, "demo-keys", "desk-1.token"))
			run("", "inzage", "release", id, "--data", data, "--url", srv.url(), "-o", bundlePath)
			var b verifier.Bundle
			if err := json.Unmarshal([]byte(readFile(t, bundlePath)), &b); err != nil {
				t.Fatal(err)
			}
			// Downloaded again, by the other desk user: the very bytes, as
			// the ledger keeps and sends them (its final newline too).
			againPath := filepath.Join(dir, "bundle-again.json")
			run("", "inzage", "bundle", id, "--data", data, "--url", srv.url(), "-o", againPath)
			if again := readFile(t, againPath); again != readFile(t, bundlePath) || !strings.HasSuffix(again, "}\n") {
				t.Error("the bundle downloaded again differs from the one released, or lost its final newline")
			}
			users := demo.DeskUsers(name)
			if want := users[0].Party; want != "" && (b.Scope.CentralDesk || len(b.Scope.Parties) != 1 || b.Scope.Parties[0] != want) {
				t.Errorf("the bundle's scope is %+v, want the party desk of %s", b.Scope, want)
			}

			// A disclosure of desk-1's scope, and one of another party.
			mine, theirs := leafOf(t, srv.url(), readFile(t, filepath.Join(data, "fg.token")), users[0].Party)
			propose := func(user string, leaf uint64) []string {
				return []string{"erasure", "propose", "--data", data, "--url", srv.url(), "--desk-user", user,
					"--leaf", fmt.Sprint(leaf), "--ground", "avg-17-1-a"}
			}
			if users[0].Party != "" {
				// desk-3 answers for another party: desk-1's disclosure is
				// unknown to it, and desk-3's to desk-1.
				if msg := refused("", propose("desk-3", mine)...); !strings.Contains(msg, "not_found") {
					t.Errorf("desk-3 proposes to erase another party's disclosure: %s", msg)
				}
				if msg := refused("", propose("desk-1", theirs)...); !strings.Contains(msg, "not_found") {
					t.Errorf("desk-1 proposes to erase another party's disclosure: %s", msg)
				}
			}
			pid := strings.TrimSpace(run("", propose("desk-1", mine)...))
			if msg := refused("", "erasure", "confirm", pid, "--data", data, "--url", srv.url(), "--desk-user", "desk-1"); !strings.Contains(msg, "second_person_required") {
				t.Errorf("the proposer confirms their own proposal: %s", msg)
			}
			if out := run("", "erasure", "list", "--data", data, "--url", srv.url()); !strings.Contains(out, pid) || !strings.Contains(out, "proposed") ||
				!strings.Contains(out, report.ErasureGroundLabel("avg-17-1-a")) {
				t.Errorf("erasure list does not show the open proposal with its ground in Dutch:\n%s", out)
			}
			if out := run("", "erasure", "confirm", pid, "--data", data, "--url", srv.url()); !strings.Contains(out, fmt.Sprintf("erased: leaf %d", mine)) {
				t.Errorf("erasure confirm: %s", out)
			}
			if msg := refused("", propose("desk-1", mine)...); !strings.Contains(msg, "already_erased") {
				t.Errorf("proposing to erase an erased disclosure: %s", msg)
			}
		})
	}
}

// leafOf returns, from the FG's view of the log, a disclosure by party and
// one by another party ("" for party: any two disclosures).
func leafOf(t *testing.T, url, fgToken, party string) (mine, theirs uint64) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/entries?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(fgToken))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page httpapi.EntriesResponse
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var haveMine, haveTheirs bool
	for _, e := range page.Entries {
		if len(e.Envelope) == 0 {
			continue
		}
		env, err := events.ParseEnvelope(e.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !haveMine && (party == "" || d.Discloser == party):
			mine, haveMine = e.Index, true
		case !haveTheirs && d.Discloser != party:
			theirs, haveTheirs = e.Index, true
		}
	}
	if !haveMine || !haveTheirs {
		t.Fatalf("the log has no disclosure by %q, or none by another party", party)
	}
	return mine, theirs
}

// TestGroundLegend: erasure list explains each ground it shows once, in
// Dutch, in the order of AVG art. 17(1), and lists a ground this build
// does not know as itself instead of leaving it out.
func TestGroundLegend(t *testing.T) {
	var buf strings.Builder
	printGroundLegend(&buf, []verifier.ErasureProposal{{Ground: "avg-17-1-d"}, {Ground: "zz-new"}, {Ground: "avg-17-1-a"}, {Ground: "avg-17-1-d"}})
	want := "\nGROUND\n" +
		"  avg-17-1-a  " + report.ErasureGroundLabel("avg-17-1-a") + "\n" +
		"  avg-17-1-d  " + report.ErasureGroundLabel("avg-17-1-d") + "\n" +
		"  zz-new\n"
	if buf.String() != want {
		t.Errorf("legend:\n%s\nwant:\n%s", buf.String(), want)
	}
}
