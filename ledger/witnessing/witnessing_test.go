package witnessing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
	"github.com/spoor-ledger/spoor/witness"
)

// fixture is a real ledger (Pebble) whose covenant version 2 names three
// real Spoor witnesses on loopback, 2 of 3 required, and a Witnesser
// running beside it.
type fixture struct {
	t     *testing.T
	env   *testledger.Env
	l     *ledger.Ledger
	store *pebblestore.Store
	ws    []*witnesstest.Witness
	wit   *witnessing.Witnesser
	api   *httptest.Server
}

func newFixture(t *testing.T, cfg ledger.Config, wcfg witnessing.Config) *fixture {
	t.Helper()
	env := testledger.New(t)
	logCfg := witness.LogConfig{Origin: env.Keys.Log.Name(), VKey: env.LogVkey}
	var ws []*witnesstest.Witness
	for _, name := range []string{"fg-a", "fg-b", "fg-c"} {
		ws = append(ws, witnesstest.Start(t, name, logCfg))
	}
	// Version 1 first, as a log starts; the policy comes with version 2.
	l1, s1 := env.Open(t, ledger.Config{IdleCosign: -1, Now: cfg.Now})
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	cfg.IdleCosign = -1
	cfg.Covenant = env.CovenantWithPolicy(t, witnesstest.Policy(env.LogVkey, 2, ws...))
	l, s := env.Open(t, cfg)
	t.Cleanup(func() { l.Close(); s.Close() })
	if p, err := l.WitnessPolicy(); p == nil || err != nil {
		t.Fatalf("the covenant in force has no witness policy (%v)", err)
	}
	wcfg.Ledger = l
	if wcfg.Interval == 0 {
		wcfg.Interval = 5 * time.Millisecond
	}
	wit, err := witnessing.New(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	api := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Witnessing: wit.Health,
		Answers: answer.New(answer.Config{Ledger: l})}))
	t.Cleanup(api.Close)
	return &fixture{t: t, env: env, l: l, store: s, ws: ws, wit: wit, api: api}
}

// grow logs n more events.
func (f *fixture) grow(n int) {
	f.t.Helper()
	if _, err := f.env.SubmitEvents(f.t, f.l, n); err != nil {
		f.t.Fatal(err)
	}
}

// waitWitnessed waits until the witnessed head has the signed head's size.
func (f *fixture) waitWitnessed() *ledger.Head {
	f.t.Helper()
	for {
		h, w := f.l.Head(), f.l.WitnessedHead()
		if w != nil && w.Size == h.Size {
			return w
		}
		select {
		case <-f.l.Committed():
		case <-time.After(5 * time.Millisecond):
		}
		if f.t.Context().Err() != nil {
			f.t.Fatal("test ended while waiting")
		}
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (f *fixture) get(path string) (int, http.Header, string) {
	f.t.Helper()
	resp, err := http.Get(f.api.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestWitnessedHeadMeetsPolicy: the published head reaches the witnesses,
// their cosignatures meet the covenant's policy when checked by the
// verifier, /checkpoint serves the witnessed checkpoint, and the witnessed
// head survives a restart of the ledger.
func TestWitnessedHeadMeetsPolicy(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{})
	f.grow(20)
	w := f.waitWitnessed()
	cp, err := verifier.OpenCheckpoint(w.Note, f.env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := f.l.WitnessPolicy()
	res, err := verifier.CheckWitnessPolicy(cp, policy)
	if err != nil {
		t.Fatalf("the witnessed head does not meet the policy: %v", err)
	}
	if len(res.Cosigned) < 2 {
		t.Fatalf("%d cosignatures, want at least 2", len(res.Cosigned))
	}
	status, hdr, body := f.get("/checkpoint")
	if status != http.StatusOK || hdr.Get(httpapi.WitnessedHeader) != "true" {
		t.Fatalf("/checkpoint: %d %s=%q", status, httpapi.WitnessedHeader, hdr.Get(httpapi.WitnessedHeader))
	}
	if _, err := verifier.CheckWitnessPolicy(mustOpen(t, []byte(body), f.env.Keys), policy); err != nil {
		t.Fatalf("/checkpoint's checkpoint does not meet the policy: %v", err)
	}
	if err := f.wit.Health(); err != nil {
		t.Fatalf("Health: %v", err)
	}
}

func mustOpen(t *testing.T, n []byte, keys *verifier.LogKeys) *verifier.Checkpoint {
	t.Helper()
	cp, err := verifier.OpenCheckpoint(n, keys)
	if err != nil {
		t.Fatalf("%v\n%s", err, n)
	}
	return cp
}

// TestWitnessesAway: with one of three witnesses down the quorum of two is
// still met; with two down nothing new is witnessed, ingest goes on, the
// inzage answer waits (ErrNotWitnessed), and health is degraded after
// MaxAge; once they return everything catches up.
func TestWitnessesAway(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{MaxAge: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	f.grow(10)
	f.waitWitnessed()

	f.ws[0].Stop()
	f.grow(10)
	w := f.waitWitnessed()
	policy, _ := f.l.WitnessPolicy()
	if _, err := verifier.CheckWitnessPolicy(mustOpen(t, w.Note, f.env.Keys), policy); err != nil {
		t.Fatalf("1 of 3 down: %v", err)
	}

	f.ws[1].Stop()
	before := f.l.WitnessedHead()
	outs, err := f.env.SubmitEvents(t, f.l, 10)
	if err != nil {
		t.Fatal(err)
	}
	if f.l.Head().Size <= before.Size {
		t.Fatal("ingest stopped with two witnesses down")
	}
	waitFor(t, "degraded health", func() bool { return errors.Is(f.wit.Health(), witnessing.ErrDegraded) })
	if got := f.l.WitnessedHead(); got.Size != before.Size {
		t.Fatalf("a checkpoint of size %d was witnessed with two of three witnesses down", got.Size)
	}
	_, _, body := f.get("/healthz")
	if !strings.Contains(body, `"degraded"`) {
		t.Fatalf("/healthz does not say degraded:\n%s", body)
	}
	// An answer about the child of the newest event waits for witnesses.
	last := outs[len(outs)-1].Index
	if _, _, err := f.l.HeadCovering(last); !errors.Is(err, ledger.ErrNotWitnessed) {
		t.Fatalf("HeadCovering(%d) with the quorum away: %v, want ErrNotWitnessed", last, err)
	}
	status, hdr, _ := f.get("/checkpoint")
	if status != http.StatusOK || hdr.Get(httpapi.WitnessedHeader) != "true" {
		t.Fatalf("/checkpoint with the quorum away: %d (the older witnessed checkpoint is still served)", status)
	}

	f.ws[0].Restart()
	f.ws[1].Restart()
	f.grow(1)
	f.waitWitnessed()
	waitFor(t, "health back", func() bool { return f.wit.Health() == nil })
	if _, _, err := f.l.HeadCovering(last); err != nil {
		t.Fatalf("HeadCovering(%d) after the witnesses returned: %v", last, err)
	}
}

// TestForkAndRollbackAlarms plays a rogue operator holding the log key: it
// builds a tree that shares the log's first leaves and then differs, and
// gets a witness to cosign it. The ledger's next round raises a fork alarm
// for that witness (its tree at a size this log has is another), and once
// the rogue tree is longer than the log, a rollback alarm; health is
// degraded; the other two witnesses still cosign the real log.
func TestForkAndRollbackAlarms(t *testing.T) {
	// OnAlarm (the FG's notification, ledger/notify) hears of each alarm
	// once, when it is raised.
	var alarmMu sync.Mutex
	var heard []string
	onAlarm := func(kind, witness string, logSize, witnessSize uint64) {
		alarmMu.Lock()
		defer alarmMu.Unlock()
		heard = append(heard, fmt.Sprintf("%s/%s", kind, witness))
	}
	f := newFixture(t, ledger.Config{}, witnessing.Config{OnAlarm: onAlarm})
	f.grow(30)
	w := f.waitWitnessed()
	rogue := memtree.New()
	for i := uint64(0); i < w.Size; i++ {
		rec, err := f.l.LeafRecordBytes(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		rogue.Append(t, rec)
	}
	for i := 0; i < 5; i++ {
		rogue.Append(t, []byte("a forged leaf that the real log never had"))
	}
	logSigner, err := note.NewSigner(f.env.LogSkey)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(size int64) []byte {
		n, err := note.Sign(&note.Note{Text: string(verifier.FormatCheckpoint(f.l.Origin(), uint64(size), rogue.Root(t, size)))}, logSigner)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	victim := f.ws[0]
	req := &witness.AddCheckpointRequest{OldSize: w.Size, Proof: rogue.Proof(t, int64(w.Size), rogue.Size()), Checkpoint: forged(rogue.Size())}
	if _, err := victim.W.Add(t.Context(), req); err != nil {
		t.Fatalf("the witness refused the rogue extension it cannot tell from a real one: %v", err)
	}
	// The real log grows past the rogue's size: the witness holds another
	// tree at a size this log has.
	f.grow(10)
	waitFor(t, "the fork alarm", func() bool { return f.wit.Alarms()[victim.Name] != nil })
	if err := f.wit.Alarms()[victim.Name]; !strings.Contains(err.Error(), "fork") {
		t.Fatalf("alarm for %s: %v, want a fork alarm", victim.Name, err)
	}
	if !errors.Is(f.wit.Health(), witnessing.ErrDegraded) {
		t.Fatal("health is not degraded with a fork alarm open")
	}
	// The other two still cosign the real log.
	got := f.waitWitnessed()
	policy, _ := f.l.WitnessPolicy()
	res, err := verifier.CheckWitnessPolicy(mustOpen(t, got.Note, f.env.Keys), policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cosigned {
		if c.Witness == victim.Name {
			t.Fatal("the forked witness's cosignature is on the real log's checkpoint")
		}
	}

	// A second witness is pushed past the log's own size: rollback.
	other := f.ws[1]
	base := f.l.WitnessedHead().Size
	rogue2 := memtree.New()
	for i := uint64(0); i < base; i++ {
		rec, err := f.l.LeafRecordBytes(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		rogue2.Append(t, rec)
	}
	for i := 0; i < 1000; i++ {
		rogue2.Append(t, []byte("far beyond the real log"))
	}
	rogue = rogue2
	req = &witness.AddCheckpointRequest{OldSize: base, Proof: rogue.Proof(t, int64(base), rogue.Size()), Checkpoint: forged(rogue.Size())}
	if _, err := other.W.Add(t.Context(), req); err != nil {
		t.Fatalf("the second witness refused the rogue extension: %v", err)
	}
	f.grow(1)
	waitFor(t, "the rollback alarm", func() bool { return f.wit.Alarms()[other.Name] != nil })
	if err := f.wit.Alarms()[other.Name]; !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("alarm for %s: %v, want a rollback alarm", other.Name, err)
	}
	f.grow(1)
	alarmMu.Lock()
	defer alarmMu.Unlock()
	if want := []string{"fork/" + victim.Name, "rollback/" + other.Name}; !slices.Equal(heard, want) {
		t.Errorf("OnAlarm heard %v, want %v (each alarm once)", heard, want)
	}
}

// TestBundleOnWitnessedCheckpoint: an inzage bundle is built on the
// witnessed head, verifies under the covenant's policy and names the
// witnesses; the same bundle with the witnesses' lines taken off its
// checkpoint is refused; and while the quorum is away, an answer about a
// child with a newer disclosure waits (ErrNotWitnessed) instead of being
// built on an unwitnessed checkpoint.
func TestBundleOnWitnessedCheckpoint(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{Timeout: 200 * time.Millisecond})
	f.grow(5)
	env, d := f.env.Event(t)
	if _, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{env}); err != nil {
		t.Fatal(err)
	}
	f.waitWitnessed()
	svc := answer.New(answer.Config{Ledger: f.l})
	req := answer.BundleRequest{IDType: d.Subject.IDType,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}},
		Request: verifier.InzageRequest{ID: "inzage-1", Relation: verifier.RelationParent,
			RequestedAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second), ReleasedAt: time.Now().UTC().Truncate(time.Second)},
		LogVkey: f.env.LogVkey, CosignerVkey: f.env.CosVkey}
	data, _, err := svc.BuildBundle(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := verifier.VerifyBundle(data, f.env.Keys, f.env.Demo.AdminVkey)
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	if vb.Witnesses == nil || len(vb.Witnesses.Cosigned) < 2 || vb.Witnesses.LatestAt.IsZero() {
		t.Fatalf("the verified bundle names no witnesses: %+v", vb.Witnesses)
	}
	if len(vb.Disclosures) == 0 {
		t.Fatal("the bundle holds no disclosure")
	}

	// The operator's word only: the checkpoint without the witness lines.
	b, err := verifier.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.SplitAfter(b.Checkpoint, "\n") {
		if strings.HasPrefix(line, "— witness.example/") {
			continue
		}
		kept = append(kept, line)
	}
	b.Checkpoint = strings.Join(kept, "")
	if _, err := verifier.VerifyParsedBundle(b, f.env.Keys, f.env.Demo.AdminVkey); !errors.Is(err, verifier.ErrWitnesses) {
		t.Fatalf("a bundle whose checkpoint lost its cosignatures: %v, want ErrWitnesses", err)
	}

	// Two witnesses away, a new disclosure about the same child: no answer
	// until they return.
	f.ws[1].Stop()
	f.ws[2].Stop()
	_, d2 := f.env.Event(t)
	d2.Subject = d.Subject
	env2 := f.env.Sign(t, d2)
	if _, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{env2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.BuildBundle(t.Context(), req); !errors.Is(err, ledger.ErrNotWitnessed) {
		t.Fatalf("BuildBundle with the quorum away: %v, want ErrNotWitnessed", err)
	}
	f.ws[1].Restart()
	f.ws[2].Restart()
	f.waitWitnessed()
	if _, _, err := svc.BuildBundle(t.Context(), req); err != nil {
		t.Fatalf("BuildBundle after the witnesses returned: %v", err)
	}
}

// TestReportNamesWitnesses: the parent's Dutch report of a bundle on a
// witnessed checkpoint names the witnesses and the time by which
// everything in it was recorded.
func TestReportNamesWitnesses(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{})
	env, d := f.env.Event(t)
	if _, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{env}); err != nil {
		t.Fatal(err)
	}
	f.waitWitnessed()
	now := time.Now().UTC().Truncate(time.Second)
	_, vb, err := answer.New(answer.Config{Ledger: f.l}).BuildBundle(t.Context(), answer.BundleRequest{IDType: d.Subject.IDType,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}},
		Request:    verifier.InzageRequest{ID: "inzage-2", Relation: verifier.RelationParent, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
		LogVkey:    f.env.LogVkey, CosignerVkey: f.env.CosVkey})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := report.WriteInzage(&buf, vb); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"Onafhankelijk bevestigd door", "Uiterlijk vastgelegd op", vb.Witnesses.Cosigned[0].Witness, "(bevestigd door onafhankelijke getuigen)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not show %q", want)
		}
	}
	if strings.Contains(text, "niet onafhankelijk bevestigd") {
		t.Error("the report of a witnessed bundle says it is not independently confirmed")
	}
}

// TestBundleCarriesFirstWitnessedCheckpoints: a child with a disclosure
// witnessed early and one witnessed later gets a bundle carrying the first
// witnessed checkpoint that includes the early one, with a consistency
// proof to the bundle's checkpoint; each disclosure's "logged by" bound is
// that of its own first witnessed checkpoint; a broken proof, or a
// witnessed checkpoint whose cosignatures were taken off, is refused.
func TestBundleCarriesFirstWitnessedCheckpoints(t *testing.T) {
	f := newFixture(t, ledger.Config{}, witnessing.Config{})
	env1, d := f.env.Event(t)
	if _, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{env1}); err != nil {
		t.Fatal(err)
	}
	first := f.waitWitnessed()
	// Let the witnesses' clocks (whole seconds) move on.
	time.Sleep(1100 * time.Millisecond)
	f.grow(40)
	_, d2 := f.env.Event(t)
	d2.Subject = d.Subject
	if _, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{f.env.Sign(t, d2)}); err != nil {
		t.Fatal(err)
	}
	f.waitWitnessed()
	now := time.Now().UTC().Truncate(time.Second)
	data, _, err := answer.New(answer.Config{Ledger: f.l}).BuildBundle(t.Context(), answer.BundleRequest{IDType: d.Subject.IDType,
		Pseudonyms: []verifier.SubjectPseudonym{{KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym}},
		Request:    verifier.InzageRequest{ID: "inzage-3", Relation: verifier.RelationParent, RequestedAt: now.Add(-time.Hour), ReleasedAt: now},
		LogVkey:    f.env.LogVkey, CosignerVkey: f.env.CosVkey})
	if err != nil {
		t.Fatal(err)
	}
	b, err := verifier.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	// (The synthetic events of grow may be about the same child: then
	// their first witnessed checkpoints come too.)
	if len(b.Witnessed) == 0 || b.Witnessed[0].Checkpoint != string(first.Note) {
		t.Fatalf("the bundle carries %d witnessed checkpoints; the first is not the one that first included leaf %d (size %d)",
			len(b.Witnessed), b.Entries[0].Index, first.Size)
	}
	vb, err := verifier.VerifyBundle(data, f.env.Keys, f.env.Demo.AdminVkey)
	if err != nil {
		t.Fatal(err)
	}
	if len(vb.Disclosures) < 2 {
		t.Fatalf("%d disclosures, want at least 2", len(vb.Disclosures))
	}
	early, late := vb.Disclosures[0].WitnessedBy, vb.Disclosures[len(vb.Disclosures)-1].WitnessedBy
	if early.IsZero() || !early.Before(late) || !late.Equal(vb.Witnesses.LatestAt) {
		t.Fatalf("logged-by bounds: early %v, late %v, bundle %v", early, late, vb.Witnesses.LatestAt)
	}
	// Cosignature times are whole seconds.
	if vb.Disclosures[0].IntegratedAt.After(early.Add(time.Second)) {
		t.Fatalf("the ledger says it logged at %v, after the witnesses saw it at %v", vb.Disclosures[0].IntegratedAt, early)
	}

	broken := *b
	broken.Witnessed = []verifier.WitnessedCheckpoint{{Checkpoint: b.Witnessed[0].Checkpoint,
		ConsistencyProof: append([]verifier.Base64Bytes{}, b.Witnessed[0].ConsistencyProof...)}}
	if len(broken.Witnessed[0].ConsistencyProof) == 0 {
		t.Fatal("no consistency proof to break")
	}
	p0 := append(verifier.Base64Bytes{}, broken.Witnessed[0].ConsistencyProof[0]...)
	p0[0] ^= 1
	broken.Witnessed[0].ConsistencyProof[0] = p0
	if _, err := verifier.VerifyParsedBundle(&broken, f.env.Keys, f.env.Demo.AdminVkey); !errors.Is(err, verifier.ErrWitnesses) {
		t.Fatalf("a broken consistency proof: %v, want ErrWitnesses", err)
	}
	bare := *b
	bare.Witnessed = []verifier.WitnessedCheckpoint{{Checkpoint: strings.Join(dropWitnessLines(strings.SplitAfter(b.Witnessed[0].Checkpoint, "\n")), ""),
		ConsistencyProof: b.Witnessed[0].ConsistencyProof}}
	if _, err := verifier.VerifyParsedBundle(&bare, f.env.Keys, f.env.Demo.AdminVkey); !errors.Is(err, verifier.ErrWitnesses) {
		t.Fatalf("an earlier checkpoint without cosignatures: %v, want ErrWitnesses", err)
	}
}

func dropWitnessLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "— witness.example/") {
			out = append(out, l)
		}
	}
	return out
}

// TestFailOpenServesWitnessedHead: in fail-open mode /checkpoint serves the
// witnessed checkpoint, marked witnessed, once the witnesses cosigned the
// log's tree, and the signed head marked as not witnessed only while the
// log is ahead of them. Storing the cosignatures signs a new checkpoint of
// the same tree (it is a batch of the sequencer), so the witnessed
// checkpoint is never the newest signed one: it must be judged by its
// tree, not by its number.
func TestFailOpenServesWitnessedHead(t *testing.T) {
	f := newFixture(t, ledger.Config{WitnessFailOpen: true}, witnessing.Config{Timeout: 200 * time.Millisecond})
	f.grow(5)
	w := f.waitWitnessed()
	ph, witnessed := f.l.PublicHead()
	if !witnessed || ph.Size != w.Size || !strings.Contains(string(ph.Note), "— witness.example/") {
		t.Fatalf("fail-open, everything witnessed: PublicHead size %d witnessed=%v (signed head seq %d, witnessed seq %d)",
			ph.Size, witnessed, f.l.Head().Seq, w.Seq)
	}
	status, hdr, body := f.get("/checkpoint")
	if status != http.StatusOK || hdr.Get(httpapi.WitnessedHeader) != "true" || !strings.Contains(body, "— witness.example/") {
		t.Fatalf("fail-open, everything witnessed: /checkpoint %d %s=%q\n%s", status, httpapi.WitnessedHeader, hdr.Get(httpapi.WitnessedHeader), body)
	}

	// Two of three away: the log goes ahead of its witnesses, and the
	// signed head is served, marked.
	f.ws[1].Stop()
	f.ws[2].Stop()
	f.grow(3)
	ph, witnessed = f.l.PublicHead()
	if witnessed || ph.Size <= w.Size {
		t.Fatalf("fail-open, the log ahead of its witnesses: PublicHead size %d witnessed=%v, witnessed head %d", ph.Size, witnessed, w.Size)
	}
	if _, hdr, _ := f.get("/checkpoint"); hdr.Get(httpapi.WitnessedHeader) != "false" {
		t.Fatalf("fail-open, the log ahead of its witnesses: /checkpoint %s=%q", httpapi.WitnessedHeader, hdr.Get(httpapi.WitnessedHeader))
	}
}
