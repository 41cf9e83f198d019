package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// TestAuditCommand runs `spoor audit` on a ledger's data folder laid out
// as `spoor serve` leaves it (DIR/ledger, DIR/log.vkey, DIR/cosigner.vkey,
// DIR/fg.token): over HTTP while it runs, read-only from the folder once
// stopped, and again after one stored envelope was altered on disk.
func TestAuditCommand(t *testing.T) {
	ctx := context.Background()
	env := testledger.New(t)
	dir := env.Dir
	for name, v := range map[string]string{"log.vkey": env.LogVkey, "cosigner.vkey": env.CosVkey, "fg.token": testledger.FGToken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	admin := filepath.Join(dir, "demo-keys", "admin.pub")
	if err := os.WriteFile(admin, []byte(env.Demo.AdminVkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sl := env.Serve(t)
	sl.Grow(t, 121)

	run := func(f *auditFlags) (string, error) {
		var out, errOut bytes.Buffer
		err := runAudit(ctx, f, &out, &errOut)
		return out.String(), err
	}

	// While the ledger runs, --data is refused with a way out.
	_, err := run(&auditFlags{data: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("--data on a running ledger: %v", err)
	}
	// --url needs the pinned keys and the token.
	if _, err := run(&auditFlags{url: sl.Srv.URL, token: "@" + filepath.Join(dir, "fg.token")}); err == nil {
		t.Fatal("--url without --vkey was accepted")
	}
	out, err := run(&auditFlags{url: sl.Srv.URL, token: "@" + filepath.Join(dir, "fg.token"),
		vkey: "@" + filepath.Join(dir, "log.vkey"), cosVkey: "@" + filepath.Join(dir, "cosigner.vkey"), admin: "@" + admin})
	if err != nil || !strings.Contains(out, "every integrity check holds") {
		t.Fatalf("--url: %v\n%s", err, out)
	}

	// Stopped: read-only from the folder, with the JSON and HTML reports.
	sl.Srv.Close()
	if err := sl.L.Close(); err != nil {
		t.Fatal(err)
	}
	closeServedStore(t, sl)

	html := filepath.Join(t.TempDir(), "audit.html")
	out, err = run(&auditFlags{data: dir, admin: "@" + admin, jsonOut: true, html: html})
	if err != nil {
		t.Fatalf("--data: %v", err)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if !rep.OK || rep.TreeSize != 121 || !rep.AdminPinned {
		t.Fatalf("report: ok %v, size %d, problems %v", rep.OK, rep.TreeSize, rep.Problems)
	}
	page := readFile(t, html)
	for _, want := range []string{"Auditrapport", "Alle integriteitscontroles zijn geslaagd", "Verstrekkingen per partij",
		env.Demo.Signed.Covenant.Parties[0].Name, "Gezondheid, gedrag en ontwikkeling", "mediaan"} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	checkNoSubjects(t, env, out, page)

	// One stored envelope altered on disk: the audit fails and names it.
	const victim = 57
	s, err := pebblestore.Open(filepath.Join(dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key := binary.BigEndian.AppendUint64([]byte{'e'}, victim)
	envBytes, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	envBytes[len(envBytes)/2] ^= 0x02
	var b ledger.Batch
	b.Set(key, envBytes)
	if err := s.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out, err = run(&auditFlags{data: dir, html: html})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitAuditFailed {
		t.Fatalf("tampered: want exit status %d, got %v", exitAuditFailed, err)
	}
	if !strings.Contains(out, "INTEGRITY CHECKS FAILED") || !strings.Contains(out, "body-hash (leaf 57)") ||
		!strings.Contains(out, "NOT pinned") {
		t.Fatalf("tampered: the summary does not name leaf %d:\n%s", victim, out)
	}
	page = readFile(t, html)
	if !strings.Contains(page, "Integriteitscontroles NIET geslaagd") || !strings.Contains(page, "leaf 57") ||
		!strings.Contains(page, "Opgeslagen bericht gewijzigd") {
		t.Errorf("the HTML report does not show the altered envelope")
	}
}

// closeServedStore closes the Pebble store Serve opened, which its cleanup
// would otherwise close only at the end of the test.
func closeServedStore(t *testing.T, sl *testledger.Served) {
	t.Helper()
	if sl.Store != nil {
		if err := sl.Store.Close(); err != nil {
			t.Fatal(err)
		}
		sl.Store = nil
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkNoSubjects fails if a child's BSN or pseudonym appears in any of
// the texts.
func checkNoSubjects(t *testing.T, env *testledger.Env, texts ...string) {
	t.Helper()
	for _, c := range env.Gen.Children() {
		for _, s := range texts {
			if strings.Contains(s, c.BSN) || strings.Contains(s, c.Pseudonym) {
				t.Fatal("a report shows a BSN or a pseudonym")
			}
		}
	}
}

// TestAuditJSONWithoutPolicyUnchanged: on a log whose covenant has no
// witness policy, `spoor audit --json` is what it was before witnesses:
// the same top-level fields, the same time note, no witnessing part, and
// the summary prints no witness line. (The ledger is not asked for
// witnessed checkpoints at all, so an older ledger is audited as before.)
func TestAuditJSONWithoutPolicyUnchanged(t *testing.T) {
	env := testledger.New(t)
	sl := env.Serve(t)
	sl.Grow(t, 40)
	tokenFile := filepath.Join(t.TempDir(), "fg.token")
	if err := os.WriteFile(tokenFile, []byte(testledger.FGToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &auditFlags{url: sl.Srv.URL, token: "@" + tokenFile, vkey: env.LogVkey, cosVkey: env.CosVkey, admin: env.Demo.AdminVkey, jsonOut: true}
	var out, errOut bytes.Buffer
	if err := runAudit(context.Background(), f, &out, &errOut); err != nil {
		t.Fatalf("audit: %v\n%s", err, errOut.String())
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	// The report's fields before issue 20.
	before := []string{"origin", "generated_at", "log_key", "cosigner_key", "admin_key", "admin_pinned", "ok", "tree_size",
		"checkpoints", "entries", "covenants", "problems", "problem_counts", "by_party", "by_purpose", "by_category", "by_rule",
		"anomalies", "erasures_on_request", "time_note"}
	for _, k := range before {
		if _, ok := fields[k]; !ok {
			t.Errorf("the report lacks %q", k)
		}
		delete(fields, k)
	}
	for k := range fields {
		t.Errorf("the report of a log without a witness policy has a new field %q", k)
	}
	const oldNote = "integrated_at and the checkpoint times are the ledger's own signed statements (its clock and its own " +
		"cosigner key); no independent witness bounds them. occurred_at is the discloser's statement in its signed envelope."
	var rep audit.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.TimeNote != oldNote || rep.Witnessing != nil || !rep.OK {
		t.Errorf("time note %q, witnessing %+v, ok %v", rep.TimeNote, rep.Witnessing, rep.OK)
	}
	if strings.Contains(strings.ToLower(out.String()), "witnessed") {
		t.Error("the JSON report of a log without a policy mentions witnessed checkpoints")
	}
	out.Reset()
	f.jsonOut = false
	if err := runAudit(context.Background(), f, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Witnesses") {
		t.Errorf("the summary of a log without a policy has a witness line:\n%s", out.String())
	}
}

// TestAuditSummaryCountsAnswers: spoor audit's text output counts the
// inzage answers among the entries and lists each, with its withholdings
// and grounds.
func TestAuditSummaryCountsAnswers(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)
	rep := &audit.Report{Origin: "spoor.example/test", OK: true, Entries: audit.EntryCounts{Disclosures: 10, Covenants: 1, Answers: 2},
		Answers: []audit.AnswerInfo{
			{Leaf: 11, RequestID: "req-one", Relation: verifier.RelationParent, ReleasedAt: at, RequestedBy: "aaaaaaaaaaaaaaaa", ReleasedBy: "bbbbbbbbbbbbbbbb",
				CentralDesk: true, Included: 3, Withheld: []verifier.AnswerWithheld{{Index: 4, Ground: verifier.WithholdAVG23}}},
			{Leaf: 12, RequestID: "req-two", Relation: verifier.RelationYoungPerson, ReleasedAt: at, RequestedBy: "cccccccccccccccc", ReleasedBy: "dddddddddddddddd",
				Parties: []string{"gemeente-a"}, Included: 1, Withheld: []verifier.AnswerWithheld{}},
		}}
	var out bytes.Buffer
	printAuditSummary(&out, rep)
	for _, want := range []string{
		"1 covenant versions, 0 tombstones, 2 inzage answers (0 erased)",
		"Inzage answers: 2 on the record, 1 disclosures withheld in them",
		"leaf 11: request req-one (parent) released 2026-03-14T09:26:00Z for central desk: 3 shown, 1 withheld, 0 erased",
		"withheld leaf 4: avg-23",
		"leaf 12: request req-two (young-person)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("spoor audit's output lacks %q:\n%s", want, out.String())
		}
	}
}
