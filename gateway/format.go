package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// This file is the gateway's wire format for what a client sends: one
// disclosure as a JSON object, or many as JSON Lines. It is kept apart from
// the handler (gateway.go) so that it can be read, fuzzed and limit-tested
// on its own.

// Input is one disclosure as a client sends it: the fields of
// events.Disclosure (docs/wire-format.md) that the organisation's system
// knows, with the subject's BSN or onderwijsnummer instead of its
// pseudonym. The gateway fills in the rest: schema, origin, discloser
// (the client's party), id (from the Idempotency-Key), salt, and the
// subject's pseudonym, key id and (when the covenant gives the key a VRF key)
// VRF output. Origin and discloser may be given, and must then be what the
// gateway would fill in; schema may be either version, the gateway decides.
type Input struct {
	Schema             string            `json:"schema,omitempty"`
	Origin             string            `json:"origin,omitempty"`
	Discloser          string            `json:"discloser,omitempty"`
	TraceID            string            `json:"trace_id"`
	SpanID             string            `json:"span_id"`
	ProcessingActivity string            `json:"processing_activity"`
	OccurredAt         time.Time         `json:"occurred_at"`
	Recipients         []string          `json:"recipients"`
	Subject            InputSubject      `json:"subject"`
	SubjectAgeBand     events.AgeBand    `json:"subject_age_band"`
	Categories         []string          `json:"categories"`
	Purpose            string            `json:"purpose"`
	LegalBasis         events.LegalBasis `json:"legal_basis"`
	Consent            *events.Consent   `json:"consent,omitempty"`
	Justification      string            `json:"justification"`
	Channel            string            `json:"channel"`
	Actor              events.Actor      `json:"actor"`
	CaseRef            string            `json:"case_ref,omitempty"`
	Corrects           string            `json:"corrects,omitempty"`
}

// InputSubject names the data subject by national number. The number goes
// no further than events.SubjectFor: it is never stored, logged or
// repeated in an answer, and its String and LogValue hide it in case
// someone prints an Input anyway.
type InputSubject struct {
	// IDType is "bsn" or "onderwijsnummer".
	IDType events.IDType `json:"id_type"`
	// Number is the nine digits.
	Number string `json:"number"`
}

// String hides the number.
func (s InputSubject) String() string { return "{" + string(s.IDType) + " [number not shown]}" }

// GoString hides the number from %#v as well.
func (s InputSubject) GoString() string { return s.String() }

// LogValue hides the number from slog.
func (s InputSubject) LogValue() slog.Value { return slog.StringValue(s.String()) }

// FieldError is one problem with one line of a request: which line (1 for
// a single JSON document; the line of the body for JSON Lines), which field
// (a JSON path such as "categories[1]" or "subject.number"; empty for the
// line as a whole), a stable code and an English explanation. Neither code
// nor detail ever repeats a value from the input.
type FieldError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Code, e.Detail)
	}
	return fmt.Sprintf("line %d: %s: %s: %s", e.Line, e.Field, e.Code, e.Detail)
}

// The codes of FieldError that parsing gives; validation adds
// events.Reason values and covenant rule ids.
const (
	CodeMalformedJSON = "malformed_json"
	CodeInvalid       = "invalid"
	CodeInvalidNumber = "invalid_number"
	CodeOtherParty    = "other_party"
	CodeWrongOrigin   = "wrong_origin"
)

// Line is one non-blank line of a request body, with its line number.
type Line struct {
	N     int
	Bytes []byte
}

// SplitLines cuts a JSON Lines body into its non-blank lines, numbered
// from 1 by their place in the body (blank lines count, so the numbers are
// those an editor shows). A "\r" before a newline is dropped.
func SplitLines(body []byte) []Line {
	var out []Line
	n := 0
	for line := range bytes.Lines(body) {
		n++
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		out = append(out, Line{N: n, Bytes: line})
	}
	return out
}

// ParseInput strictly decodes one disclosure: one JSON object with only
// the members of Input, nothing after it. Its error is a *FieldError
// (CodeMalformedJSON) that names the field where encoding/json knows it,
// and never repeats anything from the input but member names made of
// plain letters (the person who wrote them reads the error).
func ParseInput(line int, b []byte) (*Input, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		field, detail := describeJSONError(err)
		return nil, &FieldError{Line: line, Field: field, Code: CodeMalformedJSON, Detail: detail}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Line: line, Code: CodeMalformedJSON, Detail: "data after the JSON object (send many disclosures as JSON Lines, Content-Type application/jsonl)"}
	}
	return &in, nil
}

// plainMemberRE matches an unknown member's quoted name that an error may
// repeat: letters, '_' and '-' only, so never a number.
var plainMemberRE = regexp.MustCompile(`^"[A-Za-z_-]{1,64}"$`)

// derivedMembers are members of a signed disclosure that a client does
// not send to the gateway, with why.
var derivedMembers = map[string]string{
	`"id"`:   "the gateway derives the event id from the Idempotency-Key header",
	`"salt"`: "the gateway derives the salt from the party's salt secret",
}

// describeJSONError words encoding/json's errors without repeating input:
// a mistaken integration may put a BSN anywhere, and these messages reach
// the client and the logs. It returns the field, when known, and the text.
func describeJSONError(err error) (field, detail string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// te.Value may be "number 999990019": keep only the JSON kind.
		kind, _, _ := strings.Cut(te.Value, " ")
		return te.Field, fmt.Sprintf("wrong type (got JSON %s, want %s)", kind, describeGoType(te.Type.String()))
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return "occurred_at", "not an RFC 3339 time with a zone (write it like 2026-03-14T09:26:53Z)"
	}
	if errors.Is(err, io.EOF) {
		return "", "empty input"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if why, ok := derivedMembers[name]; ok {
			return strings.Trim(name, `"`), "not sent to the gateway: " + why
		}
		if plainMemberRE.MatchString(name) {
			return strings.Trim(name, `"`), "unknown member"
		}
		return "", "an unknown member (its name is not repeated)"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "", fmt.Sprintf("not valid JSON (at byte %d of the line)", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "", "the JSON ends early"
	}
	return "", "the JSON does not have the expected shape (one object with the members of a disclosure)"
}

// describeGoType names a Go type the way a JSON writer thinks of it.
func describeGoType(t string) string {
	switch {
	case t == "string" || strings.HasSuffix(t, ".IDType") || strings.HasSuffix(t, ".AgeBand") || strings.HasSuffix(t, ".ConsentGiver"):
		return "string"
	case strings.HasPrefix(t, "[]"):
		return "array"
	case t == "time.Time":
		return "string (RFC 3339 time)"
	default:
		return "object"
	}
}

// Disclosure turns an Input into the unsigned disclosure that party will
// sign under id: it fills in what the gateway owns and replaces the
// number by its pseudonym under key. It checks what Input alone can
// tell (schema, origin, discloser, the number's elfproef) and leaves the
// rest to events' validation; every problem is a *FieldError of line.
func (in *Input) Disclosure(line int, party, origin, id string, key events.SubjectKey) (*events.Disclosure, []*FieldError) {
	var errs []*FieldError
	bad := func(field, code, format string, args ...any) {
		errs = append(errs, &FieldError{Line: line, Field: field, Code: code, Detail: fmt.Sprintf(format, args...)})
	}
	// The gateway decides the schema (v2 when the covenant gives the key a
	// VRF key); a client may name either, so that a covenant's new VRF key
	// does not break clients that wrote the schema.
	if in.Schema != "" && in.Schema != events.SchemaV1 && in.Schema != events.SchemaV2 {
		bad("schema", CodeInvalid, "must be %q, %q or left out", events.SchemaV1, events.SchemaV2)
	}
	if in.Origin != "" && in.Origin != origin {
		// The client's origin is not repeated: it is input.
		bad("origin", CodeWrongOrigin, "this gateway publishes to the log %q; leave origin out or give that one", origin)
	}
	if in.Discloser != "" && in.Discloser != party {
		bad("discloser", CodeOtherParty, "this client publishes only for party %q", party)
	}
	var subject events.Subject
	switch in.Subject.IDType {
	case events.IDTypeBSN, events.IDTypeOnderwijsnummer:
		s, err := events.SubjectFor(key, in.Subject.IDType, in.Subject.Number)
		if err != nil {
			// CheckNumber's messages never repeat the number.
			bad("subject.number", CodeInvalidNumber, "%s", strings.TrimPrefix(err.Error(), events.ErrInvalidNumber.Error()+": "))
		}
		subject = s
	default:
		bad("subject.id_type", CodeInvalid, "must be %q or %q", events.IDTypeBSN, events.IDTypeOnderwijsnummer)
	}
	return in.build(party, origin, id, subject), errs
}

// build is the unsigned disclosure of in with the gateway's fields and the
// subject filled in; it checks nothing (Disclosure does, and the OTLP
// intake does for spans).
func (in *Input) build(party, origin, id string, subject events.Subject) *events.Disclosure {
	occurred := in.OccurredAt
	if !occurred.IsZero() {
		// Any zone is accepted; the signed event carries UTC.
		occurred = occurred.UTC()
	}
	return &events.Disclosure{
		Schema:             subject.Schema(),
		Origin:             origin,
		ID:                 id,
		TraceID:            in.TraceID,
		SpanID:             in.SpanID,
		ProcessingActivity: in.ProcessingActivity,
		OccurredAt:         occurred,
		Discloser:          party,
		Recipients:         in.Recipients,
		Subject:            subject,
		SubjectAgeBand:     in.SubjectAgeBand,
		Categories:         in.Categories,
		Purpose:            in.Purpose,
		LegalBasis:         in.LegalBasis,
		Consent:            in.Consent,
		Justification:      in.Justification,
		Channel:            in.Channel,
		Actor:              in.Actor,
		CaseRef:            in.CaseRef,
		Corrects:           in.Corrects,
	}
}
