package verifier

// This file lends the report tests (report_test.go, package verifier_test,
// which render with verifier/report: a package that imports this one, so
// its tests of real bundles live here, next to the log they build) the
// fixtures of this package's own tests.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/synth"
)

// ReportFixture is reportFixture for the report tests: the children of the
// log and a verified bundle about the first one.
func ReportFixture(t *testing.T) ([]synth.Child, *VerifiedBundle) {
	f, vb := reportFixture(t)
	return f.gen.Children(), vb
}

// reportFixture builds a verified bundle with disclosures (among them a
// special category and a covenant finding), a withheld and an erased entry.
func reportFixture(t *testing.T) (*inzageLog, *VerifiedBundle) {
	t.Helper()
	f := newInzageLog(t)
	alice := f.child(0)
	mine := f.addEvents(alice, 5)
	f.addEvents(f.child(1), 3)
	// Health data, shared by the GGD with the wijkteam, with consent.
	d := f.event(alice, "ggd-regio-utrecht")
	d.Recipients = []string{"wijkteams-amersfoort"}
	d.Purpose, d.Categories = "signalering", []string{"identificatie", "gezondheid"}
	d.LegalBasis = events.LegalBasis{Ground: "e", Exception: "avg-9-2-h"}
	d.Consent = &events.Consent{Reference: "toestemming-000123", GivenBy: events.ConsentParents}
	// A careless justification with the child's BSN in it, in two
	// spellings: the report must not show it.
	d.Justification = "Zorgen gemeld door de jeugdarts (BSN " + alice.BSN + ", ook " + alice.BSN[:4] + "." + alice.BSN[4:6] + "." + alice.BSN[6:] + ")."
	mine = append(mine, f.appendEnvelope(f.sign(d), f.covenant()))
	withheld := f.appendEnvelope(f.sign(f.event(alice, "de-kleine-schans")), f.covenant())
	erased := f.appendEnvelope(f.sign(f.event(alice, "")), f.covenant())
	tomb := f.tombstone(erased, "retention:gezondheid:730d")
	b := f.bundle(alice, mine)
	b.Withheld = []WithheldEntry{{Index: withheld, LeafRecord: f.records[withheld], InclusionProof: f.proof(withheld), Ground: WithholdUAVG41}}
	tomb.LeafRecord, tomb.InclusionProof = f.records[tomb.Index], f.proof(tomb.Index)
	b.Erased = []ErasedEntry{tomb}
	vb, err := f.verify(f.marshal(b))
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	return f, vb
}

// PossibleBSNFixture is, for the report tests, a log whose first child has
// a disclosure with their BSN (once with dashes, returned as dashed) in its
// case and consent references, an unknown recipient and an unknown
// category, logged at leaf idx after one plain disclosure: the child, the
// dashed BSN, the leaf, the bundle and the bundle verified.
func PossibleBSNFixture(t *testing.T) (alice synth.Child, dashed string, idx uint64, bundle []byte, vb *VerifiedBundle) {
	t.Helper()
	f := newInzageLog(t)
	alice = f.child(0)
	d := f.event(alice, "ggd-regio-utrecht")
	dashed = alice.BSN[:4] + "-" + alice.BSN[4:6] + "-" + alice.BSN[6:]
	d.CaseRef = "dossier " + alice.BSN
	d.Recipients = []string{"wijkteams-amersfoort", "school-typfout-zoveel"}
	d.Categories = append(d.Categories, "dossier-geheim-xyz")
	d.Consent = &events.Consent{Reference: "toestemming " + dashed, GivenBy: events.ConsentParents}
	plain := f.addEvents(alice, 1)
	idx = f.appendEnvelope(f.sign(d), f.covenant())
	bundle = f.marshal(f.bundle(alice, append(plain, idx)))
	vb, err := f.verify(bundle)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	return alice, dashed, idx, bundle, vb
}

// NoDisclosuresFixture is, for the report tests, a verified bundle about
// a child with no disclosures, from a log with two about another child.
func NoDisclosuresFixture(t *testing.T) *VerifiedBundle {
	t.Helper()
	f := newInzageLog(t)
	f.addEvents(f.child(1), 2)
	vb, err := f.verify(f.marshal(f.bundle(f.child(0), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return vb
}

// ReadBundleGolden is readBundleGolden for the fuzz target in
// report_test.go.
func ReadBundleGolden(t testing.TB) (data []byte, keys *LogKeys, admin string) {
	return readBundleGolden(t)
}

// PageBundle is a bundle for the parent's page tests (verifypage_test.go)
// with the texts of the keys to check it with, as a page carries them.
type PageBundle struct {
	Name                             string
	Data                             []byte
	LogVkey, CosignerVkey, AdminVkey string
}

// PageBundles returns the good bundle of the tamper table, every case of
// the tamper table (TestBundleTamperTable) as the page would be given it,
// and a v2 bundle with its answer entry, untampered and with a changed
// request time.
func PageBundles(t *testing.T) []PageBundle {
	t.Helper()
	f, goodData, cases := bundleTamperCases(t)
	out := []PageBundle{{Name: "untampered", Data: goodData, LogVkey: f.keys.logVkey, CosignerVkey: f.keys.cosVkey, AdminVkey: f.demo.AdminVkey}}
	for _, tc := range cases {
		data, _, admin := tc.apply(t, f, goodData)
		l := f.keys
		if tc.keys != nil {
			if tc.vkeys == nil || tc.vkeys.keys != tc.keys {
				t.Fatalf("tamper case %q pins other keys without naming their texts (vkeys)", tc.name)
			}
			l = tc.vkeys
		}
		out = append(out, PageBundle{Name: tc.name, Data: data, LogVkey: l.logVkey, CosignerVkey: l.cosVkey, AdminVkey: admin})
	}
	g, v2 := answeredBundle(t)
	pb := func(name string, b *Bundle) PageBundle {
		return PageBundle{Name: name, Data: g.marshal(b), LogVkey: g.keys.logVkey, CosignerVkey: g.keys.cosVkey, AdminVkey: g.demo.AdminVkey}
	}
	later := *v2
	later.Request.RequestedAt = later.Request.RequestedAt.Add(time.Hour)
	out = append(out, pb("v2 untampered", v2), pb("v2 with a changed request time", &later))
	w, good, dropped := witnessedBundles(t)
	wb := func(name string, data []byte) PageBundle {
		return PageBundle{Name: name, Data: data, LogVkey: w.keys.logVkey, CosignerVkey: w.keys.cosVkey, AdminVkey: w.demo.AdminVkey}
	}
	out = append(out, wb("witnessed by the quorum", good), wb("one witness line dropped", dropped))
	return out
}

// answeredBundle builds a v2 bundle: three disclosures about a child, and
// the answer entry logged after them that names the bundle's metadata.
func answeredBundle(t *testing.T) (*inzageLog, *Bundle) {
	t.Helper()
	f := newInzageLog(t)
	alice := f.child(0)
	mine := f.addEvents(alice, 3)
	f.addEvents(f.child(1), 1)
	meta := f.bundle(alice, mine)
	body, err := MarshalAnswerBody(&AnswerBody{Format: AnswerFormat, Origin: meta.Origin, CreatedAt: meta.CreatedAt, Request: meta.Request,
		RequestedBy: DeskUserID("desk-user-1"), ReleasedBy: DeskUserID("desk-user-2"), Scope: meta.Scope, Subject: meta.Subject,
		TreeSize: uint64(len(f.records)), Included: mine, Withheld: []AnswerWithheld{}, Erased: []uint64{}})
	if err != nil {
		t.Fatal(err)
	}
	idx := f.appendLeaf(LeafRecord{Type: EntryAnswer, BodyHash: sha256.Sum256(body), IntegratedAt: f.tick(), CovenantIndex: f.covenant()}, body)
	b := f.bundle(alice, mine)
	b.CreatedAt, b.Request = meta.CreatedAt, meta.Request
	b.Format = BundleFormatV2
	b.Answer = &BundleAnswer{Index: idx, LeafRecord: f.records[idx], InclusionProof: f.proof(idx), Body: body}
	if _, err := f.verify(f.marshal(b)); err != nil {
		t.Fatalf("the v2 bundle does not verify: %v", err)
	}
	return f, b
}

// ManyDisclosuresBundle is a good bundle of n disclosures about one child,
// in a log that holds as many about another, with one covenant version.
func ManyDisclosuresBundle(t *testing.T, n int) PageBundle {
	t.Helper()
	f := newInzageLog(t)
	alice := f.child(0)
	var mine []uint64
	for range n {
		mine = append(mine, f.addEvents(alice, 1)...)
		f.addEvents(f.child(1), 1)
	}
	data := f.marshal(f.bundle(alice, mine))
	if _, err := f.verify(data); err != nil {
		t.Fatalf("the bundle of %d disclosures does not verify: %v", n, err)
	}
	return PageBundle{Name: fmt.Sprintf("%d disclosures", n), Data: data, LogVkey: f.keys.logVkey, CosignerVkey: f.keys.cosVkey, AdminVkey: f.demo.AdminVkey}
}

// ReadBundleGoldenV3 is readBundleGoldenIn of the golden v3 bundle, for
// the fuzz target in report_test.go.
func ReadBundleGoldenV3(t testing.TB) (data []byte, keys *LogKeys, admin string) {
	t.Helper()
	return readBundleGoldenIn(t, goldenBundleV3Dir)
}

// witnessedBundles builds a log whose covenant version 2 names three
// witnesses with a quorum of two, and returns its bundle with a checkpoint
// the quorum cosigned, and the same bundle with one witness line dropped
// (below the quorum: ErrWitnesses).
func witnessedBundles(t *testing.T) (f *inzageLog, good, dropped []byte) {
	t.Helper()
	f = newInzageLog(t)
	var signers []note.Signer
	var policy strings.Builder
	for i := range 3 {
		skey, vkey, err := GenerateWitnessKey(fmt.Sprintf("witness.example/fg-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		s, err := fnote.NewSignerForCosignatureV1(skey)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
		fmt.Fprintf(&policy, "  witness fg-%d %s\n", i, vkey)
	}
	policy.WriteString("  group fgs 2 fg-0 fg-1 fg-2\n  quorum fgs\n")
	v1 := f.demo.Signed
	y := string(v1.Envelope.Payload)
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+v1.Hash()+"\"\n", 1)
	y = strings.TrimRight(y, "\n") + "\nwitness_policy: |\n" + policy.String()
	signed, err := events.SignCovenant([]byte(y), f.demo.AdminSkey)
	if err != nil {
		t.Fatal(err)
	}
	f.appendCovenant(signed)
	alice := f.child(0)
	mine := f.addEvents(alice, 3)
	f.addEvents(f.child(1), 1)
	b := f.bundle(alice, mine)
	cp := []byte(b.Checkpoint)
	text := cp[:bytes.LastIndex(cp, []byte("\n\n"))+1]
	var lines []string
	for _, s := range signers[:2] {
		cosigned, err := note.Sign(&note.Note{Text: string(text)}, s)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(cosigned[len(text)+1:]))
	}
	b.Checkpoint = string(cp) + strings.Join(lines, "")
	good = f.marshal(b)
	b.Checkpoint = string(cp) + lines[0]
	dropped = f.marshal(b)
	return f, good, dropped
}
