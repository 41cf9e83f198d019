package witnessing_test

// The FG's audit of a witnessed log (issue 20, "verifiers use the
// policy"): a real ledger whose covenant version 2 names three real
// witnesses, audited through every source (the running ledger, its store,
// its HTTP API with the FG's token), whose reports must be the same.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// auditAll audits f's log through the three sources and fails unless
// their reports are the same; it returns the running ledger's.
func (f *fixture) auditAll() *audit.Report {
	f.t.Helper()
	t := f.t
	fg := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: f.l, Tokens: map[[32]byte]httpapi.Principal{
		httpapi.TokenHash(testledger.FGToken): {Role: httpapi.RoleFG, Name: "fg"}}}))
	defer fg.Close()
	at := time.Now().UTC()
	sources := []struct {
		name string
		src  audit.Source
	}{
		{"ledger", f.l.AuditSource()},
		{"store", ledger.NewStoreAuditSource(f.store, nil)},
		// Small pages, so that the witnessed checkpoints come in several.
		{"http", &audit.HTTPSource{URL: fg.URL, Token: testledger.FGToken, PageSize: 7}},
	}
	var first *audit.Report
	var firstJSON []byte
	for _, s := range sources {
		rep, err := audit.Run(t.Context(), s.src, audit.Config{Keys: f.env.Keys, AdminVkey: f.env.Demo.AdminVkey,
			Now: func() time.Time { return at }})
		if err != nil {
			t.Fatalf("audit through the %s source: %v", s.name, err)
		}
		b, err := json.MarshalIndent(rep, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first, firstJSON = rep, b
			continue
		}
		if !bytes.Equal(b, firstJSON) {
			t.Fatalf("the %s source's report differs from the ledger's:\n%s\n---\n%s", s.name, b, firstJSON)
		}
	}
	return first
}

// TestAuditWitnessedLog: a clean witnessed log passes, every witnessed
// checkpoint meets the policy, the newest is named with its witnesses, and
// the entries logged while the quorum is away are the open stretch.
func TestAuditWitnessedLog(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{Timeout: 200 * time.Millisecond})
	for range 3 {
		f.grow(15)
		f.waitWitnessed()
	}
	w := f.l.WitnessedHead()
	// The quorum away: what is logged now is witnessed by nobody.
	f.ws[1].Stop()
	f.ws[2].Stop()
	f.grow(20)
	if got := f.l.WitnessedHead(); got.Size != w.Size {
		t.Fatalf("witnessed size %d with the quorum away", got.Size)
	}
	rep := f.auditAll()
	if !rep.OK {
		t.Fatalf("a clean witnessed log fails the audit: %v", rep.Problems)
	}
	wa := rep.Witnessing
	if wa == nil || !wa.Available {
		t.Fatalf("the report has no witnessing part: %+v", wa)
	}
	if wa.Checkpoints < 3 || wa.MetPolicy != wa.Checkpoints {
		t.Errorf("%d witnessed checkpoints, %d meet the policy", wa.Checkpoints, wa.MetPolicy)
	}
	if wa.PolicyFromLeaf == 0 || wa.SkewSeconds != int64(audit.DefaultWitnessSkew/time.Second) {
		t.Errorf("policy from leaf %d, skew %ds", wa.PolicyFromLeaf, wa.SkewSeconds)
	}
	if n := wa.Newest; n == nil || n.Size != w.Size || n.Seq != w.Seq || len(n.Witnesses) < 2 || n.LatestAt.Before(n.FirstAt) {
		t.Errorf("newest witnessed checkpoint %+v, want size %d seq %d with two witnesses", n, w.Size, w.Seq)
	}
	head := f.l.Head()
	if wa.Uncovered != head.Size-w.Size || wa.Uncovered < 20 {
		t.Errorf("%d entries not witnessed, want %d", wa.Uncovered, head.Size-w.Size)
	}
	if s := wa.LongestByEntries; s == nil || !s.Open || s.Entries != wa.Uncovered || s.FromLeaf != w.Size {
		t.Errorf("longest stretch in entries %+v, want the %d unwitnessed from leaf %d", s, wa.Uncovered, w.Size)
	}
	if s := wa.LongestByTime; s == nil || s.Seconds < 0 || s.Until.Before(s.Since) {
		t.Errorf("longest stretch in time %+v", s)
	}
	if !strings.Contains(rep.TimeNote, "witnesses") {
		t.Errorf("the time note does not say the witnesses bound the times: %q", rep.TimeNote)
	}
	var page bytes.Buffer
	if err := report.WriteAudit(&page, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Onafhankelijke getuigen", "Langste periode zonder getuigen", "nog niet getuigd", wa.Newest.Witnesses[0]} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the FG's page does not show %q", want)
		}
	}
}

// TestAuditWitnessedCheckpointBelowQuorum: a witnessed checkpoint stored
// with one cosignature where the policy wants two, or with a cosignature
// that does not verify, fails the witness-policy check at its number.
func TestAuditWitnessedCheckpointBelowQuorum(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(lines []string) []string
	}{
		{"one of two", func(lines []string) []string { return lines[:1] }},
		{"altered cosignature", func(lines []string) []string {
			// "— <name> <base64 of key hash, timestamp, signature>\n"
			i := strings.LastIndex(lines[0], " ")
			sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[0][i+1:]))
			if err != nil {
				panic(err)
			}
			sig[len(sig)-1] ^= 0x01
			bad := lines[0][:i+1] + base64.StdEncoding.EncodeToString(sig) + "\n"
			return append([]string{bad}, lines[1:]...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ledger.Config{}, witnessing.Config{})
			f.grow(10)
			w := f.waitWitnessed()
			// Storing it signed a new checkpoint of the same tree: the
			// witnesses' lines sign the tree, so they fit that one too.
			var lines []string
			for _, l := range strings.SplitAfter(string(w.Note), "\n") {
				if strings.HasPrefix(l, "— witness.example/") {
					lines = append(lines, l)
				}
			}
			if len(lines) < 2 {
				t.Fatalf("%d witness lines", len(lines))
			}
			h := f.l.Head()
			if h.Seq <= w.Seq || h.Size != w.Size {
				t.Fatalf("head %d/%d after witnessed %d/%d", h.Seq, h.Size, w.Seq, w.Size)
			}
			if err := f.l.PutWitnessed(t.Context(), h, []byte(strings.Join(tc.change(lines), ""))); err != nil {
				t.Fatal(err)
			}
			rep := f.auditAll()
			if rep.OK || rep.ProblemCounts[audit.CheckWitnessPolicy] != 1 {
				t.Fatalf("want one witness-policy problem, got %v", rep.Problems)
			}
			for _, p := range rep.Problems {
				if p.Check == audit.CheckWitnessPolicy && (p.Checkpoint == nil || *p.Checkpoint != h.Seq) {
					t.Errorf("%s: want checkpoint %d", p, h.Seq)
				}
			}
			if rep.Witnessing.MetPolicy != rep.Witnessing.Checkpoints-1 {
				t.Errorf("%d of %d meet the policy", rep.Witnessing.MetPolicy, rep.Witnessing.Checkpoints)
			}
		})
	}
}

// TestAuditIntegratedAtAgainstWitnesses: a ledger whose clock runs an hour
// behind (an operator backdating its entries) logs entries "before" the
// witnesses saw a tree without them; one an hour ahead logs entries "after"
// the witnesses saw a tree with them. The audit names both; the skew
// absorbs ordinary differences (the clean log of TestAuditWitnessedLog).
func TestAuditIntegratedAtAgainstWitnesses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset time.Duration
		want   string
	}{
		{"backdated", -time.Hour, "without leaf"},
		{"postdated", time.Hour, "first witnessed one that includes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ledger.Config{Now: func() time.Time { return time.Now().Add(tc.offset) }}, witnessing.Config{})
			// The covenant entries, witnessed as the log's first tree.
			first := f.waitWitnessed()
			f.grow(10)
			f.waitWitnessed()
			f.grow(10)
			f.waitWitnessed()
			rep := f.auditAll()
			if rep.OK || rep.ProblemCounts[audit.CheckWitnessedTime] == 0 {
				t.Fatalf("want witnessed-time problems, got %v", rep.Problems)
			}
			for _, p := range rep.Problems {
				if p.Check != audit.CheckWitnessedTime {
					t.Errorf("unexpected problem %s", p)
					continue
				}
				if !strings.Contains(p.Message, tc.want) {
					t.Errorf("%s: want a message with %q", p, tc.want)
				}
				if tc.offset < 0 && *p.Leaf < first.Size {
					t.Errorf("%s: leaf %d was in the first witnessed tree; nothing excluded it", p, *p.Leaf)
				}
			}
		})
	}
}
