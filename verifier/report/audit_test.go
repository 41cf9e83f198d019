package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// TestAuditReportLabelsEveryCheck renders a failed audit with a problem of
// every check and an erasure proposal of every status and every ground: the
// FG's page shows each in Dutch, never as its raw id, and marks special
// categories with the wording the parent's report uses.
func TestAuditReportLabelsEveryCheck(t *testing.T) {
	at := time.Date(2025, 3, 14, 9, 26, 0, 0, time.UTC)
	rep := &audit.Report{Origin: "spoor.example/test", GeneratedAt: at, ProblemCounts: map[audit.Check]int{},
		ByCategory:        []audit.CategoryCount{{ID: "gezondheid", Label: "Gezondheid", Special: events.SpecialArt9, Count: 1}},
		ErasuresOnRequest: &audit.ErasuresOnRequest{Available: true, DailyLimit: 5}}
	for i, c := range audit.Checks() {
		leaf := uint64(i)
		rep.Problems = append(rep.Problems, audit.Problem{Check: c, Leaf: &leaf, Message: "m"})
		rep.ProblemCounts[c] = 1
	}
	for _, s := range verifier.ErasureStatuses() {
		rep.ErasuresOnRequest.Proposals = append(rep.ErasuresOnRequest.Proposals, verifier.ErasureProposal{ID: "e-" + s, Status: s, Ground: "avg-17-1-a", ProposedAt: at})
	}
	grounds := verifier.ErasureGrounds()
	for _, g := range grounds {
		rep.ErasuresOnRequest.Proposals = append(rep.ErasuresOnRequest.Proposals, verifier.ErasureProposal{ID: "g-" + g, Status: verifier.ErasureConfirmed, Ground: g, ProposedAt: at})
	}
	var buf bytes.Buffer
	if err := WriteAudit(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, c := range audit.Checks() {
		if strings.Contains(page, "<td>"+string(c)+"</td>") {
			t.Errorf("the page shows check %s as its id", c)
		}
		if !strings.Contains(page, "<td>"+checkLabels[c]+"</td>") {
			t.Errorf("the page does not show check %s as %q", c, checkLabels[c])
		}
	}
	for _, s := range verifier.ErasureStatuses() {
		if !strings.Contains(page, "<td>"+erasureStatusLabels[s]+"</td>") {
			t.Errorf("the page does not show status %s as %q", s, erasureStatusLabels[s])
		}
	}
	for _, g := range grounds {
		if strings.Contains(page, ">"+g+"<") {
			t.Errorf("the page shows erasure ground %s as its id", g)
		}
		if !strings.Contains(page, "<td>"+erasureGroundLabels[g]+"</td>") {
			t.Errorf("the page does not show erasure ground %s as %q", g, erasureGroundLabels[g])
		}
	}
	if !strings.Contains(page, "<td>"+specialLabel(events.SpecialArt9)+"</td>") {
		t.Errorf("the page does not mark a special category as %q", specialLabel(events.SpecialArt9))
	}
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url(", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
}

// TestAuditReportListsEveryAnswer: the FG's page lists every answer on the
// record with its leaf, request, relation, release time, scope and counts,
// each withholding with its ground in Dutch (never the raw id), and a
// recorded young-person decision in words.
func TestAuditReportListsEveryAnswer(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)
	rep := &audit.Report{Origin: "spoor.example/test", GeneratedAt: at, OK: true, ProblemCounts: map[audit.Check]int{},
		ByParty: []audit.PartyStats{{Party: "gemeente-a", Name: "Gemeente A"}},
		Entries: audit.EntryCounts{Answers: 2},
		Answers: []audit.AnswerInfo{
			{Leaf: 301, RequestID: "req-one", Relation: verifier.RelationParent, ReleasedAt: at, RequestedBy: "aaaaaaaaaaaaaaaa", ReleasedBy: "bbbbbbbbbbbbbbbb",
				Parties: []string{"gemeente-a"}, TreeSize: 300, Included: 7, Erased: 1,
				Withheld: []verifier.AnswerWithheld{{Index: 17, Ground: verifier.WithholdAVG23}, {Index: 42, Ground: verifier.WithholdUAVG41}}},
			{Leaf: 402, RequestID: "req-two", Relation: verifier.RelationGuardian, ReleasedAt: at.Add(time.Hour), RequestedBy: "cccccccccccccccc", ReleasedBy: "dddddddddddddddd",
				CentralDesk: true, Parties: []string{"gemeente-a"}, TreeSize: 400, Included: 3, Withheld: []verifier.AnswerWithheld{},
				YoungPerson: &verifier.AnswerYoungPerson{Decision: verifier.YoungPersonConsented, ConsentReference: "dossier 7", Leaves: []uint64{350}}},
		}}
	var buf bytes.Buffer
	if err := WriteAudit(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"Inzageantwoorden (2)", "2 inzageantwoorden",
		`<td class="n">301</td><td class="mono">req-one</td><td>` + relationLabels[verifier.RelationParent] + `</td><td>14-03-2026 10:26:00 CET</td><td>Gemeente A</td><td class="n">7</td><td class="n">2</td><td class="n">1</td>`,
		"achtergehouden: leaf 17, op grond van " + withholdLabels[verifier.WithholdAVG23],
		"achtergehouden: leaf 42, op grond van " + withholdLabels[verifier.WithholdUAVG41],
		`<td class="mono">req-two</td><td>` + relationLabels[verifier.RelationGuardian] + `</td>`, "alle partijen (centraal loket)",
		"16 jaar of ouder", "kenmerk: dossier 7",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, raw := range []string{">" + verifier.WithholdAVG23 + "<", "van " + verifier.WithholdUAVG41 + "<"} {
		if strings.Contains(page, raw) {
			t.Errorf("the page shows a ground as its id: %q", raw)
		}
	}
}
