package verifier

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
)

// updateBundle rewrites testdata/bundle (a flag of its own, so that it does
// not rewrite the other golden files).
var updateBundle = flag.Bool("update-bundle", false, "rewrite the golden bundle in testdata/bundle")

// inzageLog is a Spoor log built in memory from real parts: the demo
// covenant with fresh keys, real party signatures, RFC 6962 hashing and
// checkpoints signed with real log and cosigner keys. Unlike the ledger it
// checks nothing when it appends, so that tests can build exactly the log
// that a faulty or dishonest ledger would, and see the verifier catch it.
type inzageLog struct {
	t       testing.TB
	keys    *testLog
	demo    *demo.Material
	gen     *synth.Generator
	tree    memLog
	records [][]byte
	bodies  [][]byte
	covs    []uint64 // leaf indices of the covenant versions
	now     time.Time
}

func newInzageLog(t testing.TB) *inzageLog {
	t.Helper()
	m, err := demo.Generate(filepath.Join(t.TempDir(), "demo-keys"), "amersfoort")
	if err != nil {
		t.Fatalf("demo covenant: %v", err)
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 7, 4)
	if err != nil {
		t.Fatal(err)
	}
	gen.Now = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	f := &inzageLog{t: t, keys: newTestLog(t, m.Signed.Covenant.Origin), demo: m, gen: gen,
		now: time.Date(2025, 3, 14, 12, 30, 0, 0, time.UTC)}
	f.appendCovenant(m.Signed.Envelope.Raw)
	return f
}

// tick advances the log's clock and returns the new integrated_at.
func (f *inzageLog) tick() time.Time {
	f.now = f.now.Add(1500 * time.Millisecond)
	return f.now
}

func (f *inzageLog) appendLeaf(rec LeafRecord, body []byte) uint64 {
	f.t.Helper()
	b, err := rec.MarshalBinary()
	if err != nil {
		f.t.Fatal(err)
	}
	idx := uint64(len(f.records))
	f.tree.append(f.t, b)
	f.records = append(f.records, b)
	f.bodies = append(f.bodies, body)
	return idx
}

// appendCovenant logs a signed covenant version, naming the previous one.
func (f *inzageLog) appendCovenant(signed []byte) uint64 {
	prev := uint64(len(f.records))
	if len(f.covs) > 0 {
		prev = f.covs[len(f.covs)-1]
	}
	idx := f.appendLeaf(LeafRecord{Type: EntryCovenant, BodyHash: sha256.Sum256(signed), IntegratedAt: f.tick(), CovenantIndex: prev}, signed)
	f.covs = append(f.covs, idx)
	return idx
}

// appendEnvelope logs a disclosure envelope as checked against the
// covenant version at leaf cov.
func (f *inzageLog) appendEnvelope(env []byte, cov uint64) uint64 {
	return f.appendLeaf(LeafRecord{Type: EntryDisclosure, BodyHash: sha256.Sum256(env), IntegratedAt: f.tick(), CovenantIndex: cov}, env)
}

// covenant returns the leaf of the newest covenant version.
func (f *inzageLog) covenant() uint64 { return f.covs[len(f.covs)-1] }

// sign seals and signs d with its discloser's demo key.
func (f *inzageLog) sign(d *events.Disclosure) []byte {
	f.t.Helper()
	k := f.demo.Parties[d.Discloser]
	events.Seal(d, k)
	env, err := events.Sign(d, k)
	if err != nil {
		f.t.Fatalf("sign: %v", err)
	}
	return env
}

// event makes a synthetic disclosure about child, disclosed by party (any
// party when empty).
func (f *inzageLog) event(child synth.Child, party string) *events.Disclosure {
	d, _ := f.gen.Next()
	d.Subject.Pseudonym = child.Pseudonym
	d.SubjectAgeBand = child.AgeBand
	if party != "" {
		d.Discloser = party
		d.Recipients = slices.DeleteFunc(d.Recipients, func(r string) bool { return r == party })
		if len(d.Recipients) == 0 {
			d.Recipients = []string{"gemeente-amersfoort"}
			if party == "gemeente-amersfoort" {
				d.Recipients = []string{"wijkteams-amersfoort"}
			}
		}
	}
	return d
}

// addEvents logs n disclosures about child and returns their leaves.
func (f *inzageLog) addEvents(child synth.Child, n int) []uint64 {
	var out []uint64
	for range n {
		out = append(out, f.appendEnvelope(f.sign(f.event(child, "")), f.covenant()))
	}
	return out
}

// child returns synthetic child i.
func (f *inzageLog) child(i int) synth.Child { return f.gen.Children()[i] }

// checkpoint signs the current tree.
func (f *inzageLog) checkpoint() []byte {
	f.t.Helper()
	n := int64(len(f.records))
	cp, err := f.keys.signer.Sign(f.keys.signer.Origin(), uint64(n), f.tree.root(f.t, n))
	if err != nil {
		f.t.Fatal(err)
	}
	return cp
}

func (f *inzageLog) proof(index uint64) []Base64Bytes {
	f.t.Helper()
	p, err := tlog.ProveRecord(int64(len(f.records)), int64(index), &f.tree.hashes)
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]Base64Bytes, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i][:])
	}
	return out
}

func (f *inzageLog) entry(index uint64) BundleEntry {
	return BundleEntry{Index: index, LeafRecord: f.records[index], Envelope: f.bodies[index], InclusionProof: f.proof(index)}
}

// bundle builds the bundle for child with the given disclosure leaves,
// against the current tree, as an honest ledger would.
func (f *inzageLog) bundle(child synth.Child, leaves []uint64) *Bundle {
	f.t.Helper()
	b := &Bundle{
		Format:    BundleFormat,
		Origin:    f.keys.signer.Origin(),
		CreatedAt: f.now.Add(time.Minute),
		Subject: BundleSubject{IDType: events.IDTypeBSN,
			Pseudonyms: []SubjectPseudonym{{KeyID: f.demo.SubjectKey.ID, Pseudonym: child.Pseudonym}}},
		Scope: BundleScope{CentralDesk: true},
		Request: InzageRequest{ID: "inzage-2025-0042", Relation: RelationParent,
			RequestedAt: f.now.Add(-48 * time.Hour), ReleasedAt: f.now.Add(time.Minute)},
		Checkpoint:   string(f.checkpoint()),
		LogVkey:      f.keys.logVkey,
		CosignerVkey: f.keys.cosVkey,
		Covenants:    []BundleEntry{},
		Entries:      []BundleEntry{},
		Withheld:     []WithheldEntry{},
		Erased:       []ErasedEntry{},
	}
	for _, p := range f.demo.Signed.Covenant.Parties {
		b.Scope.Parties = append(b.Scope.Parties, p.ID)
	}
	for _, c := range f.covs {
		b.Covenants = append(b.Covenants, f.entry(c))
	}
	for _, l := range leaves {
		b.Entries = append(b.Entries, f.entry(l))
	}
	return b
}

func (f *inzageLog) marshal(b *Bundle) []byte {
	f.t.Helper()
	out, err := MarshalBundle(b)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *inzageLog) verify(b []byte) (*VerifiedBundle, error) {
	return VerifyBundle(b, f.keys.keys, f.demo.AdminVkey)
}

// covenantV2 returns covenant version 2, following version 1, in which the
// key of party is revoked, signed with adminSkey.
func (f *inzageLog) covenantV2(party, adminSkey string) []byte {
	f.t.Helper()
	v1 := f.demo.Signed
	keyLine := `- public_key: "` + base64.StdEncoding.EncodeToString(f.demo.Parties[party].Public()) + "\"\n        valid_from: 2023-05-25T00:00:00Z\n"
	y := string(v1.Envelope.Payload)
	if !strings.Contains(y, keyLine) || !strings.Contains(y, "\nversion: 1\n") {
		f.t.Fatalf("the demo covenant template changed; cannot make version 2")
	}
	y = strings.Replace(y, keyLine, keyLine+"        revoked: true\n        revoked_reason: \"Laptop gestolen (testgeval)\"\n", 1)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+v1.Hash()+"\"\n", 1)
	signed, err := events.SignCovenant([]byte(y), adminSkey)
	if err != nil {
		f.t.Fatalf("covenant v2: %v", err)
	}
	return signed
}

// tombstone logs a tombstone erasing leaf erased under rule.
func (f *inzageLog) tombstone(erased uint64, rule string) ErasedEntry {
	body := fmt.Appendf(nil, "tombstone of leaf %d", erased)
	at := f.tick()
	idx := f.appendLeaf(LeafRecord{Type: EntryTombstone, BodyHash: sha256.Sum256(body), IntegratedAt: at,
		CovenantIndex: f.covenant(), ErasedIndex: erased, RuleID: rule}, body)
	return ErasedEntry{Index: idx, ErasedIndex: erased, RuleID: rule, ErasedAt: at, Body: body}
}

func TestVerifyBundleGood(t *testing.T) {
	f := newInzageLog(t)
	alice, bob := f.child(0), f.child(1)
	mine := f.addEvents(alice, 4)
	f.addEvents(bob, 3)
	mine = append(mine, f.addEvents(alice, 2)...)
	withheld := f.appendEnvelope(f.sign(f.event(alice, "wijkteams-amersfoort")), f.covenant())
	erasedLeaf := f.appendEnvelope(f.sign(f.event(alice, "")), f.covenant())
	tomb := f.tombstone(erasedLeaf, "retention:gezondheid:730d")
	f.addEvents(bob, 1)

	b := f.bundle(alice, mine)
	// The proofs must be against the checkpoint the bundle carries, so
	// the withheld and erased entries are made against the same tree.
	b.Withheld = []WithheldEntry{{Index: withheld, LeafRecord: f.records[withheld], InclusionProof: f.proof(withheld), Ground: WithholdUAVG41}}
	tomb.LeafRecord, tomb.InclusionProof = f.records[tomb.Index], f.proof(tomb.Index)
	b.Erased = []ErasedEntry{tomb}

	data := f.marshal(b)
	vb, err := f.verify(data)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if len(vb.Disclosures) != len(mine) || len(vb.Withheld) != 1 || len(vb.Erased) != 1 || len(vb.Covenants) != 1 {
		t.Fatalf("verified %d disclosures, %d withheld, %d erased, %d covenants", len(vb.Disclosures), len(vb.Withheld), len(vb.Erased), len(vb.Covenants))
	}
	for i, vd := range vb.Disclosures {
		if vd.Index != mine[i] || vd.Disclosure.Subject.Pseudonym != alice.Pseudonym || vd.Covenant.Version != 1 {
			t.Errorf("disclosure %d: index %d, covenant %d", i, vd.Index, vd.Covenant.Version)
		}
		rec, _ := ParseLeafRecord(f.records[vd.Index])
		if !vd.IntegratedAt.Equal(rec.IntegratedAt) {
			t.Errorf("disclosure %d: integrated_at %v, want %v", i, vd.IntegratedAt, rec.IntegratedAt)
		}
	}
	if vb.Erased[0].ErasedIndex != erasedLeaf || vb.Erased[0].RuleID != "retention:gezondheid:730d" {
		t.Errorf("erased %+v", vb.Erased[0])
	}
	if vb.Checkpoint.Size != uint64(len(f.records)) {
		t.Errorf("checkpoint size %d", vb.Checkpoint.Size)
	}
	if vb.LogKey != KeyFingerprint(f.keys.logVkey) || vb.CosignerKey != KeyFingerprint(f.keys.cosVkey) || vb.AdminKey != KeyFingerprint(f.demo.AdminVkey) {
		t.Errorf("fingerprints %q %q %q", vb.LogKey, vb.CosignerKey, vb.AdminKey)
	}

	// Decoding and encoding again gives the same bytes: one form.
	pb, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if again := f.marshal(pb); !bytes.Equal(again, data) {
		t.Errorf("a decoded bundle encodes differently")
	}
}

// TestVerifyBundleNoDisclosures: a child with no disclosures still gets a
// bundle that verifies, carrying the checkpoint and the covenant chain.
func TestVerifyBundleNoDisclosures(t *testing.T) {
	f := newInzageLog(t)
	f.addEvents(f.child(1), 3)
	vb, err := f.verify(f.marshal(f.bundle(f.child(0), nil)))
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	if len(vb.Disclosures) != 0 || len(vb.Covenants) != 1 || vb.Checkpoint.Size != 4 {
		t.Errorf("verified %d disclosures, %d covenants, size %d", len(vb.Disclosures), len(vb.Covenants), vb.Checkpoint.Size)
	}
}

// TestVerifyBundleRotatedKeysAndCovenants: a subject with pseudonyms under
// two keys, and entries checked against covenant versions 1 and 2.
func TestVerifyBundleRotatedKeysAndCovenants(t *testing.T) {
	f := newInzageLog(t)
	alice := f.child(0)
	first := f.addEvents(alice, 2)
	f.appendCovenant(f.covenantV2("lariks", f.demo.AdminSkey))
	second := f.addEvents(alice, 2)
	// Under a newer pseudonym key the same child has another pseudonym.
	k2, err := events.GenerateSubjectKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	p2 := strings.Repeat("ab", 32)
	d := f.event(alice, "gemeente-soest")
	d.Subject.KeyID, d.Subject.Pseudonym = k2.ID, p2
	third := f.appendEnvelope(f.sign(d), f.covenant())

	b := f.bundle(alice, slices.Concat(first, second, []uint64{third}))
	b.Subject.Pseudonyms = append(b.Subject.Pseudonyms, SubjectPseudonym{KeyID: "k2", Pseudonym: p2})
	vb, err := f.verify(f.marshal(b))
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	var versions []int
	for _, vd := range vb.Disclosures {
		versions = append(versions, vd.Covenant.Version)
	}
	if !slices.Equal(versions, []int{1, 1, 2, 2, 2}) || len(vb.Covenants) != 2 || vb.Covenant().Version != 2 {
		t.Errorf("covenant versions %v, %d covenants", versions, len(vb.Covenants))
	}
}

func TestVerifyBundleNeedsPinnedKeys(t *testing.T) {
	f := newInzageLog(t)
	data := f.marshal(f.bundle(f.child(0), f.addEvents(f.child(0), 1)))
	for name, call := range map[string]func() error{
		"no log keys":   func() error { _, err := VerifyBundle(data, nil, f.demo.AdminVkey); return err },
		"no admin key":  func() error { _, err := VerifyBundle(data, f.keys.keys, ""); return err },
		"bad admin key": func() error { _, err := VerifyBundle(data, f.keys.keys, "not a key"); return err },
	} {
		if err := call(); !errors.Is(err, ErrPinnedKeys) {
			t.Errorf("%s: got %v, want ErrPinnedKeys", name, err)
		}
	}
}

// tamperCase changes a good bundle (or the way it is checked) and says
// which class of failure, and which message, must come back.
type tamperCase struct {
	name string
	// edit changes the decoded bundle; raw, if set, changes the bytes.
	edit func(b *Bundle)
	raw  func(data []byte) []byte
	// keys and admin replace the pinned keys when set; vkeys is the log
	// whose keys keys are, for a checker that takes the keys' texts (the
	// parent's page).
	keys  *LogKeys
	vkeys *testLog
	admin string
	want  []error
	msg   string
}

// flipByte returns b with one byte changed (a copy).
func flipByte(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x01
	return c
}

// TestBundleTamperTable is the tamper table of issue 5: every way of
// changing a bundle, or of checking it with keys it was not made with, is
// caught with its own class and message.
func TestBundleTamperTable(t *testing.T) {
	f, goodData, cases := bundleTamperCases(t)
	if _, err := f.verify(goodData); err != nil {
		t.Fatalf("the untampered bundle does not verify: %v", err)
	}
	seen := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, keys, admin := tc.apply(t, f, goodData)
			vb, err := VerifyBundle(data, keys, admin)
			if err == nil {
				t.Fatalf("verified %d disclosures; want a failure", len(vb.Disclosures))
			}
			var es BundleErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v is not BundleErrors", err, err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error does not wrap %v:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message lacks %q:\n%v", tc.msg, err)
			}
			if prev, ok := seen[err.Error()]; ok {
				t.Errorf("same message as case %q", prev)
			}
			seen[err.Error()] = tc.name
			t.Logf("%v", err)
		})
	}
}

// apply returns the case's bundle bytes and the keys to check them with.
func (tc tamperCase) apply(t *testing.T, f *inzageLog, goodData []byte) (data []byte, keys *LogKeys, admin string) {
	t.Helper()
	data = goodData
	if tc.edit != nil {
		var b Bundle
		if err := json.Unmarshal(goodData, &b); err != nil {
			t.Fatal(err)
		}
		tc.edit(&b)
		data = f.marshal(&b)
	}
	if tc.raw != nil {
		data = tc.raw(data)
	}
	keys, admin = f.keys.keys, f.demo.AdminVkey
	if tc.keys != nil {
		keys = tc.keys
	}
	if tc.admin != "" {
		admin = tc.admin
	}
	return data, keys, admin
}

// TestLedgerPathMatchesVerifyBundle checks that the way the ledger checks a
// bundle it built (VerifyParsedBundle with a cache and the envelopes as it
// parsed them, SignaturesCheckedAtIngest) reaches VerifyBundle's verdict,
// result and every message, on the good bundle and on every case of the
// tamper table whose envelopes still parse (the only bundles a ledger can
// build). One cache serves every case, twice, so that a remembered
// checkpoint or chain changes no verdict either.
func TestLedgerPathMatchesVerifyBundle(t *testing.T) {
	f, goodData, cases := bundleTamperCases(t)
	cases = append([]tamperCase{{name: "untampered"}}, cases...)
	var cache BundleCache
	for round := range 2 {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", tc.name, round), func(t *testing.T) {
				data, keys, admin := tc.apply(t, f, goodData)
				want, wantErr := VerifyBundle(data, keys, admin)
				// The JSON decoded without ParseBundle's structural
				// checks, which VerifyParsedBundle makes itself.
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.DisallowUnknownFields()
				b := new(Bundle)
				if err := dec.Decode(b); err != nil {
					t.Skipf("not a bundle a ledger holds in memory: %v", err)
				}
				ingested := make([]IngestedEnvelope, len(b.Entries))
				for i, e := range b.Entries {
					env, err := events.ParseEnvelope(e.Envelope)
					if err != nil {
						t.Skipf("entries[%d] does not parse, which a ledger's store never holds: %v", i, err)
					}
					d, err := events.DecodeDisclosure(env.Payload)
					if err != nil {
						t.Skipf("entries[%d] does not decode, which a ledger's store never holds: %v", i, err)
					}
					ingested[i] = IngestedEnvelope{Index: e.Index, Envelope: env, Disclosure: d}
				}
				got, gotErr := VerifyParsedBundle(b, keys, admin, WithCache(&cache), SignaturesCheckedAtIngest(ingested))
				if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
					t.Fatalf("the ledger's path says\n%v\nVerifyBundle says\n%v", gotErr, wantErr)
				}
				if wantErr != nil {
					return
				}
				got.Bundle, want.Bundle = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Errorf("the ledger's path verified\n%+v\nVerifyBundle\n%+v", got, want)
				}
			})
		}
	}
}

// bundleTamperCases builds a log, a good bundle of it and the tamper table
// of TestBundleTamperTable.
func bundleTamperCases(t *testing.T) (*inzageLog, []byte, []tamperCase) {
	f := newInzageLog(t)
	alice, bob := f.child(0), f.child(1)
	mine := f.addEvents(alice, 3)
	theirs := f.addEvents(bob, 1)
	// A disclosure dated before the discloser's key came into force; a
	// lax ledger logged it anyway.
	early := f.event(alice, "gemeente-baarn")
	early.OccurredAt = time.Date(2023, 1, 9, 10, 0, 0, 0, time.UTC)
	earlyLeaf := f.appendEnvelope(f.sign(early), f.covenant())
	// Covenant version 2 revokes Lariks' key; an event signed with it is
	// then logged, once naming version 2 and once naming version 1.
	f.appendCovenant(f.covenantV2("lariks", f.demo.AdminSkey))
	revoked := f.appendEnvelope(f.sign(f.event(alice, "lariks")), f.covenant())
	dodged := f.appendEnvelope(f.sign(f.event(alice, "lariks")), f.covs[0])
	// A tombstone erasing Bob's disclosure (its proof is made in the cases,
	// against the same tree as the good bundle).
	tombstone := f.tombstone(theirs[0], "retention:default:1825d")
	good := f.bundle(alice, mine)
	tombstone.LeafRecord, tombstone.InclusionProof = f.records[tombstone.Index], f.proof(tombstone.Index)
	// Covenant version 2 signed by someone who is not the administrator,
	// in a log of its own.
	g := newInzageLog(t)
	intruderSkey, _, err := events.GenerateAdminKey("intruder")
	if err != nil {
		t.Fatal(err)
	}
	g.appendCovenant(g.covenantV2("lariks", intruderSkey))
	g.addEvents(g.child(0), 1)
	forged := g.bundle(g.child(0), nil)

	other := newTestLog(t, "spoor.example/waterweg")
	sameOrigin := newTestLog(t, f.keys.signer.Origin())
	otherAdmin, err := demo.Generate(filepath.Join(t.TempDir(), "other-admin"), "amersfoort")
	if err != nil {
		t.Fatal(err)
	}
	otherCheckpoint, err := other.signer.Sign("spoor.example/waterweg", 1, sha256.Sum256([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}

	note := func(b *Bundle) (body string, sigs []string) {
		body, sig, _ := strings.Cut(b.Checkpoint, "\n\n")
		return body, strings.Split(strings.TrimSuffix(sig, "\n"), "\n")
	}
	cases := []tamperCase{
		{name: "a changed byte in an envelope",
			edit: func(b *Bundle) { b.Entries[1].Envelope = flipByte(b.Entries[1].Envelope, 40) },
			want: []error{ErrLeafMismatch}, msg: "entries[1] (leaf 2): body-hash"},
		{name: "a changed envelope with a leaf record to match",
			edit: func(b *Bundle) {
				b.Entries[1].Envelope = flipByte(b.Entries[1].Envelope, 40)
				rec, _ := ParseLeafRecord(b.Entries[1].LeafRecord)
				rec.BodyHash = sha256.Sum256(b.Entries[1].Envelope)
				b.Entries[1].LeafRecord, _ = rec.MarshalBinary()
			},
			want: []error{ErrInclusion}, msg: "entries[1] (leaf 2): inclusion"},
		{name: "a changed byte in a proof",
			edit: func(b *Bundle) { b.Entries[0].InclusionProof[2] = flipByte(b.Entries[0].InclusionProof[2], 7) },
			want: []error{ErrInclusion, ErrProof}, msg: "entries[0] (leaf 1): inclusion"},
		{name: "a changed integrated_at in a leaf record",
			edit: func(b *Bundle) { b.Entries[2].LeafRecord = flipByte(b.Entries[2].LeafRecord, 40) },
			want: []error{ErrInclusion}, msg: "entries[2] (leaf 3): inclusion"},
		{name: "a changed byte in the checkpoint",
			edit: func(b *Bundle) {
				size := fmt.Sprintf("\n%d\n", len(f.records))
				b.Checkpoint = strings.Replace(b.Checkpoint, size, fmt.Sprintf("\n%d\n", len(f.records)+1), 1)
			},
			want: []error{ErrCheckpoint, ErrBadSignature}, msg: "checkpoint: signature"},
		{name: "a changed byte in the cosignature",
			edit: func(b *Bundle) {
				_, sigs := note(b)
				cos := sigs[1]
				i := strings.LastIndexByte(cos, ' ') + 10
				b.Checkpoint = strings.Replace(b.Checkpoint, cos, cos[:i]+flipBase64(cos[i:i+1])+cos[i+1:], 1)
			},
			want: []error{ErrCheckpoint, ErrBadSignature}, msg: "checkpoint: signature"},
		{name: "the cosignature removed",
			edit: func(b *Bundle) {
				_, sigs := note(b)
				b.Checkpoint = strings.Replace(b.Checkpoint, sigs[1]+"\n", "", 1)
			},
			want: []error{ErrCheckpoint, ErrMissingCosignature}, msg: "no cosignature"},
		{name: "a changed byte in the bundle's log key",
			edit: func(b *Bundle) {
				b.LogVkey = b.LogVkey[:len(b.LogVkey)-3] + flipBase64(b.LogVkey[len(b.LogVkey)-3:len(b.LogVkey)-2]) + b.LogVkey[len(b.LogVkey)-2:]
			},
			want: []error{ErrBundleKeys}, msg: "keys: keys"},
		{name: "the bundle names another log's keys",
			edit: func(b *Bundle) { b.LogVkey, b.CosignerVkey = sameOrigin.logVkey, sameOrigin.cosVkey },
			want: []error{ErrBundleKeys}, msg: "keys: log-key"},
		{name: "checked with a pinned key of another log of the same name",
			keys: sameOrigin.keys, vkeys: sameOrigin,
			want: []error{ErrCheckpoint, ErrBadSignature, ErrBundleKeys}, msg: "no signature by the log key"},
		{name: "an event of another subject slipped in",
			edit: func(b *Bundle) { b.Entries = append(b.Entries, f.entry(theirs[0])) },
			want: []error{ErrOtherSubject}, msg: "entries[3] (leaf 4): subject"},
		{name: "an envelope signed by a key outside its validity window",
			edit: func(b *Bundle) { b.Entries = append(b.Entries, f.entry(earlyLeaf)) },
			want: []error{ErrSignature, events.ErrKeyNotInForce}, msg: "is not in force at 2023-01-09T10:00:00Z"},
		{name: "an envelope signed by a key revoked before it was logged",
			edit: func(b *Bundle) { b.Entries = append(b.Entries, f.entry(revoked)) },
			want: []error{ErrSignature, events.ErrKeyRevoked}, msg: "is revoked in covenant version 2"},
		{name: "a revoked key's envelope naming the covenant before the revocation",
			edit: func(b *Bundle) { b.Entries = append(b.Entries, f.entry(dodged)) },
			want: []error{ErrCovenant}, msg: "checked against covenant version 1, but version 2 was logged before it"},
		{name: "an entry naming a covenant version the bundle leaves out",
			edit: func(b *Bundle) {
				b.Covenants = b.Covenants[:1]
				b.Entries = append(b.Entries, f.entry(revoked))
			},
			want: []error{ErrCovenant}, msg: "not a verified covenant version"},
		{name: "covenant version 1 not signed by the pinned administrator",
			admin: otherAdmin.AdminVkey,
			want:  []error{ErrCovenant, events.ErrCovenantSignature}, msg: "covenants[0] (leaf 0): administrator"},
		{name: "covenant version 2 not signed by the administrator of version 1",
			raw:  func([]byte) []byte { return g.marshal(forged) },
			keys: g.keys.keys, vkeys: g.keys, admin: g.demo.AdminVkey,
			want: []error{ErrCovenant, events.ErrCovenantSignature}, msg: "covenants[1] (leaf 1): chain"},
		{name: "a changed byte in a signed covenant",
			edit: func(b *Bundle) { b.Covenants[0].Envelope = flipByte(b.Covenants[0].Envelope, 100) },
			want: []error{ErrLeafMismatch}, msg: "covenants[0] (leaf 0): body-hash"},
		{name: "a checkpoint of another log",
			edit: func(b *Bundle) { b.Checkpoint = string(otherCheckpoint) },
			want: []error{ErrCheckpoint, ErrWrongOrigin}, msg: "checkpoint of another origin"},
		{name: "a truncated bundle",
			raw:  func(data []byte) []byte { return data[:len(data)/2] },
			want: []error{ErrBundleMalformed}, msg: "truncated"},
		{name: "an unknown field",
			raw: func(data []byte) []byte {
				return bytes.Replace(data, []byte(`"origin"`), []byte(`"extra": 1, "origin"`), 1)
			},
			want: []error{ErrBundleMalformed}, msg: `unknown field "extra"`},
		{name: "a leaf listed twice",
			edit: func(b *Bundle) { b.Entries = append(b.Entries, b.Entries[0]) },
			want: []error{ErrBundleMalformed}, msg: "increasing order"},
		{name: "a withheld entry that is a covenant",
			edit: func(b *Bundle) {
				b.Covenants = b.Covenants[:1]
				b.Withheld = []WithheldEntry{{Index: f.covs[1], LeafRecord: f.records[f.covs[1]], InclusionProof: f.proof(f.covs[1]), Ground: WithholdAVG23}}
			},
			want: []error{ErrLeafMismatch}, msg: "the leaf is a covenant entry, not a disclosure"},
		{name: "a tombstone whose rule differs from its leaf record",
			edit: func(b *Bundle) {
				tomb := tombstone
				tomb.RuleID = "retention:other"
				b.Erased = []ErasedEntry{tomb}
			},
			want: []error{ErrLeafMismatch}, msg: fmt.Sprintf("erased[0] (leaf %d): leaf-record", tombstone.Index)},
		{name: "a tombstone with a changed body",
			edit: func(b *Bundle) {
				tomb := tombstone
				tomb.Body = flipByte(tomb.Body, 3)
				b.Erased = []ErasedEntry{tomb}
			},
			want: []error{ErrLeafMismatch}, msg: fmt.Sprintf("erased[0] (leaf %d): body-hash", tombstone.Index)},
		{name: "a changed byte in a withheld entry's proof",
			edit: func(b *Bundle) {
				b.Withheld = []WithheldEntry{{Index: theirs[0], LeafRecord: f.records[theirs[0]], InclusionProof: f.proof(theirs[0]), Ground: WithholdAVG23}}
				b.Withheld[0].InclusionProof[0] = flipByte(b.Withheld[0].InclusionProof[0], 0)
			},
			want: []error{ErrInclusion}, msg: fmt.Sprintf("withheld[0] (leaf %d): inclusion", theirs[0])},
	}
	return f, f.marshal(good), cases
}

// TestBundleErrorsName checks the shape of the messages a person reads.
func TestBundleErrorsName(t *testing.T) {
	es := BundleErrors{
		{Section: "entries", Item: 2, Leaf: 17, HasLeaf: true, Check: "inclusion", Err: ErrInclusion},
		{Section: "checkpoint", Item: -1, Check: "signature", Err: ErrCheckpoint},
	}
	want := "the bundle does not verify (2 problems): entries[2] (leaf 17): inclusion: verifier: inclusion proof does not verify; checkpoint: signature: verifier: bundle checkpoint does not verify"
	if es.Error() != want {
		t.Errorf("got  %s\nwant %s", es.Error(), want)
	}
	var many BundleErrors
	for range 25 {
		many = append(many, es[0])
	}
	if !strings.HasSuffix(many.Error(), "; and 5 more") {
		t.Errorf("long list: %s", many.Error())
	}
}

func TestParseBundleLimits(t *testing.T) {
	f := newInzageLog(t)
	data := f.marshal(f.bundle(f.child(0), f.addEvents(f.child(0), 2)))
	if _, err := ParseBundle(append(bytes.Repeat([]byte(" "), MaxBundleSize), data...)); !errors.Is(err, ErrBundleMalformed) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized: %v", err)
	}
	for name, edit := range map[string]func(b *Bundle){
		"format":         func(b *Bundle) { b.Format = "spoor.inzage-bundle/v2" },
		"no pseudonym":   func(b *Bundle) { b.Subject.Pseudonyms = nil },
		"bad pseudonym":  func(b *Bundle) { b.Subject.Pseudonyms[0].Pseudonym = "999990019" },
		"no covenants":   func(b *Bundle) { b.Covenants = nil },
		"long proof":     func(b *Bundle) { b.Entries[0].InclusionProof = make([]Base64Bytes, MaxProofLength+1) },
		"short hash":     func(b *Bundle) { b.Entries[0].InclusionProof[0] = b.Entries[0].InclusionProof[0][:31] },
		"relation":       func(b *Bundle) { b.Request.Relation = "buurman" },
		"released early": func(b *Bundle) { b.Request.ReleasedAt = b.Request.RequestedAt.Add(-time.Hour) },
		"bad party":      func(b *Bundle) { b.Scope.Parties = []string{"Gemeente Amersfoort"} },
		"ground":         func(b *Bundle) { b.Withheld = []WithheldEntry{{Index: 9, LeafRecord: []byte{1}, Ground: "geen"}} },
		"empty envelope": func(b *Bundle) { b.Entries[0].Envelope = nil },
		"no checkpoint":  func(b *Bundle) { b.Checkpoint = "" },
	} {
		var b Bundle
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		edit(&b)
		_, err := ParseBundle(f.marshal(&b))
		if !errors.Is(err, ErrBundleMalformed) {
			t.Errorf("%s: got %v, want ErrBundleMalformed", name, err)
		} else if strings.Contains(err.Error(), "999990019") {
			t.Errorf("%s: the message repeats a value: %v", name, err)
		}
	}
	// A number where a string belongs is refused without repeating it.
	bad := bytes.Replace(data, []byte(`"inzage-2025-0042"`), []byte(`999990019`), 1)
	if _, err := ParseBundle(bad); !errors.Is(err, ErrBundleMalformed) || strings.Contains(err.Error(), "999990019") {
		t.Errorf("mistyped id: %v", err)
	}
	// Lenient base64 (a line break) is refused.
	bad = bytes.Replace(data, []byte(`"leaf_record": "A`), []byte(`"leaf_record": "\nA`), 1)
	if _, err := ParseBundle(bad); !errors.Is(err, ErrBundleMalformed) || !strings.Contains(err.Error(), "base64") {
		t.Errorf("base64 with a line break: %v", err)
	}
}

// goldenBundleDir holds a bundle made once with -update-bundle, with the
// keys to pin: a vector of the format for other implementations.
const goldenBundleDir = "testdata/bundle"

func readBundleGolden(t testing.TB) (data []byte, keys *LogKeys, admin string) {
	t.Helper()
	return readBundleGoldenIn(t, goldenBundleDir)
}

// goldenBundleV3Dir holds a v3 bundle (with its completeness proof) made
// by a real ledger with the subject index (ledger/answer's
// TestUpdateBundleV3Golden, -update-bundle-v3), with the keys to pin.
const goldenBundleV3Dir = "testdata/bundle-v3"

func readBundleGoldenIn(t testing.TB, dir string) (data []byte, keys *LogKeys, admin string) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("golden bundle: %v", err)
		}
		return b
	}
	keys, err := ParseLogKeys(string(read("log.vkey")), string(read("cosigner.vkey")))
	if err != nil {
		t.Fatal(err)
	}
	return read("bundle.json"), keys, strings.TrimSpace(string(read("admin.pub")))
}

// TestUpdateBundleGolden rewrites testdata/bundle when run with
// -update-bundle.
func TestUpdateBundleGolden(t *testing.T) {
	if !*updateBundle {
		return
	}
	f := newInzageLog(t)
	alice := f.child(0)
	mine := f.addEvents(alice, 3)
	f.addEvents(f.child(1), 2)
	withheld := f.appendEnvelope(f.sign(f.event(alice, "de-kleine-schans")), f.covenant())
	erased := f.appendEnvelope(f.sign(f.event(alice, "")), f.covenant())
	tomb := f.tombstone(erased, "retention:default:1825d")
	b := f.bundle(alice, mine)
	b.Withheld = []WithheldEntry{{Index: withheld, LeafRecord: f.records[withheld], InclusionProof: f.proof(withheld), Ground: WithholdAVG23}}
	tomb.LeafRecord, tomb.InclusionProof = f.records[tomb.Index], f.proof(tomb.Index)
	b.Erased = []ErasedEntry{tomb}
	if err := os.MkdirAll(goldenBundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"bundle.json":   f.marshal(b),
		"log.vkey":      []byte(f.keys.logVkey + "\n"),
		"cosigner.vkey": []byte(f.keys.cosVkey + "\n"),
		"admin.pub":     []byte(f.demo.AdminVkey + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(goldenBundleDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGoldenBundle checks the golden bundle still verifies, and that it is
// in the one form MarshalBundle writes.
func TestGoldenBundle(t *testing.T) {
	data, keys, admin := readBundleGolden(t)
	vb, err := VerifyBundle(data, keys, admin)
	if err != nil {
		t.Fatalf("golden bundle: %v", err)
	}
	if len(vb.Disclosures) != 3 || len(vb.Withheld) != 1 || len(vb.Erased) != 1 || len(vb.Covenants) != 1 {
		t.Errorf("golden bundle: %d disclosures, %d withheld, %d erased", len(vb.Disclosures), len(vb.Withheld), len(vb.Erased))
	}
	again, err := MarshalBundle(vb.Bundle)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("golden bundle re-encodes differently (%v)", err)
	}
}

// TestGoldenBundleV3 checks the golden v3 bundle: it verifies as complete
// (every party of the covenant, a central desk's answer), re-encodes to
// the same bytes, and each of its index proofs, altered, is refused.
func TestGoldenBundleV3(t *testing.T) {
	data, keys, admin := readBundleGoldenIn(t, goldenBundleV3Dir)
	vb, err := VerifyBundle(data, keys, admin)
	if err != nil {
		t.Fatalf("golden v3 bundle: %v", err)
	}
	c := vb.Completeness
	if c == nil || len(c.Parties) == 0 || len(c.Parties) != len(vb.Bundle.Index.Proofs) || len(vb.Withheld) != 1 {
		t.Fatalf("golden v3 bundle: completeness %+v, %d withheld", c, len(vb.Withheld))
	}
	again, err := MarshalBundle(vb.Bundle)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("golden v3 bundle re-encodes differently (%v)", err)
	}
	if want := reflectBundleJSON(t, vb.Bundle); !bytes.Equal(want, data) {
		t.Error("the golden v3 bundle is not in encoding/json's form")
	}
	for i := range vb.Bundle.Index.Proofs {
		for _, part := range []string{"vrf", "proof", "list"} {
			b, _ := ParseBundle(data)
			p := &b.Index.Proofs[i]
			switch {
			case part == "vrf":
				p.VRFProof[3] ^= 1
			case part == "proof":
				p.Proof[len(p.Proof)-1] ^= 1
			case p.List != nil:
				p.List[len(p.List)-1] ^= 1
			default:
				continue
			}
			if _, err := VerifyParsedBundle(b, keys, admin); err == nil {
				t.Errorf("proofs[%d]: an altered %s verifies", i, part)
			}
		}
	}
}

// reflectBundleJSON is MarshalBundle as it was first written, with
// encoding/json's reflection: the form MarshalBundle must keep byte for
// byte.
func reflectBundleJSON(t *testing.T, b *Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMarshalBundleMatchesEncodingJSON holds MarshalBundle's hand-written
// encoder to encoding/json's output, on the golden bundle and on bundles
// with every field in its unusual forms: nil and empty lists, no body, a
// nil proof, strings that need escaping, times with zones and nanoseconds.
func TestMarshalBundleMatchesEncodingJSON(t *testing.T) {
	data, _, _ := readBundleGolden(t)
	golden, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	odd := *golden
	odd.Request.ID = "verzoek \"7\" <a&b> é\t\x01\u2028 \\ \xff"
	odd.Origin = "regio.example/spoor"
	odd.CreatedAt = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	odd.Scope.Parties = nil
	odd.Subject.Pseudonyms = []SubjectPseudonym{}
	odd.Entries = nil
	odd.Withheld = []WithheldEntry{{Index: 9, LeafRecord: []byte{}, InclusionProof: nil, Ground: WithholdUAVG41}}
	odd.Erased = []ErasedEntry{
		{Index: 12, LeafRecord: []byte{1, 2, 3}, InclusionProof: []Base64Bytes{}, ErasedIndex: 3, RuleID: "retention:x"},
		{Index: 13, LeafRecord: nil, InclusionProof: []Base64Bytes{nil, {0xff}}, Body: []byte("tomb"), ErasedAt: time.Time{}},
	}
	witnessed := *golden
	witnessed.Witnessed = []WitnessedCheckpoint{
		{Checkpoint: "o\n3\nAAAA\n\n— w \"x\" <y>\n", ConsistencyProof: []Base64Bytes{{1, 2}, {3}}},
		{Checkpoint: "o\n4\n", ConsistencyProof: []Base64Bytes{}},
		{Checkpoint: "", ConsistencyProof: nil},
	}
	answered := witnessed
	answered.Answer = &BundleAnswer{Index: 77, LeafRecord: []byte{1, 4}, InclusionProof: []Base64Bytes{{9}}, Body: []byte(`{"a":"<&>"}`)}
	nilProof := *golden
	nilProof.Answer = &BundleAnswer{Index: 0, LeafRecord: nil, InclusionProof: nil, Body: nil}
	empty := &Bundle{}
	indexed := answered
	indexed.Index = &BundleIndex{Head: BundleIndexHead{Index: 78, LeafRecord: []byte{5}, InclusionProof: []Base64Bytes{{7}, {8}}, Body: []byte(`{"root":"<>"}`)},
		Proofs: []BundleIndexProof{{Party: "p-1", KeyID: "k1", VRFProof: []byte{1}, List: []byte{2, 3}, Proof: []byte{4}},
			{Party: "p-2", KeyID: "k\"2", VRFProof: nil, List: nil, Proof: []byte{}}}}
	indexNil := *golden
	indexNil.Index = &BundleIndex{}
	for name, b := range map[string]*Bundle{"golden": golden, "odd": &odd, "witnessed": &witnessed, "answered": &answered,
		"nil answer fields": &nilProof, "empty": empty, "indexed": &indexed, "nil index fields": &indexNil} {
		got, err := MarshalBundle(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := reflectBundleJSON(t, b); !bytes.Equal(got, want) {
			t.Errorf("%s: MarshalBundle differs from encoding/json:\n got  %q\n want %q", name, got, want)
		}
	}
	if !bytes.Equal(reflectBundleJSON(t, golden), data) {
		t.Error("the golden bundle is not in encoding/json's form")
	}
}

// TestWitnessLineDropped: under a covenant whose policy wants two of three
// witnesses, a bundle whose checkpoint two cosigned verifies, naming them;
// with one of the two lines dropped it is refused for the witnesses alone.
func TestWitnessLineDropped(t *testing.T) {
	f, good, dropped := witnessedBundles(t)
	vb, err := f.verify(good)
	if err != nil {
		t.Fatalf("a bundle the quorum cosigned: %v", err)
	}
	if vb.Witnesses == nil || len(vb.Witnesses.Cosigned) != 2 {
		t.Errorf("the verified bundle names the witnesses %+v, want two", vb.Witnesses)
	}
	_, err = f.verify(dropped)
	var es BundleErrors
	if !errors.As(err, &es) || len(es) != 1 || !errors.Is(es[0], ErrWitnesses) {
		t.Fatalf("one witness line dropped: %v; want ErrWitnesses as the only problem", err)
	}
}
