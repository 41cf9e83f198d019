//go:build !js

package report

// This file renders the FG's audit report in Dutch: one self-contained,
// printable HTML page (inline CSS, no scripts, no external assets) from the
// audit.Report (verifier/audit), the same report `spoor audit --json`
// prints. It names no child, pseudonym or staff member: the audit.Report
// holds none.

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/verifier/audit"
)

//go:embed audit.html.tmpl
var auditReportFS embed.FS

// WriteAudit renders the Dutch audit report of rep to w: what was checked
// and with which keys, the failed checks, the disclosures per party,
// purpose, category and rule, the anomalies with their definitions, the
// erasures on request, every inzage answer on the record (with each
// withholding and its ground) and the covenant versions.
func WriteAudit(w io.Writer, rep *audit.Report) error {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zoneNL).Format("02-01-2006 15:04:05 MST")
		},
		"check": func(c audit.Check) string { return labelOrID(checkLabels, c) },
		"pct":   func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) },
		"num": func(x float64) string {
			return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", x), "0"), ".")
		},
		"special": specialLabel,
		"more": func() []moreProblems {
			listed := map[audit.Check]int{}
			for _, p := range rep.Problems {
				listed[p.Check]++
			}
			var out []moreProblems
			for c, n := range rep.ProblemCounts {
				if n > listed[c] {
					out = append(out, moreProblems{Check: c, Count: n - listed[c]})
				}
			}
			return out
		},
		"partyName": func(id string) string {
			for _, p := range rep.ByParty {
				if p.Party == id {
					return p.Name
				}
			}
			return id
		},
		"erasureStatusNL": func(st string) string { return labelOrID(erasureStatusLabels, st) },
		"erasureGroundNL": ErasureGroundLabel,
		"withholdNL":      func(g string) string { return labelOrID(withholdLabels, g) },
		"relationNL":      func(r string) string { return labelOrID(relationLabels, r) },
		"youngPersonNL": func(a audit.AnswerInfo) string {
			if a.YoungPerson == nil {
				return ""
			}
			return YoungPersonText(a.YoungPerson, labelOrID(relationLabels, a.Relation))
		},
	}
	t, err := template.New("audit.html.tmpl").Funcs(funcs).ParseFS(auditReportFS, "audit.html.tmpl")
	if err != nil {
		return fmt.Errorf("the report template: %w", err)
	}
	return render(w, t, rep)
}

// moreProblems is a row of the problems table for the problems of one
// check beyond those the report lists.
type moreProblems struct {
	Check audit.Check
	Count int
}
