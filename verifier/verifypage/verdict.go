package verifypage

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
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
	// AboutChild is the parent's own check with the child's number (issue
	// 23), when the page was given the number and the sealed proof and the
	// bundle verified.
	AboutChild *AboutChildVerdict `json:"about_child,omitempty"`
}

// AboutChildVerdict is the verdict of the parent's own check: whether the
// bundle's disclosures carry the VRF output the number proves.
type AboutChildVerdict struct {
	// OK is true only when verifier.VerifiedBundle.CheckAboutChild passed.
	OK bool `json:"ok"`
	// NL says the verdict in Dutch, for the parent.
	NL string `json:"nl"`
	// Detail is the check's own message (for the helpdesk); it never holds
	// the number.
	Detail string `json:"detail,omitempty"`
	// Checked and NotCheckable count the disclosures as CheckAboutChild did.
	Checked      int `json:"checked"`
	NotCheckable int `json:"not_checkable"`
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
	v, _ := check(bundle, keys)
	return v
}

// CheckAboutChild is Check and then, when the bundle verified, the parent's
// own check: the sealed proof (its base64 text, as the desk hands it out)
// opened with the number the parent typed. The number goes no further.
func CheckAboutChild(bundle []byte, keys Keys, sealed, number string) Verdict {
	v, vb := check(bundle, keys)
	if vb == nil {
		return v
	}
	v.AboutChild = aboutChildVerdict(vb, sealed, number)
	return v
}

func aboutChildVerdict(vb *verifier.VerifiedBundle, sealed, number string) *AboutChildVerdict {
	var sp aboutchild.SealedProof
	if err := sp.UnmarshalText([]byte(strings.TrimSpace(sealed))); err != nil {
		return &AboutChildVerdict{NL: "Het controlebestand is beschadigd of is geen controlebestand van de privacybalie.", Detail: err.Error()}
	}
	res, err := vb.CheckAboutChild(&sp, sp.IDType, strings.TrimSpace(number))
	switch {
	case err == nil:
		nl := fmt.Sprintf("Dit overzicht gaat over uw kind. U heeft dat zelf gecontroleerd met het nummer van uw kind (%d %s).",
			res.Checked, plural(res.Checked, "verstrekking", "verstrekkingen"))
		if res.NotCheckable > 0 {
			nl += fmt.Sprintf(" %d %s: %s.", res.NotCheckable, plural(res.NotCheckable, "verstrekking", "verstrekkingen"), aboutchild.NotCheckableNL)
		}
		return &AboutChildVerdict{OK: true, NL: nl, Checked: res.Checked, NotCheckable: res.NotCheckable}
	case errors.Is(err, aboutchild.ErrInvalidNumber):
		return &AboutChildVerdict{NL: "Dit is geen geldig nummer. Kijk of u het goed heeft getypt.", Detail: err.Error()}
	case errors.Is(err, aboutchild.ErrNotThisChild):
		return &AboutChildVerdict{NL: "Dit nummer past niet bij dit bestand. Het bestand gaat over een ander kind, of het nummer is verkeerd getypt.", Detail: err.Error()}
	case errors.Is(err, verifier.ErrNothingToCheck):
		return &AboutChildVerdict{NL: "In dit bestand staat niets dat u met het nummer kunt controleren.", Detail: err.Error()}
	default:
		return &AboutChildVerdict{NL: "Dit bestand gaat niet alleen over uw kind. Vertrouw het niet. Neem contact op met de privacybalie.", Detail: err.Error()}
	}
}

// check is Check, also returning what verified (nil when it did not).
func check(bundle []byte, keys Keys) (Verdict, *verifier.VerifiedBundle) {
	logKeys, err := verifier.ParseLogKeys(keys.Log, keys.Cosigner)
	if err != nil {
		err = fmt.Errorf("%w: the page's log keys: %w", verifier.ErrPinnedKeys, err)
		return Verdict{Problems: []Problem{{NL: report.BundleProblemNL(err), Detail: err.Error()}}}, nil
	}
	vb, err := verifier.VerifyBundle(bundle, logKeys, keys.Admin)
	if err != nil {
		var es verifier.BundleErrors
		if !errors.As(err, &es) {
			return Verdict{Problems: []Problem{{NL: report.BundleProblemNL(err), Detail: err.Error()}}}, nil
		}
		v := Verdict{Problems: make([]Problem, len(es))}
		for i, e := range es {
			v.Problems[i] = Problem{NL: report.BundleProblemNL(e), Detail: e.Error()}
		}
		return v, nil
	}
	var buf bytes.Buffer
	if err := report.WriteInzage(&buf, vb); err != nil {
		// The bundle verified, but without its report the page cannot
		// show what it says: not a pass the reader can use.
		return Verdict{Problems: []Problem{{NL: "Het bewijs klopt, maar het overzicht kon niet worden gemaakt.", Detail: err.Error()}}}, nil
	}
	return Verdict{OK: true, Summary: summaryNL(vb), Report: buf.String()}, vb
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
