package events

import (
	"strings"
	"testing"
)

func TestPossibleBSN(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", false},
		{"999990019", true},
		{"BSN 9999.90.019 genoemd", true},
		{"9999 90 019", true},
		{"9999-90-019", true},
		{"m999990019x", true},
		{"123456789", false},             // fails the elfproef
		{"000000000", false},             // zero
		{"9999900190", false},            // ten digits
		{"99999001", false},              // eight
		{"casus 2025-0042", false},       // eight, grouped
		{"tel 06-12345678", false},       // ten, grouped
		{"123456789 en 999990019", true}, // the second passes
	} {
		if got := PossibleBSN(tc.s); got != tc.want {
			t.Errorf("PossibleBSN(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestCheckFindsPossibleBSN: a BSN-shaped number in the free-text fields is
// a possible-bsn finding on that field (not a rejection), and the message
// does not repeat it.
func TestCheckFindsPossibleBSN(t *testing.T) {
	c := mustParse(t, readTestdata(t, "valid.yaml"))
	d := testDisclosure(t)
	base := len(c.Check(d))
	d.Justification = "besproken, BSN 9999.90.019"
	d.CaseRef = "casus-2025-0042"
	d.Actor.StaffID = "999990019"
	fs := c.Check(d)
	got := map[string]bool{}
	for _, f := range fs {
		if f.Rule == RulePossibleBSN {
			got[f.Field] = true
			if strings.Contains(f.Message, "999990019") || strings.Contains(f.Message, "9999.90.019") {
				t.Errorf("the finding repeats the number: %q", f.Message)
			}
		}
	}
	if len(fs) != base+2 || !got["justification"] || !got["actor.staff_id"] {
		t.Errorf("findings %+v, want possible-bsn on justification and actor.staff_id", fs)
	}
}

func BenchmarkPossibleBSNFields(b *testing.B) {
	d := &Disclosure{Justification: strings.Repeat("MDO op verzoek van ouders en school, casus 2025-0042; ", 4),
		CaseRef: "casus-2025-0042", Actor: Actor{StaffID: "ggd-3c91"}}
	b.ReportAllocs()
	for b.Loop() {
		if PossibleBSNFields(d) != nil {
			b.Fatal("found one")
		}
	}
}
