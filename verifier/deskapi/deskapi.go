// Package deskapi holds the bodies of the ledger's desk routes (inzage
// requests and their answers, previews, erasure proposals): the one
// definition that the server (ledger/httpapi), the desk's workflows
// (ledger/answer), `spoor inzage` and the privacy desk's own screen (desk)
// all use, so that client and server cannot drift. It is a leaf on the
// verifier side: the formats, no HTTP handler, no store.
//
// Data flow: the desk sends InzageRegisterRequest (pseudonyms, never a
// number) and gets an InzageStatus; GET .../preview gives the second desk
// user an InzagePreview, from which an InzageReleaseRequest names what is
// withheld (Withhold); ErasureRequest proposes an erasure. A warning that
// must not change a body travels in WarningHeader.
package deskapi

import (
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// WarningHeader carries a warning for the desk user beside an answer whose
// body must stay as it is (the release's body is the bundle itself).
const WarningHeader = "Spoor-Warning"

// Access request statuses (InzageStatus.Status).
const (
	AccessRegistered = "registered"
	AccessReleased   = "released"
)

// InzageRegisterRequest is the body of POST /v1/inzage. The desk sends
// pseudonyms, never the number itself: `spoor inzage request` and `spoor
// desk` compute them under every pseudonym key from the number they read.
type InzageRegisterRequest struct {
	IDType         events.IDType               `json:"id_type"`
	Pseudonyms     []verifier.SubjectPseudonym `json:"pseudonyms"`
	Relation       string                      `json:"relation"`
	Child16OrOlder bool                        `json:"child_16_or_older"`
}

// InzageStatus is the answer of POST /v1/inzage and GET /v1/inzage/<id>.
type InzageStatus struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Relation    string     `json:"relation"`
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	ReleasedBy  string     `json:"released_by,omitempty"`
	ReleasedAt  *time.Time `json:"released_at,omitempty"`
	Parties     []string   `json:"parties"`
	CentralDesk bool       `json:"central_desk"`
}

// InzageList is the answer of GET /v1/inzage: the requests of the desk
// user's scope, oldest first.
type InzageList struct {
	Requests []InzageStatus `json:"requests"`
}

// Withhold names a disclosure withheld from an answer and the legal ground.
type Withhold struct {
	Index  uint64 `json:"index"`
	Ground string `json:"ground"`
}

// InzageReleaseRequest is the body of POST /v1/inzage/<id>/release.
type InzageReleaseRequest struct {
	Withheld []Withhold `json:"withheld"`
	// YoungPersonConsent records, for a parent or guardian asking about a
	// young person whom disclosures show to be 16 or over, that the young
	// person consented to this answer; ConsentReference says where that
	// consent is kept (a case or document number, never a BSN). Without
	// it such a release is refused: 409 young_person_16_plus.
	YoungPersonConsent bool   `json:"young_person_consent,omitempty"`
	ConsentReference   string `json:"consent_reference,omitempty"`
}

// InzagePreview is the answer of GET /v1/inzage/<id>/preview: what the
// answer of a registered request would show if released now, for the
// second desk user to choose what to withhold. It carries no pseudonym,
// no free text (a justification may hold anything, a BSN among it) and no
// proof: per disclosure its leaf index (what a withholding names), date,
// organisations, purpose and categories, with the Dutch labels of the
// covenant version it was checked against; and the contacts the parent's
// report will print.
type InzagePreview struct {
	Disclosures []InzagePreviewEntry `json:"disclosures"`
	// DeskContacts are the contacts of the desks that answer (the central
	// desk's, or each party's in scope) and FGContact the FG's, from the
	// newest covenant version; nil where the covenant names none.
	DeskContacts []*events.Contact `json:"desk_contacts"`
	FGContact    *events.Contact   `json:"fg_contact,omitempty"`
}

// InzagePreviewEntry is one disclosure of an InzagePreview.
type InzagePreviewEntry struct {
	Index      uint64    `json:"index"`
	OccurredAt time.Time `json:"occurred_at"`
	// Discloser and Recipients are organisation names.
	Discloser  string   `json:"discloser"`
	Recipients []string `json:"recipients"`
	// Purpose and Categories are the covenant's labels.
	Purpose    string   `json:"purpose"`
	Categories []string `json:"categories"`
	// Special is true when a category is special (AVG art. 9 or 10).
	Special bool `json:"special"`
}

// ErasureRequest is the body of POST /v1/erasures: the proposal to erase
// one disclosure on a legal ground (an erasure request where the law allows
// it, AVG art. 17). A second desk user of the same scope confirms it with
// POST /v1/erasures/{id}/confirm; only then is the tombstone appended.
type ErasureRequest struct {
	LeafIndex uint64 `json:"leaf_index"`
	// Ground names the legal ground, e.g. "avg-17-1-a" (no longer needed)
	// or "avg-17-1-d" (unlawfully processed).
	Ground string `json:"ground"`
}
