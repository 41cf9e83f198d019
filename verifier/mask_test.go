package verifier

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

func TestMaskFreeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"geen nummer", "geen nummer"},
		{"BSN 999990019.", "BSN [nummer weggelaten]."},
		{"9999.90.019 en 9999 90 019 en 9999-90-019", "[nummer weggelaten] en [nummer weggelaten] en [nummer weggelaten]"},
		{"m999990019", "m[nummer weggelaten]"},
		{"tel 06-12345678, casus 2025-0042, 18-03-2025", "tel 06-12345678, casus 2025-0042, 18-03-2025"},
		{"1234567890 is tien cijfers", "1234567890 is tien cijfers"},
		{"123456789 (geen elfproef, toch verborgen)", "[nummer weggelaten] (geen elfproef, toch verborgen)"},
	} {
		if got := MaskFreeText(tc.in); got != tc.want {
			t.Errorf("MaskFreeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := UnknownValueNL("school-typfout"); got != "onbekende waarde (14 tekens)" {
		t.Errorf("UnknownValueNL = %q", got)
	}
}

// TestReportMasksPossibleBSNAndUnknownIDs: a disclosure with a BSN (with
// dashes) in its consent reference and its case reference, an unknown
// recipient and an unknown category: the parent's report shows the
// possible-bsn finding, masks the number, and shows the unknown ids as
// "onbekende waarde (n tekens)", never verbatim; the bundle is flagged for
// the desk user who releases it.
func TestReportMasksPossibleBSNAndUnknownIDs(t *testing.T) {
	f := newInzageLog(t)
	alice := f.child(0)
	d := f.event(alice, "ggd-regio-utrecht")
	dashed := alice.BSN[:4] + "-" + alice.BSN[4:6] + "-" + alice.BSN[6:]
	d.CaseRef = "dossier " + alice.BSN
	d.Recipients = []string{"wijkteams-amersfoort", "school-typfout-zoveel"}
	d.Categories = append(d.Categories, "dossier-geheim-xyz")
	d.Consent = &events.Consent{Reference: "toestemming " + dashed, GivenBy: events.ConsentParents}
	plain := f.addEvents(alice, 1)
	idx := f.appendEnvelope(f.sign(d), f.covenant())
	bundle := f.marshal(f.bundle(alice, append(plain, idx)))

	vb, err := f.verify(bundle)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	fields := map[string]bool{}
	for _, vd := range vb.Disclosures {
		for _, fd := range vd.Findings {
			if fd.Rule == events.RulePossibleBSN {
				fields[fd.Field] = true
				if strings.Contains(fd.Message, alice.BSN) {
					t.Errorf("the finding repeats the number: %q", fd.Message)
				}
			}
		}
	}
	if !fields["case_ref"] || !fields["consent.reference"] || len(fields) != 2 {
		t.Errorf("possible-bsn findings on %v, want case_ref and consent.reference", fields)
	}

	var buf bytes.Buffer
	if err := WriteInzageReport(&buf, vb); err != nil {
		t.Fatal(err)
	}
	text := htmlText(buf.String())
	for _, bad := range []string{alice.BSN, dashed, "school-typfout-zoveel", "dossier-geheim-xyz"} {
		if strings.Contains(text, bad) {
			t.Errorf("the report shows %q", bad)
		}
	}
	for _, want := range []string{"onbekende waarde (21 tekens)", "onbekende waarde (18 tekens)",
		events.FindingLabelNL(events.RulePossibleBSN), "[nummer weggelaten]"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report does not show %q", want)
		}
	}

	leaves, err := BundlePossibleBSN(bundle)
	if err != nil || len(leaves) != 1 || leaves[0] != idx {
		t.Errorf("BundlePossibleBSN = %v, %v; want [%d]", leaves, err, idx)
	}
}
