package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
)

// runSpoor runs the spoor command line in-process and returns its stdout,
// stderr and exit status (0, or the exitError's code, or 1).
func runSpoor(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("spoor: " + err.Error() + "\n")
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), errb.String(), code
}

// verifyLog is a real ledger (Pebble, real keys, the demo covenant) with
// its verifier keys written where a parent would keep them.
type verifyLog struct {
	env  *testledger.Env
	l    *ledger.Ledger
	dir  string // holds log.vkey, cosigner.vkey and admin.pub
	srv  *httptest.Server
	kids []string
}

func newVerifyLog(t *testing.T, e *testledger.Env, dataDir string) *verifyLog {
	t.Helper()
	s, err := pebblestore.Open(dataDir, pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(context.Background(), ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys,
		Covenant: e.Demo.Signed, AdminVkey: e.Demo.AdminVkey, IdleCosign: -1})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l}))
	t.Cleanup(func() {
		srv.Close()
		l.Close()
		s.Close()
	})
	v := &verifyLog{env: e, l: l, dir: filepath.Join(e.Dir, "pinned"), srv: srv}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{"log.vkey": e.LogVkey, "cosigner.vkey": e.CosVkey, "admin.pub": e.Demo.AdminVkey} {
		if err := os.WriteFile(filepath.Join(v.dir, name), []byte(key+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// log records n synthetic disclosures, the first about child.
func (v *verifyLog) log(t *testing.T, child string, n int) {
	t.Helper()
	var subs []ledger.Submission
	for i := range n {
		d, _ := v.env.Gen.Next()
		if i == 0 && child != "" {
			d.Subject.Pseudonym = child
		}
		subs = append(subs, v.env.Submission(t, v.l, v.env.Sign(t, d)))
	}
	p, err := v.l.Submit(context.Background(), subs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// bundle writes the inzage bundle about child to a file.
func (v *verifyLog) bundle(t *testing.T, child string) string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	data, _, err := answer.New(answer.Config{Ledger: v.l}).BuildBundle(context.Background(), answer.BundleRequest{
		IDType:       events.IDTypeBSN,
		Pseudonyms:   []verifier.SubjectPseudonym{{KeyID: v.env.Demo.SubjectKey.ID, Pseudonym: child}},
		Request:      verifier.InzageRequest{ID: "inzage-1", Relation: verifier.RelationYoungPerson, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
		LogVkey:      v.env.LogVkey,
		CosignerVkey: v.env.CosVkey,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (v *verifyLog) pin(name string) string { return "@" + filepath.Join(v.dir, name) }

func TestVerifyCommand(t *testing.T) {
	e := testledger.New(t)
	v := newVerifyLog(t, e, filepath.Join(e.Dir, "ledger"))
	child := e.Gen.Children()[0].Pseudonym
	for range 3 {
		v.log(t, child, 4)
	}
	path := v.bundle(t, child)
	report := filepath.Join(t.TempDir(), "rapport.html")

	out, errOut, code := runSpoor(t, "verify", path, "--vkey", v.pin("log.vkey"), "--admin", v.pin("admin.pub"), "--html", report)
	if code != 0 {
		t.Fatalf("verify exited %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"trusted log key:           " + verifier.KeyFingerprint(e.LogVkey),
		"trusted cosigner key:      " + verifier.KeyFingerprint(e.CosVkey),
		"trusted administrator key: " + verifier.KeyFingerprint(e.Demo.AdminVkey),
		"OK: " + path + " verifies.", "disclosures: 3,", "wrote the report to " + report,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(report)
	if err != nil || !bytes.Contains(page, []byte("Zo controleert u dit overzicht")) {
		t.Errorf("no report written (%v)", err)
	}
	// The report names the bundle by the name of the file checked, so the
	// parent finds the file it speaks of.
	if want := "spoor verify " + filepath.Base(path) + " "; !bytes.Contains(page, []byte(want)) {
		t.Errorf("the report does not name the bundle checked: no %q", want)
	}

	t.Run("refuses without pinned keys", func(t *testing.T) {
		for _, args := range [][]string{
			{"verify", path, "--admin", v.pin("admin.pub")},
			{"verify", path, "--vkey", v.pin("log.vkey")},
			{"verify", path, "--vkey", e.LogVkey, "--admin", v.pin("admin.pub")}, // no cosigner key beside it
		} {
			_, errOut, code := runSpoor(t, args...)
			if code != 2 || !strings.Contains(errOut, "--") {
				t.Errorf("%v: exit %d, %s", args[2:], code, errOut)
			}
		}
	})

	t.Run("names what failed and where", func(t *testing.T) {
		var b verifier.Bundle
		data, _ := os.ReadFile(path)
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		b.Entries[1].Envelope[30] ^= 1
		bad, err := verifier.MarshalBundle(&b)
		if err != nil {
			t.Fatal(err)
		}
		badPath := filepath.Join(t.TempDir(), "bundle.json")
		if err := os.WriteFile(badPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		htmlPath := filepath.Join(t.TempDir(), "rapport.html")
		out, errOut, code := runSpoor(t, "verify", badPath, "--vkey", v.pin("log.vkey"), "--admin", v.pin("admin.pub"), "--html", htmlPath)
		want := "entries[1] (leaf " + itoa(b.Entries[1].Index) + "): body-hash"
		if code != 1 || !strings.Contains(errOut, "FAILED") || !strings.Contains(errOut, want) || strings.Contains(out, "OK") {
			t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s\nwant %q", code, out, errOut, want)
		}
		if _, err := os.Stat(htmlPath); err == nil {
			t.Errorf("a report was written for a bundle that does not verify")
		}
		// The wrong administrator key: pinned keys decide, not the bundle.
		_, vkey, err := events.GenerateAdminKey("someone-else")
		if err != nil {
			t.Fatal(err)
		}
		_, errOut, code = runSpoor(t, "verify", path, "--vkey", v.pin("log.vkey"), "--admin", vkey)
		if code != 1 || !strings.Contains(errOut, "covenants[0] (leaf 0): administrator") {
			t.Errorf("wrong administrator key: exit %d, %s", code, errOut)
		}
	})
	// A bundle holding an entry of a type newer than this version reads
	// (as a later ledger might hand out): refused, naming the type and
	// saying to upgrade, rather than called a mere damaged record.
	t.Run("refuses a newer entry type", func(t *testing.T) {
		var b verifier.Bundle
		data, _ := os.ReadFile(path)
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		b.Entries[0].LeafRecord[1] = byte(verifier.LatestEntryType) + 1
		bad, err := verifier.MarshalBundle(&b)
		if err != nil {
			t.Fatal(err)
		}
		badPath := filepath.Join(t.TempDir(), "bundle.json")
		if err := os.WriteFile(badPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runSpoor(t, "verify", badPath, "--vkey", v.pin("log.vkey"), "--admin", v.pin("admin.pub"))
		if code != 1 || strings.Contains(out, "OK") {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for _, want := range []string{"entries[0] (leaf " + itoa(b.Entries[0].Index) + ")", "entry type 6", "upgrade spoor"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, errOut)
			}
		}
	})
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestVerifyConsistencyCommand: today's log extends a kept checkpoint (or a
// kept bundle); a second log made with the same keys does not, and neither
// does a log that went back.
func TestVerifyConsistencyCommand(t *testing.T) {
	e := testledger.New(t)
	a := newVerifyLog(t, e, filepath.Join(e.Dir, "ledger-a"))
	child := e.Gen.Children()[0].Pseudonym
	a.log(t, child, 260)
	kept := filepath.Join(t.TempDir(), "checkpoint")
	if err := os.WriteFile(kept, a.l.Head().Note, 0o644); err != nil {
		t.Fatal(err)
	}
	keptBundle := a.bundle(t, child)
	a.log(t, "", 20)

	args := func(old, url string) []string {
		return []string{"verify", "--consistency", old, "--url", url, "--vkey", a.pin("log.vkey"), "--cosigner-vkey", a.pin("cosigner.vkey")}
	}
	for _, old := range []string{kept, keptBundle} {
		out, errOut, code := runSpoor(t, args(old, a.srv.URL)...)
		if code != 0 || !strings.Contains(out, "OK: today's log extends the kept checkpoint.") {
			t.Errorf("%s: exit %d\n%s%s", filepath.Base(old), code, out, errOut)
		}
	}

	// Another log with the same keys and covenant: same origin, same
	// signatures, another history.
	b := newVerifyLog(t, e, filepath.Join(e.Dir, "ledger-b"))
	b.log(t, "", 300)
	_, errOut, code := runSpoor(t, args(kept, b.srv.URL)...)
	if code != 1 || !strings.Contains(errOut, "FORK: today's log") || !strings.Contains(errOut, "does not extend the kept checkpoint") {
		t.Errorf("forked log: exit %d, %s", code, errOut)
	}

	// A log smaller than the kept checkpoint: gone back.
	c := newVerifyLog(t, e, filepath.Join(e.Dir, "ledger-c"))
	c.log(t, "", 5)
	_, errOut, code = runSpoor(t, args(kept, c.srv.URL)...)
	if code != 1 || !strings.Contains(errOut, "ROLLBACK") {
		t.Errorf("smaller log: exit %d, %s", code, errOut)
	}

	// A kept checkpoint that is not this log's is refused up front.
	other := testledger.New(t)
	d := newVerifyLog(t, other, filepath.Join(other.Dir, "ledger-d"))
	_, errOut, code = runSpoor(t, "verify", "--consistency", kept, "--url", a.srv.URL, "--vkey", d.pin("log.vkey"))
	if code != 1 || !strings.Contains(errOut, "does not verify with the pinned keys") {
		t.Errorf("checkpoint of other keys: exit %d, %s", code, errOut)
	}
	// Without --url, and without a pinned key.
	if _, _, code := runSpoor(t, "verify", "--consistency", kept, "--vkey", a.pin("log.vkey")); code != 2 {
		t.Errorf("no --url: exit %d", code)
	}
	if _, _, code := runSpoor(t, "verify", "--consistency", kept, "--url", a.srv.URL); code != 2 {
		t.Errorf("no --vkey: exit %d", code)
	}
}
