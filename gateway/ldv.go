package gateway

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/spoor-ledger/spoor/events"
)

// This file is the wire format of one OTLP span in the model of Logboek
// Dataverwerkingen (LDV 1.0.0) with Spoor's dpl.spoor.* extension, as
// docs/ldv.md maps it: which spans claim to be disclosures (ClassifySpan),
// and how a claim becomes the Input of a disclosure (MapSpan). It is kept
// apart from the OTLP handler (otlp.go) so that it can be fuzzed and held
// to golden vectors on its own. Nothing here repeats an attribute's value
// in an error: a span's data_subject_id may be a BSN.

// The LDV core attributes (LDV 1.0.0, "Component: Logboek").
const (
	AttrProcessingActivity = "dpl.core.processing_activity_id"
	AttrSubjectID          = "dpl.core.data_subject_id"
	AttrSubjectIDType      = "dpl.core.data_subject_id_type"
)

// SpoorPrefix is the namespace of Spoor's extension attributes: recipients,
// categories, purpose, legal basis and the rest of a disclosure that LDV
// has no field for. It is NOT adopted by LDV (docs/ldv.md).
const SpoorPrefix = "dpl.spoor."

// SubjectTypePseudonym is the data_subject_id_type of a span whose
// data_subject_id is already Spoor's pseudonym, with its key id and number
// type in dpl.spoor.subject.key_id and dpl.spoor.subject.id_type.
const SubjectTypePseudonym = "spoor-pseudonym"

// The reason codes of a refused span (SpanError.Code) that the mapping
// gives; the checks after it add FieldError codes (invalid, purpose-unknown,
// ...) and the ledger's reasons.
const (
	SpanForeignIdentifier = "foreign_identifier"
	SpanMissingAttribute  = "missing_attribute"
	SpanBadAttribute      = "bad_attribute"
	SpanUnknownAttribute  = "unknown_attribute"
	SpanInvalidTraceID    = "invalid_trace_id"
	SpanInvalidSpanID     = "invalid_span_id"
	SpanMissingTime       = "missing_time"
	SpanStatusError       = "status_error"
)

// SpanClass is what a span is to Spoor.
type SpanClass int

// The classes of ClassifySpan.
const (
	// SpanNotLDV has no dpl.* attribute of LDV's core or Spoor's extension.
	SpanNotLDV SpanClass = iota
	// SpanNotDisclosure is an LDV processing record without a dpl.spoor.*
	// attribute: a processing that is no disclosure, which stays in the
	// organisation's own LDV log.
	SpanNotDisclosure
	// SpanDisclosure claims to be a disclosure: it carries a dpl.spoor.*
	// attribute, and must map or be refused.
	SpanDisclosure
)

// ClassifySpan says whether sp claims to be a disclosure.
func ClassifySpan(sp *tracepb.Span) SpanClass {
	class := SpanNotLDV
	for _, kv := range sp.GetAttributes() {
		k := kv.GetKey()
		switch {
		case strings.HasPrefix(k, SpoorPrefix):
			return SpanDisclosure
		case strings.HasPrefix(k, "dpl.core."):
			class = SpanNotDisclosure
		}
	}
	return class
}

// SpanError is why one span was refused: a stable code and an English
// explanation that never repeats a value of the span (its attribute names
// only when they are plain words of Spoor's namespace).
type SpanError struct {
	Code   string
	Detail string
}

func (e *SpanError) Error() string { return e.Code + ": " + e.Detail }

// SpanInput is a disclosure claim read from a span: the Input that
// POST /v1/disclosures would have had, and for a span that names its
// subject by Spoor's pseudonym that subject (Input.Subject then empty).
type SpanInput struct {
	Input     Input
	Pseudonym *events.Subject
}

// IdempotencyKey is the key the span's event id is derived from
// (events.KeyedEventID): the same span exported again is the same event.
func (s *SpanInput) IdempotencyKey() string {
	return "otlp/" + s.Input.TraceID + "/" + s.Input.SpanID
}

// spoorAttr says how a dpl.spoor.* attribute is read: a string into a
// field of the Input, or a list of strings.
type spoorAttr struct {
	str  func(s *SpanInput) *string
	list func(s *SpanInput) *[]string
}

var spoorAttrs = map[string]spoorAttr{
	"dpl.spoor.recipients":                 {list: func(s *SpanInput) *[]string { return &s.Input.Recipients }},
	"dpl.spoor.categories":                 {list: func(s *SpanInput) *[]string { return &s.Input.Categories }},
	"dpl.spoor.purpose":                    {str: func(s *SpanInput) *string { return &s.Input.Purpose }},
	"dpl.spoor.legal_basis.ground":         {str: func(s *SpanInput) *string { return &s.Input.LegalBasis.Ground }},
	"dpl.spoor.legal_basis.exception":      {str: func(s *SpanInput) *string { return &s.Input.LegalBasis.Exception }},
	"dpl.spoor.legal_basis.statute":        {str: func(s *SpanInput) *string { return &s.Input.LegalBasis.Statute }},
	"dpl.spoor.consent.reference":          {str: func(s *SpanInput) *string { return &s.consent().Reference }},
	"dpl.spoor.consent.given_by":           {str: func(s *SpanInput) *string { return (*string)(&s.consent().GivenBy) }},
	"dpl.spoor.subject_age_band":           {str: func(s *SpanInput) *string { return (*string)(&s.Input.SubjectAgeBand) }},
	"dpl.spoor.justification":              {str: func(s *SpanInput) *string { return &s.Input.Justification }},
	"dpl.spoor.channel":                    {str: func(s *SpanInput) *string { return &s.Input.Channel }},
	"dpl.spoor.actor.role":                 {str: func(s *SpanInput) *string { return &s.Input.Actor.Role }},
	"dpl.spoor.actor.staff_id":             {str: func(s *SpanInput) *string { return &s.Input.Actor.StaffID }},
	"dpl.spoor.case_ref":                   {str: func(s *SpanInput) *string { return &s.Input.CaseRef }},
	"dpl.spoor.corrects":                   {str: func(s *SpanInput) *string { return &s.Input.Corrects }},
	"dpl.spoor.subject.id_type":            {str: func(s *SpanInput) *string { return (*string)(&s.pseudonym().IDType) }},
	"dpl.spoor.subject.key_id":             {str: func(s *SpanInput) *string { return &s.pseudonym().KeyID }},
	AttrProcessingActivity:                 {str: func(s *SpanInput) *string { return &s.Input.ProcessingActivity }},
	AttrSubjectIDType:                      {str: func(s *SpanInput) *string { return (*string)(&s.Input.Subject.IDType) }},
	AttrSubjectID:                          {str: func(s *SpanInput) *string { return &s.Input.Subject.Number }},
	"dpl.core.foreign_operation.span_id":   {},
	"dpl.core.foreign_operation.processor": {},
}

func (s *SpanInput) consent() *events.Consent {
	if s.Input.Consent == nil {
		s.Input.Consent = &events.Consent{}
	}
	return s.Input.Consent
}

func (s *SpanInput) pseudonym() *events.Subject {
	if s.Pseudonym == nil {
		s.Pseudonym = &events.Subject{}
	}
	return s.Pseudonym
}

// plainAttrName is an attribute name an error may repeat: Spoor's
// namespace and plain words, so that it cannot carry a number.
var plainAttrName = regexp.MustCompile(`^dpl\.[a-z_.]{1,60}$`)

func attrName(k string) string {
	if plainAttrName.MatchString(k) {
		return k
	}
	return "an attribute"
}

// MapSpan reads a disclosure claim (ClassifySpan == SpanDisclosure) into
// the Input of one disclosure, as docs/ldv.md maps it. It checks what the
// span alone can tell: ids, time, status, the attributes' names and types,
// the subject's identifier type; the number's elfproef and everything of
// the disclosure are checked after it (SpanInput.Disclosure and the
// gateway's checks).
func MapSpan(sp *tracepb.Span) (*SpanInput, *SpanError) {
	s := &SpanInput{}
	in := &s.Input
	switch tid := sp.GetTraceId(); {
	case len(tid) != 16 || allZero(tid):
		return nil, &SpanError{SpanInvalidTraceID, "trace_id must be 16 bytes, not all zero"}
	default:
		in.TraceID = hex.EncodeToString(tid)
	}
	switch sid := sp.GetSpanId(); {
	case len(sid) != 8 || allZero(sid):
		return nil, &SpanError{SpanInvalidSpanID, "span_id must be 8 bytes, not all zero"}
	default:
		in.SpanID = hex.EncodeToString(sid)
	}
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		return nil, &SpanError{SpanStatusError, "the span's status is Error: a failed action is recorded as a disclosure only if data left (then with status Unset or Ok)"}
	}
	ns := sp.GetEndTimeUnixNano()
	if ns == 0 {
		ns = sp.GetStartTimeUnixNano()
	}
	if ns == 0 || ns > uint64(1<<63-1) {
		return nil, &SpanError{SpanMissingTime, "end_time (or start_time) must be set"}
	}
	// LDV's times are milliseconds; the event keeps whole milliseconds.
	in.OccurredAt = time.Unix(0, int64(ns)).UTC().Truncate(time.Millisecond)
	seen := map[string]bool{}
	for _, kv := range sp.GetAttributes() {
		k := kv.GetKey()
		if !strings.HasPrefix(k, "dpl.") {
			continue
		}
		a, known := spoorAttrs[k]
		switch {
		case !known && strings.HasPrefix(k, SpoorPrefix):
			return nil, &SpanError{SpanUnknownAttribute, attrName(k) + " is not an attribute of Spoor's extension (docs/ldv.md)"}
		case !known:
			// Another namespace of LDV (dpl.read.*, dpl.lac.*, ...): not
			// Spoor's to judge.
			continue
		case seen[k]:
			return nil, &SpanError{SpanBadAttribute, attrName(k) + " is given twice"}
		}
		seen[k] = true
		v := kv.GetValue()
		switch {
		case a.str != nil:
			sv, ok := v.GetValue().(*commonpb.AnyValue_StringValue)
			if !ok {
				return nil, &SpanError{SpanBadAttribute, attrName(k) + " must be a string"}
			}
			*a.str(s) = sv.StringValue
		case a.list != nil:
			av, ok := v.GetValue().(*commonpb.AnyValue_ArrayValue)
			if !ok {
				return nil, &SpanError{SpanBadAttribute, attrName(k) + " must be an array of strings"}
			}
			out := make([]string, 0, len(av.ArrayValue.GetValues()))
			for _, e := range av.ArrayValue.GetValues() {
				es, ok := e.GetValue().(*commonpb.AnyValue_StringValue)
				if !ok {
					return nil, &SpanError{SpanBadAttribute, attrName(k) + " must be an array of strings"}
				}
				out = append(out, es.StringValue)
			}
			*a.list(s) = out
		}
	}
	for _, k := range []string{AttrProcessingActivity, AttrSubjectIDType, AttrSubjectID} {
		if !seen[k] {
			return nil, &SpanError{SpanMissingAttribute, k + " is required (LDV core)"}
		}
	}
	switch t := string(in.Subject.IDType); {
	case strings.EqualFold(t, string(events.IDTypeBSN)):
		in.Subject.IDType = events.IDTypeBSN
	case strings.EqualFold(t, string(events.IDTypeOnderwijsnummer)):
		in.Subject.IDType = events.IDTypeOnderwijsnummer
	case t == SubjectTypePseudonym:
		p := s.pseudonym()
		p.Pseudonym, in.Subject = in.Subject.Number, InputSubject{}
		if !slices.Contains([]events.IDType{events.IDTypeBSN, events.IDTypeOnderwijsnummer}, p.IDType) {
			return nil, &SpanError{SpanMissingAttribute, "with data_subject_id_type " + SubjectTypePseudonym + ", dpl.spoor.subject.id_type must be bsn or onderwijsnummer"}
		}
		if p.KeyID == "" {
			return nil, &SpanError{SpanMissingAttribute, "with data_subject_id_type " + SubjectTypePseudonym + ", dpl.spoor.subject.key_id must name the pseudonym key"}
		}
	default:
		// The type is not repeated either: it is the sender's text.
		return nil, &SpanError{SpanForeignIdentifier, "data_subject_id_type must be BSN, onderwijsnummer or " + SubjectTypePseudonym + "; Spoor records disclosures about children known by one of those"}
	}
	if s.Pseudonym != nil && in.Subject.IDType != "" {
		return nil, &SpanError{SpanBadAttribute, "dpl.spoor.subject.id_type and key_id go only with data_subject_id_type " + SubjectTypePseudonym}
	}
	if c := in.Consent; c != nil && (c.Reference == "" || c.GivenBy == "") {
		return nil, &SpanError{SpanMissingAttribute, "dpl.spoor.consent.reference and dpl.spoor.consent.given_by go together"}
	}
	return s, nil
}

// Disclosure turns the claim into the unsigned disclosure that party will
// sign under id, pseudonymising a number under key (the number goes no
// further), or taking the span's pseudonym when the covenant in force
// lists its key. The problems are FieldErrors of line, as for
// POST /v1/disclosures.
func (s *SpanInput) Disclosure(line int, party, origin, id string, key events.SubjectKey, cov *events.Covenant) (*events.Disclosure, []*FieldError) {
	if s.Pseudonym == nil {
		return s.Input.Disclosure(line, party, origin, id, key)
	}
	var errs []*FieldError
	if !slices.Contains(cov.SubjectKeys, s.Pseudonym.KeyID) {
		errs = append(errs, &FieldError{Line: line, Field: "subject.key_id", Code: CodeInvalid,
			Detail: fmt.Sprintf("covenant version %d lists no such pseudonym key", cov.Version)})
	}
	return s.Input.build(party, origin, id, *s.Pseudonym), errs
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
