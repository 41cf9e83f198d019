package gateway

import (
	"encoding/json"
	"net/http"
)

// ProblemContentType is the media type of every error the gateway answers
// (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem detail. Type is a URN naming Code, so
// that a client can branch on either; Errors lists every line and field at
// fault when the problem is about the body. Nothing in a Problem repeats a
// value from the request.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Code is a stable, low-cardinality name of the problem (below).
	Code string `json:"code"`
	// EventID is set when the problem is about one event the gateway
	// derived (an idempotency conflict, a refusal by the ledger).
	EventID string `json:"event_id,omitempty"`
	// Reason is the ledger's reason code when the ledger refused an event.
	Reason string `json:"reason,omitempty"`
	// Errors are the lines and fields at fault.
	Errors []*FieldError `json:"errors,omitempty"`
}

// The problem codes. They are stable: clients branch on them and they are
// metric labels.
const (
	ProblemMalformedJSON         = "malformed_json"
	ProblemInvalidDisclosure     = "invalid_disclosure"
	ProblemOtherParty            = "other_party"
	ProblemIdempotencyConflict   = "idempotency_conflict"
	ProblemIdempotencyKeyMissing = "idempotency_key_missing"
	ProblemBodyTooLarge          = "body_too_large"
	ProblemTooManyLines          = "too_many_lines"
	ProblemUnsupportedMediaType  = "unsupported_media_type"
	ProblemUnauthorized          = "unauthorized"
	ProblemClientCertificate     = "client_certificate"
	ProblemClientMismatch        = "client_mismatch"
	ProblemLedgerRejected        = "ledger_rejected"
	ProblemBusUnavailable        = "bus_unavailable"
	ProblemLedgerUnavailable     = "ledger_unavailable"
	ProblemNotFound              = "not_found"
	ProblemMethodNotAllowed      = "method_not_allowed"
	ProblemBadRequest            = "bad_request"
)

var problemTitles = map[string]string{
	ProblemMalformedJSON:         "A line is not a JSON disclosure",
	ProblemInvalidDisclosure:     "A disclosure is not valid under the covenant in force",
	ProblemOtherParty:            "A disclosure names another party than the client's",
	ProblemIdempotencyConflict:   "The Idempotency-Key was used before with another disclosure",
	ProblemIdempotencyKeyMissing: "An Idempotency-Key header is required",
	ProblemBodyTooLarge:          "The request body is too large",
	ProblemTooManyLines:          "The request has too many lines",
	ProblemUnsupportedMediaType:  "Send application/json or application/jsonl",
	ProblemUnauthorized:          "A valid bearer token is required",
	ProblemClientCertificate:     "The client certificate does not name a party of this gateway",
	ProblemClientMismatch:        "The bearer token and the client certificate name different parties",
	ProblemLedgerRejected:        "The ledger refused the disclosure",
	ProblemBusUnavailable:        "The bus did not take the disclosures; retry with the same Idempotency-Key",
	ProblemLedgerUnavailable:     "The ledger did not answer; ask again",
	ProblemNotFound:              "No such resource",
	ProblemMethodNotAllowed:      "Method not allowed",
	ProblemBadRequest:            "Bad request",
}

// ProblemType returns the type URI of a problem code.
func ProblemType(code string) string { return "urn:spoor:gateway:problem:" + code }

// newProblem fills in type and title from the code.
func newProblem(status int, code, detail string, errs ...*FieldError) *Problem {
	return &Problem{Type: ProblemType(code), Title: problemTitles[code], Status: status, Detail: detail, Code: code, Errors: errs}
}

// writeProblem answers p.
func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
