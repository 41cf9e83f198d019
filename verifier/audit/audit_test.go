package audit_test

// The audit engine on logs built in memory from real parts: the demo
// covenant with fresh keys, events signed with the parties' Ed25519 keys,
// leaf records and a Merkle tree as the ledger makes them, checkpoints
// signed and cosigned by a real log key. The same engine runs on a real
// ledger in Pebble in ledger/auditsource_test.go (not here: this package's
// tests may not depend on Pebble, see arch_test.go).

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// memLog is a log held in memory, built the way the ledger builds one. It
// is an audit.Source; withTiles adds the tile reads.
type memLog struct {
	t       testing.TB
	m       *demo.Material
	signer  *verifier.CheckpointSigner
	keys    *verifier.LogKeys
	origin  string
	entries []*audit.Entry // nil where a leaf record was deleted
	hashes  [][]byte
	cps     []audit.StoredCheckpoint
	rng     *compact.Range
	last    time.Time
	covIdx  uint64
	gen     *synth.Generator
	rnd     *rand.Rand
	bsns    []string
	pseuds  []string
}

func newMemLog(t testing.TB) *memLog {
	t.Helper()
	m, err := demo.Ensure(filepath.Join(t.TempDir(), "demo-keys"), "amersfoort")
	if err != nil {
		t.Fatalf("demo covenant: %v", err)
	}
	origin := m.Signed.Covenant.Origin
	ls, lv, cs, cv, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verifier.NewCheckpointSigner(ls, cs)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 7, 150)
	if err != nil {
		t.Fatal(err)
	}
	l := &memLog{t: t, m: m, signer: signer, keys: keys, origin: origin, gen: gen,
		rng: (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0),
		rnd: rand.New(rand.NewPCG(11, 12))}
	for _, c := range gen.Children() {
		l.bsns = append(l.bsns, c.BSN)
		l.pseuds = append(l.pseuds, c.Pseudonym)
	}
	l.last = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	l.add(verifier.LeafRecord{Type: verifier.EntryCovenant, IntegratedAt: l.last}, m.Signed.Envelope.Raw, nil)
	l.checkpoint()
	return l
}

// add appends one leaf with its body and stored findings.
func (l *memLog) add(rec verifier.LeafRecord, body []byte, findings []events.Finding) uint64 {
	l.t.Helper()
	idx := uint64(len(l.entries))
	if rec.Type != verifier.EntryCovenant || idx > 0 {
		rec.CovenantIndex = l.covIdx
	}
	rec.BodyHash = sha256.Sum256(body)
	b, err := rec.MarshalBinary()
	if err != nil {
		l.t.Fatal(err)
	}
	h := verifier.LeafHash(b)
	if err := l.rng.Append(h[:], nil); err != nil {
		l.t.Fatal(err)
	}
	l.hashes = append(l.hashes, h[:])
	l.entries = append(l.entries, &audit.Entry{Index: idx, LeafRecord: b, Body: body, Findings: findings})
	return idx
}

// disclose signs d with its discloser's demo key and logs it at
// integratedAt (kept monotonic), with the findings the ledger stores.
func (l *memLog) disclose(d *events.Disclosure, integratedAt time.Time) uint64 {
	l.t.Helper()
	k := l.m.Parties[d.Discloser]
	if k == nil {
		l.t.Fatalf("no demo key for %s", d.Discloser)
	}
	events.Seal(d, k)
	env, err := events.Sign(d, k)
	if err != nil {
		l.t.Fatalf("sign: %v", err)
	}
	integratedAt = integratedAt.UTC().Truncate(time.Millisecond)
	if integratedAt.Before(l.last) {
		integratedAt = l.last
	}
	l.last = integratedAt
	cov := l.m.Signed.Covenant
	findings := append(cov.Check(d), cov.CheckRecording(d, integratedAt)...)
	return l.add(verifier.LeafRecord{Type: verifier.EntryDisclosure, IntegratedAt: integratedAt}, env, findings)
}

// event returns a synthetic disclosure that occurred at t (and, if party
// is not empty, was made by that party).
func (l *memLog) event(t time.Time, party string) *events.Disclosure {
	for {
		d, _ := l.gen.Next()
		if party == "" || d.Discloser == party {
			d.OccurredAt = t.UTC().Truncate(time.Second)
			return d
		}
	}
}

func (l *memLog) checkpoint() {
	l.t.Helper()
	var root [32]byte
	h, err := l.rng.GetRootHash(nil)
	if err != nil {
		l.t.Fatal(err)
	}
	copy(root[:], h)
	note, err := l.signer.Sign(l.origin, l.rng.End(), root)
	if err != nil {
		l.t.Fatal(err)
	}
	l.cps = append(l.cps, audit.StoredCheckpoint{Seq: uint64(len(l.cps) + 1), Note: note})
}

// fill logs n ordinary events a day for days days from the log's start,
// with a checkpoint after each day.
func (l *memLog) fill(days, n int) {
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for day := range days {
		for range n {
			at := start.AddDate(0, 0, day).Add(7*time.Hour + time.Duration(l.rnd.IntN(10*3600))*time.Second)
			d := l.event(at, "")
			l.disclose(d, at.Add(time.Duration(1+l.rnd.IntN(30))*time.Minute))
		}
		l.checkpoint()
	}
}

func (l *memLog) Checkpoints(context.Context) ([]audit.StoredCheckpoint, error) {
	return slices.Clone(l.cps), nil
}

func (l *memLog) Entries(ctx context.Context, from, to uint64, fn func(*audit.Entry) error) error {
	for i := from; i < to && i < uint64(len(l.entries)); i++ {
		if e := l.entries[i]; e != nil {
			c := *e
			if err := fn(&c); err != nil {
				return err
			}
		}
	}
	return nil
}

// withTiles is a memLog that also serves its level-0 tiles.
type withTiles struct{ *memLog }

func (w withTiles) LeafTile(_ context.Context, n uint64, width int) ([]byte, error) {
	var out []byte
	for i := n * verifier.TileWidth; i < n*verifier.TileWidth+uint64(width) && i < uint64(len(w.hashes)); i++ {
		out = append(out, w.hashes[i]...)
	}
	return out, nil
}

func (l *memLog) audit(t *testing.T, src audit.Source) *audit.Report {
	t.Helper()
	var calls int
	var lastDone, lastTotal uint64
	rep, err := audit.Run(context.Background(), src, audit.Config{
		Keys: l.keys, AdminVkey: l.m.AdminVkey,
		Progress: func(done, total uint64) { calls++; lastDone, lastTotal = done, total },
	})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	if calls == 0 || lastDone != lastTotal || lastTotal != rep.TreeSize {
		t.Errorf("progress: %d calls, last %d/%d, tree size %d", calls, lastDone, lastTotal, rep.TreeSize)
	}
	l.checkNoPersonalData(t, rep)
	return rep
}

// checkNoPersonalData fails if the report, as JSON, holds a BSN, a
// pseudonym or a staff id.
func (l *memLog) checkNoPersonalData(t *testing.T, rep *audit.Report) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := range l.bsns {
		if strings.Contains(s, l.bsns[i]) || strings.Contains(s, l.pseuds[i]) {
			t.Fatalf("the report holds a BSN or pseudonym of child %d", i)
		}
	}
	if staffIDRE.MatchString(s) {
		t.Fatal("the report holds a staff id")
	}
}

// staffIDRE matches the staff ids the tests use.
var staffIDRE = regexp.MustCompile(`medewerker-([0-9]{4}|burst)`)

func problemsOf(rep *audit.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestAuditCleanLog(t *testing.T) {
	l := newMemLog(t)
	l.fill(3, 86)  // 259 leaves: a full tile and a partial one
	l.checkpoint() // an idle re-cosign: same size, same root
	for _, src := range []audit.Source{l, withTiles{l}} {
		rep := l.audit(t, src)
		if !rep.OK || len(rep.Problems) != 0 {
			t.Fatalf("clean log: problems %q", problemsOf(rep))
		}
		if rep.TreeSize != 259 || rep.Checkpoints.Count != 5 || rep.Checkpoints.Verified != 5 {
			t.Errorf("tree size %d, checkpoints %+v", rep.TreeSize, rep.Checkpoints)
		}
		if rep.Entries.Disclosures != 258 || rep.Entries.Covenants != 1 || rep.Entries.Unreadable != 0 {
			t.Errorf("entries %+v", rep.Entries)
		}
		if len(rep.Covenants) != 1 || rep.Covenants[0].Version != 1 || rep.Covenants[0].Leaf != 0 {
			t.Errorf("covenants %+v", rep.Covenants)
		}
		if !rep.AdminPinned || rep.AdminKey != verifier.KeyFingerprint(l.m.AdminVkey) {
			t.Errorf("admin key %q pinned %v", rep.AdminKey, rep.AdminPinned)
		}
		disclosed, purposes := 0, 0
		for _, p := range rep.ByParty {
			disclosed += p.Disclosed
			if p.Name == "" || p.Name == p.Party {
				t.Errorf("party %s has no name", p.Party)
			}
		}
		for _, p := range rep.ByPurpose {
			purposes += p.Count
		}
		if disclosed != 258 || purposes != 258 {
			t.Errorf("by party %d, by purpose %d, want 258", disclosed, purposes)
		}
		if len(rep.ByRule) != len(events.FindingRules()) {
			t.Errorf("by rule lists %d rules", len(rep.ByRule))
		}
		if len(rep.Anomalies.Definitions) != 5 {
			t.Errorf("%d anomaly definitions", len(rep.Anomalies.Definitions))
		}
	}
}

func TestAuditAlteredEnvelope(t *testing.T) {
	l := newMemLog(t)
	l.fill(2, 50)
	const victim = 37
	body := l.entries[victim].Body
	body[len(body)/2] ^= 0x01
	rep := l.audit(t, l)
	if rep.OK || len(rep.Problems) != 1 {
		t.Fatalf("want one problem, got %q", problemsOf(rep))
	}
	p := rep.Problems[0]
	if p.Check != "body-hash" || p.Leaf == nil || *p.Leaf != victim || !strings.Contains(p.Message, "leaf 37") {
		t.Errorf("problem %q does not name leaf %d", p.String(), victim)
	}
}

func TestAuditDeletedLeafRecord(t *testing.T) {
	l := newMemLog(t)
	l.fill(3, 86)
	const victim = 120
	l.entries[victim] = nil

	// With tiles the missing leaf's hash is still known: the checkpoints
	// all verify, and the one problem names the leaf.
	rep := l.audit(t, withTiles{l})
	if len(rep.Problems) != 1 || rep.Problems[0].Check != "leaf-missing" || *rep.Problems[0].Leaf != victim {
		t.Fatalf("with tiles: problems %q", problemsOf(rep))
	}
	// Without, the leaf is named and the later checkpoints cannot be met.
	rep = l.audit(t, l)
	if rep.OK || rep.Problems[0].Check != "leaf-missing" || *rep.Problems[0].Leaf != victim {
		t.Fatalf("without tiles: problems %q", problemsOf(rep))
	}
	if rep.ProblemCounts["checkpoint-root"] != 1 {
		t.Errorf("without tiles: problems %q", problemsOf(rep))
	}
}

func TestAuditAlteredLeafRecord(t *testing.T) {
	l := newMemLog(t)
	l.fill(3, 30)
	const victim = 42
	rec := l.entries[victim].LeafRecord
	rec[10] ^= 0x01 // a bit of the body hash
	rep := l.audit(t, withTiles{l})
	if rep.ProblemCounts["leaf-tile"] != 1 || rep.Problems[0].Check != "leaf-tile" || *rep.Problems[0].Leaf != victim {
		t.Fatalf("problems %q", problemsOf(rep))
	}
	// The body no longer matches the record, and every checkpoint from
	// the victim on (sizes 61 and 91) has another root.
	if rep.ProblemCounts["checkpoint-root"] != 2 || rep.ProblemCounts["body-hash"] != 1 || len(rep.Problems) != 4 {
		t.Errorf("problems %q", problemsOf(rep))
	}
}

func TestAuditCheckpointSignedByAnotherKey(t *testing.T) {
	l := newMemLog(t)
	l.fill(2, 20)
	ls, _, cs, _, err := verifier.GenerateLogKeys(l.origin)
	if err != nil {
		t.Fatal(err)
	}
	other, err := verifier.NewCheckpointSigner(ls, cs)
	if err != nil {
		t.Fatal(err)
	}
	var root [32]byte
	h, _ := l.rng.GetRootHash(nil)
	copy(root[:], h)
	note, err := other.Sign(l.origin, l.rng.End(), root)
	if err != nil {
		t.Fatal(err)
	}
	l.cps[1].Note = note
	rep := l.audit(t, l)
	if len(rep.Problems) != 1 || rep.Problems[0].Check != "checkpoint-signature" || *rep.Problems[0].Checkpoint != 2 {
		t.Fatalf("problems %q", problemsOf(rep))
	}
	if rep.Checkpoints.Verified != 2 || rep.Checkpoints.Count != 3 {
		t.Errorf("checkpoints %+v", rep.Checkpoints)
	}
}

func TestAuditForkAndRollbackOfCheckpoints(t *testing.T) {
	l := newMemLog(t)
	l.fill(2, 20)
	// A checkpoint of the same size with another root, and a smaller one
	// after the largest: both signed with the real key.
	var bogus [32]byte
	bogus[0] = 1
	fork, _ := l.signer.Sign(l.origin, l.rng.End(), bogus)
	back, _ := l.signer.Sign(l.origin, 5, bogus)
	l.cps = append(l.cps, audit.StoredCheckpoint{Seq: 4, Note: fork}, audit.StoredCheckpoint{Seq: 6, Note: back})
	rep := l.audit(t, l)
	for check, n := range map[audit.Check]int{"checkpoint-consistency": 2, "checkpoint-root": 2, "checkpoint-sequence": 1} {
		if rep.ProblemCounts[check] != n {
			t.Errorf("%s: %d problems, want %d; all: %q", check, rep.ProblemCounts[check], n, problemsOf(rep))
		}
	}
}

func TestAuditStoredFindingsAndSignatures(t *testing.T) {
	l := newMemLog(t)
	l.fill(1, 10)
	// A disclosure that breaks a rule, whose stored findings were dropped.
	d := l.event(time.Date(2026, 1, 6, 9, 0, 0, 0, time.UTC), "")
	d.Recipients = append(d.Recipients, "gemeente-elders")
	hidden := l.disclose(d, time.Date(2026, 1, 6, 9, 5, 0, 0, time.UTC))
	if len(l.entries[hidden].Findings) == 0 {
		t.Fatal("the planted disclosure has no findings")
	}
	l.entries[hidden].Findings = nil
	// A disclosure signed by another party's key: its leaf record and
	// hash are right, its signature is not by the discloser's key.
	d2 := l.event(time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC), "gemeente-amersfoort")
	k := l.m.Parties["gemeente-baarn"]
	events.Seal(d2, l.m.Parties["gemeente-amersfoort"])
	payload, err := d2.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	forged := events.SignEnvelope(events.PayloadType, payload, k.Private)
	at := time.Date(2026, 1, 6, 10, 1, 0, 0, time.UTC)
	forgedIdx := l.add(verifier.LeafRecord{Type: verifier.EntryDisclosure, IntegratedAt: at}, forged, nil)
	l.checkpoint()

	rep := l.audit(t, l)
	if rep.ProblemCounts["findings"] != 1 || rep.ProblemCounts["signature"] != 1 || len(rep.Problems) != 2 {
		t.Fatalf("problems %q", problemsOf(rep))
	}
	for _, p := range rep.Problems {
		want := map[audit.Check]uint64{"findings": hidden, "signature": forgedIdx}[p.Check]
		if *p.Leaf != want {
			t.Errorf("%s names leaf %d, want %d", p.Check, *p.Leaf, want)
		}
	}
	if rep.Anomalies.OutsideRecipientsCount != 1 || rep.Anomalies.OutsideRecipients[0].Leaf != hidden ||
		rep.Anomalies.OutsideRecipients[0].Recipient != verifier.UnknownValueNL("gemeente-elders") {
		// Never the id the discloser typed.
		t.Errorf("outside recipients %+v", rep.Anomalies.OutsideRecipients)
	}
}

// TestAuditStatistics runs the statistics on 32 days of synthetic traffic
// with a planted burst by one party and one of its staff, a late
// recording and a recipient outside the covenant.
func TestAuditStatistics(t *testing.T) {
	l := newMemLog(t)
	const party = "gemeente-amersfoort"
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	const days, burstDay = 32, 30 // the burst day has a full 28-day window
	var staff string
	for day := range days {
		dayStart := start.AddDate(0, 0, day)
		for range 16 {
			at := dayStart.Add(7*time.Hour + time.Duration(l.rnd.IntN(10*3600))*time.Second)
			l.disclose(l.event(at, ""), at.Add(10*time.Minute))
		}
		// The burst's actor works every day, one or two disclosures...
		n := 1 + day%2
		if day == burstDay {
			n = 40 // ... and on one day forty.
		}
		for i := range n {
			at := dayStart.Add(16*time.Hour + time.Duration(i)*time.Minute)
			d := l.event(at, party)
			d.Actor.StaffID = "medewerker-burst"
			staff = d.Actor.StaffID
			l.disclose(d, at.Add(5*time.Minute))
		}
		l.checkpoint()
	}
	// Recorded 100 hours after it occurred (the covenant allows 72).
	late := l.event(start.AddDate(0, 0, days).Add(8*time.Hour), "")
	lateIdx := l.disclose(late, late.OccurredAt.Add(100*time.Hour))
	l.checkpoint()

	rep := l.audit(t, withTiles{l})
	if !rep.OK {
		t.Fatalf("problems %q", problemsOf(rep))
	}
	actor := audit.ActorRef(party, staff)
	burst := start.AddDate(0, 0, burstDay).Format(time.DateOnly)
	var sawParty, sawActor bool
	for _, v := range rep.Anomalies.Volume {
		t.Logf("volume anomaly: %+v", v)
		switch {
		case v.Kind == audit.AnomalyVolumeParty && v.Party == party && v.Day == burst:
			sawParty = true
			if v.Count < 40 || float64(v.Count) <= v.Threshold || v.HistoryDays != audit.VolumeWindowDays {
				t.Errorf("party anomaly %+v", v)
			}
		case v.Kind == audit.AnomalyVolumeActor && v.Party == party && v.Actor == actor && v.Day == burst:
			sawActor = true
			if v.Count != 40 || v.Median < 1 || v.Median > 2 {
				t.Errorf("actor anomaly %+v", v)
			}
		default:
			t.Errorf("unexpected volume anomaly %+v", v)
		}
	}
	if !sawParty || !sawActor {
		t.Errorf("the planted burst was not found: party %v, actor %v", sawParty, sawActor)
	}

	// Late recordings: the planted one, plus any the generator made.
	found := false
	for _, lr := range rep.Anomalies.RecordedLate {
		if lr.Leaf == lateIdx {
			found = lr.Hours == 100 && lr.AllowedHours == 72
		}
	}
	if !found {
		t.Errorf("late recording of leaf %d not listed: %+v", lateIdx, rep.Anomalies.RecordedLate)
	}
	ruleCount := map[string]int{}
	for _, r := range rep.ByRule {
		ruleCount[r.Rule] = r.Count
	}
	if rep.Anomalies.RecordedLateCount != ruleCount[events.RuleRecordedLate] {
		t.Errorf("%d late recordings, but the rule counts %d", rep.Anomalies.RecordedLateCount, ruleCount[events.RuleRecordedLate])
	}

	// Special categories per party add up to the category counts.
	special := map[string]int{}
	for _, sp := range rep.Anomalies.SpecialCategories {
		for c, n := range sp.Categories {
			special[c] += n
		}
		if sp.Share < 0 || sp.Share > 1 {
			t.Errorf("share %v for %s", sp.Share, sp.Party)
		}
	}
	for _, c := range rep.ByCategory {
		if c.Special != "" && special[c.ID] != c.Count {
			t.Errorf("special category %s: %d per party, %d in total", c.ID, special[c.ID], c.Count)
		}
		if c.Label == c.ID {
			t.Errorf("category %s has no Dutch label", c.ID)
		}
	}
}

func TestAuditWrongPinnedKeys(t *testing.T) {
	l := newMemLog(t)
	l.fill(1, 5)
	_, lv, _, cv, err := verifier.GenerateLogKeys(l.origin)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Run(context.Background(), l, audit.Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	// Two checkpoints that do not verify, and the summary that none does.
	if rep.OK || rep.Checkpoints.Verified != 0 || rep.ProblemCounts["checkpoint-signature"] != 3 {
		t.Fatalf("problems %q", problemsOf(rep))
	}
	// A pinned administrator key that is not the covenant's.
	_, otherV, err := events.GenerateAdminKey("other-admin")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = audit.Run(context.Background(), l, audit.Config{Keys: l.keys, AdminVkey: otherV})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.ProblemCounts["covenant"] < 1 || !strings.Contains(problemsOf(rep)[0], "leaf 0") {
		t.Fatalf("problems %q", problemsOf(rep))
	}
}

// covenantV2 logs covenant version 2, in which party's key is revoked, and
// makes later leaves name it.
func (l *memLog) covenantV2(party string) uint64 {
	l.t.Helper()
	v1 := l.m.Signed
	keyLine := `- public_key: "` + base64.StdEncoding.EncodeToString(l.m.Parties[party].Public()) + "\"\n        valid_from: 2023-05-25T00:00:00Z\n"
	y := string(v1.Envelope.Payload)
	if !strings.Contains(y, keyLine) || !strings.Contains(y, "\nversion: 1\n") {
		l.t.Fatalf("the demo covenant template changed; cannot make version 2")
	}
	y = strings.Replace(y, keyLine, keyLine+"        revoked: true\n        revoked_reason: \"Laptop gestolen (testgeval)\"\n", 1)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+v1.Hash()+"\"\n", 1)
	signed, err := events.SignCovenant([]byte(y), l.m.AdminSkey)
	if err != nil {
		l.t.Fatalf("covenant v2: %v", err)
	}
	idx := l.add(verifier.LeafRecord{Type: verifier.EntryCovenant, IntegratedAt: l.last}, signed, nil)
	l.covIdx = idx
	return idx
}

// TestAuditParallelMatchesOneWorker audits a log with a covenant rotation
// (a key revoked half-way, so that the same party's later disclosures fail)
// and planted damage of every kind the entries can show, once on one
// goroutine and then with several workers: the reports must be identical.
func TestAuditParallelMatchesOneWorker(t *testing.T) {
	l := newMemLog(t)
	const revoked = "gemeente-baarn"
	l.fill(3, 60)
	l.covenantV2(revoked)
	l.checkpoint()
	start := time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)
	var byRevoked []uint64
	for day := range 3 {
		for i := range 60 {
			at := start.AddDate(0, 0, day).Add(7*time.Hour + time.Duration(i)*7*time.Minute)
			party := ""
			if i%10 == 0 {
				party = revoked
			}
			idx := l.disclose(l.event(at, party), at.Add(3*time.Minute))
			if party != "" {
				byRevoked = append(byRevoked, idx)
			}
		}
		l.checkpoint()
	}
	if len(byRevoked) == 0 {
		t.Fatal("no disclosures by the revoked key")
	}
	// Damage: an altered envelope, a deleted and an altered leaf record,
	// dropped findings, and an envelope logged twice.
	l.entries[20].Body[len(l.entries[20].Body)/2] ^= 1
	l.entries[95] = nil
	l.entries[150].LeafRecord[12] ^= 1
	for i := 200; i < len(l.entries); i++ {
		if e := l.entries[i]; e != nil && len(e.Findings) > 0 {
			e.Findings = nil
			break
		}
	}
	l.add(verifier.LeafRecord{Type: verifier.EntryDisclosure, IntegratedAt: l.last}, slices.Clone(l.entries[210].Body), l.entries[210].Findings)
	l.checkpoint()

	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	run := func(workers int) *audit.Report {
		rep, err := audit.Run(context.Background(), withTiles{l}, audit.Config{
			Keys: l.keys, AdminVkey: l.m.AdminVkey, Workers: workers, Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatalf("Audit with %d workers: %v", workers, err)
		}
		return rep
	}
	one := run(1)
	for _, check := range []audit.Check{"signature", "body-hash", "leaf-missing", "leaf-tile", "findings", "event-id"} {
		if one.ProblemCounts[check] == 0 {
			t.Errorf("the one-worker audit found no %s problem: %q", check, problemsOf(one))
		}
	}
	// At least the ones planted; the synthetic traffic picks the party too.
	if one.ProblemCounts["signature"] < len(byRevoked) || len(one.Covenants) != 2 {
		t.Errorf("%d signature problems for %d disclosures by the revoked key; %d covenant versions", one.ProblemCounts["signature"], len(byRevoked), len(one.Covenants))
	}
	want, _ := json.Marshal(one)
	for _, workers := range []int{2, 5} {
		got, _ := json.Marshal(run(workers))
		if string(got) != string(want) {
			t.Errorf("the audit with %d workers differs from the one-worker audit:\n got  %s\n want %s", workers, got, want)
		}
	}
}

// TestAuditParallelCancelled stops a parallel audit half-way: it returns
// the context's error, not a report, and does not hang.
func TestAuditParallelCancelled(t *testing.T) {
	l := newMemLog(t)
	l.fill(1, 1100) // progress is reported every 1024 entries
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := audit.Run(ctx, l, audit.Config{
		Keys: l.keys, AdminVkey: l.m.AdminVkey, Workers: 3,
		Progress: func(done, _ uint64) {
			if done > 0 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("cancelled audit: report %v, error %v", rep != nil, err)
	}
}

// TestAuditRefusesNewerEntryType: a log holding an entry of a type newer
// than this version reads (type 6) is refused with a message that names
// the leaf and the type and says to upgrade, rather than audited as if the
// entry were merely damaged.
func TestAuditRefusesNewerEntryType(t *testing.T) {
	l := newMemLog(t)
	l.fill(1, 20)
	rec, err := (&verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: sha256.Sum256([]byte("future")),
		IntegratedAt: l.last, CovenantIndex: l.covIdx}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rec[1] = byte(verifier.LatestEntryType) + 1
	idx := uint64(len(l.entries))
	h := verifier.LeafHash(rec)
	if err := l.rng.Append(h[:], nil); err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, h[:])
	l.entries = append(l.entries, &audit.Entry{Index: idx, LeafRecord: rec, Body: []byte("future")})
	l.fill(1, 5)

	for _, workers := range []int{1, 4} {
		_, err := audit.Run(context.Background(), l, audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey, Workers: workers})
		var newer *verifier.UnknownEntryTypeError
		if !errors.As(err, &newer) || newer.Type != 6 {
			t.Fatalf("workers %d: the audit of a log with an entry of type 6: %v; want it refused as a newer type", workers, err)
		}
		for _, want := range []string{fmt.Sprintf("leaf %d", idx), "entry type 6", "upgrade spoor"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("workers %d: the refusal does not say %q: %v", workers, want, err)
			}
		}
	}
}

// TestAuditAnswerTombstones: an answer entry's body is erased under
// verifier.AnswerRetentionRule once the covenant's answer retention has
// passed, and the audit accepts that; it refuses the rule before the term,
// on a disclosure, and another rule on an answer.
func TestAuditAnswerTombstones(t *testing.T) {
	days := 0
	for name, c := range map[string]struct {
		rule   string
		after  func() time.Duration
		target string // "answer" or "disclosure"
		want   audit.Check
	}{
		"after the term":            {verifier.AnswerRetentionRule, func() time.Duration { return time.Duration(days+1) * 24 * time.Hour }, "answer", ""},
		"before the term":           {verifier.AnswerRetentionRule, func() time.Duration { return 10 * 24 * time.Hour }, "answer", audit.CheckTombstoneEarly},
		"another rule on an answer": {"retention:default", func() time.Duration { return time.Duration(days+1) * 24 * time.Hour }, "answer", audit.CheckTombstone},
		"answer rule on disclosure": {verifier.AnswerRetentionRule, func() time.Duration { return time.Duration(days+1) * 24 * time.Hour }, "disclosure", audit.CheckTombstone},
	} {
		t.Run(name, func(t *testing.T) {
			l := newMemLog(t)
			days = l.m.Signed.Covenant.AnswerRetentionDays()
			l.fill(1, 5)
			var target uint64
			if c.target == "answer" {
				target = l.add(verifier.LeafRecord{Type: verifier.EntryAnswer, IntegratedAt: l.last}, []byte("an answer body, erased since"), nil)
			} else {
				target = l.disclose(l.event(l.last, ""), l.last)
			}
			at := l.last.Add(c.after())
			l.last = at
			rec := verifier.LeafRecord{Type: verifier.EntryTombstone, IntegratedAt: at, ErasedIndex: target, RuleID: c.rule}
			lh := verifier.LeafHash(l.entries[target].LeafRecord)
			body, err := json.Marshal(verifier.TombstoneBody{Schema: verifier.TombstoneSchema, Origin: l.origin, ErasedIndex: target,
				ErasedLeafHash: hexString(lh[:]), RuleID: c.rule, CovenantVersion: l.m.Signed.Covenant.Version})
			if err != nil {
				t.Fatal(err)
			}
			l.entries[target].Body = nil
			l.add(rec, body, nil)
			l.checkpoint()
			rep, err := audit.Run(context.Background(), l, audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey, Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			// The disclosures of fill are overdue years later: not what
			// this test is about.
			var got []audit.Check
			for _, p := range rep.Problems {
				if p.Check != audit.CheckRetentionOverdue {
					got = append(got, p.Check)
				}
			}
			switch {
			case c.want == "" && len(got) > 0:
				t.Fatalf("problems %q; want none", problemsOf(rep))
			case c.want != "" && !slices.Contains(got, c.want):
				t.Fatalf("problems %q; want a %s problem", problemsOf(rep), c.want)
			}
			if c.target == "answer" && rep.Entries.AnswersErased != 1 {
				t.Errorf("erased answers counted %d, want 1", rep.Entries.AnswersErased)
			}
		})
	}
}

func hexString(b []byte) string { return fmt.Sprintf("%x", b) }
