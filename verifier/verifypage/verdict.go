package verifypage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// Keys are the pinned keys the page carries, as the covenant publishes
// them: the log's and the cosigner's signed-note verifier keys and the
// covenant administrator's key.
type Keys struct {
	Log      string `json:"log_vkey"`
	Cosigner string `json:"cosigner_vkey"`
	Admin    string `json:"admin_vkey"`
}

// Verdict is what the page shows after a check: whether the bundle
// verified, and either the Dutch report rendered from what verified or
// every problem found.
type Verdict struct {
	// OK is true only when verifier.VerifyBundle accepted the bundle.
	OK bool `json:"ok"`
	// Summary is one line in Dutch of what verified (only when OK).
	Summary string `json:"summary,omitempty"`
	// Report is report.WriteInzage's page (only when OK).
	Report string `json:"report,omitempty"`
	// Problems are the failed checks, in the order checked.
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one failed check: its Dutch sentence for the reader
// (report.BundleProblemNL) and spoor verify's own message for the helpdesk.
type Problem struct {
	NL     string `json:"nl"`
	Detail string `json:"detail"`
}

// Check verifies a bundle against the pinned keys with
// verifier.VerifyBundle and renders the Dutch report of what verified. It
// never fails: every error becomes a problem of the verdict.
func Check(bundle []byte, keys Keys) Verdict {
	logKeys, err := verifier.ParseLogKeys(keys.Log, keys.Cosigner)
	if err != nil {
		err = fmt.Errorf("%w: the page's log keys: %w", verifier.ErrPinnedKeys, err)
		return Verdict{Problems: []Problem{{NL: report.BundleProblemNL(err), Detail: err.Error()}}}
	}
	vb, err := verifier.VerifyBundle(bundle, logKeys, keys.Admin)
	if err != nil {
		var es verifier.BundleErrors
		if !errors.As(err, &es) {
			return Verdict{Problems: []Problem{{NL: report.BundleProblemNL(err), Detail: err.Error()}}}
		}
		v := Verdict{Problems: make([]Problem, len(es))}
		for i, e := range es {
			v.Problems[i] = Problem{NL: report.BundleProblemNL(e), Detail: e.Error()}
		}
		return v
	}
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		// The bundle verified, but without its report the page cannot
		// show what it says: not a pass the reader can use.
		return Verdict{Problems: []Problem{{NL: "Het bewijs klopt, maar het overzicht kon niet worden gemaakt.", Detail: err.Error()}}}
	}
	return Verdict{OK: true, Summary: summaryNL(vb), Report: buf.String()}
}

// summaryNL says in one Dutch line what verified.
func summaryNL(vb *verifier.VerifiedBundle) string {
	s := fmt.Sprintf("%d %s over uw kind", len(vb.Disclosures), plural(len(vb.Disclosures), "verstrekking", "verstrekkingen"))
	if n := len(vb.Withheld); n > 0 {
		s += fmt.Sprintf(", %d niet getoond op grond van de wet", n)
	}
	if n := len(vb.Erased); n > 0 {
		s += fmt.Sprintf(", %d verwijderd", n)
	}
	s += ". Alles staat in het register met de sleutels van deze pagina."
	if vb.Witnesses != nil {
		s += " Onafhankelijke getuigen hebben het register bevestigd."
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
