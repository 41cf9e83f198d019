package verifier

// This file lends the report tests (report_test.go, package verifier_test,
// which render with verifier/report: a package that imports this one, so
// its tests of real bundles live here, next to the log they build) the
// fixtures of this package's own tests.

import (
	"testing"

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
