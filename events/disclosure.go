// Package events defines what Spoor records: the disclosure event (a
// "verstrekking" of personal data about one child), its canonical DSSE
// envelope, the keyed pseudonym that stands in for the child's BSN, and the
// versioned, signed covenant that says which parties may disclose what.
//
// Data flows through this package in one direction. An organisation builds a
// Disclosure, Seal fills in the pseudonym and salt, Sign turns it into the one
// canonical envelope byte form, and the envelope travels over NATS to the
// ledger. The ledger (and later every verifier) calls Open, which checks the
// strict envelope profile, the payload's canonical form and schema, and the
// signature by the key the covenant has in force, and returns the Disclosure
// or a *RejectError naming the reason. For bytes already in the canonical
// form Open takes a fast path (fastparse.go: direct parsers, no reflection);
// anything else goes down the strict encoding/json path, which defines what
// is accepted and words every rejection. Covenant.Check then lists the covenant
// rules the disclosure breaks as findings; findings never reject an event.
//
// Nothing in this package stores or prints a BSN: it is read, checked with the
// elfproef and turned into a pseudonym, and only the pseudonym goes further.
package events

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// SchemaV1 is the value of the payload's "schema" field of events without a
// VRF output: every event before issue 23, and events under a pseudonym key
// version whose covenant entry has no VRF public key.
const SchemaV1 = "spoor.disclosure/v1"

// SchemaV2 is the value of the payload's "schema" field of events that carry
// subject.vrf_output (wire format v2, issue 23). It is the only difference
// from SchemaV1: the envelope, its payloadType and every other field are as
// in version 1.
const SchemaV2 = "spoor.disclosure/v2"

// MaxEnvelopeSize is the largest envelope the ledger accepts (64 KiB).
const MaxEnvelopeSize = 64 << 10

// IDType names the kind of national number a subject's pseudonym was made from.
type IDType string

// The identifier types a subject may have.
const (
	IDTypeBSN             IDType = "bsn"
	IDTypeOnderwijsnummer IDType = "onderwijsnummer"
)

// AgeBand is the subject's age band at the time of the disclosure; the
// consent rules of the Jeugdwet depend on it.
type AgeBand string

// The age bands of the covenant's consent rules.
const (
	AgeUnder12 AgeBand = "under-12"
	Age12To15  AgeBand = "12-15"
	Age16Plus  AgeBand = "16-plus"
)

// AgeBands lists the valid age bands in order.
var AgeBands = []AgeBand{AgeUnder12, Age12To15, Age16Plus}

// ConsentGiver says who gave consent for a disclosure.
type ConsentGiver string

// Who may give consent, by age band: the parents under 12, the child and the
// parents from 12 to 15, the young person alone from 16.
const (
	ConsentParents         ConsentGiver = "parents"
	ConsentChildAndParents ConsentGiver = "child-and-parents"
	ConsentYoungPerson     ConsentGiver = "young-person"
)

// Channels lists how a disclosure may have been made.
var Channels = []string{"mdo", "system", "email", "phone", "letter", "in-person"}

// Disclosure is the payload of a disclosure event: one organisation shared
// data categories about one data subject with one or more recipients, for a
// purpose, on a legal basis, at a time. Field order is the canonical JSON
// order; do not reorder.
type Disclosure struct {
	// Schema is SchemaV2 when Subject.VRFOutput is set, SchemaV1 otherwise.
	Schema string `json:"schema"`
	// Origin is the log the event is meant for, so that it cannot be replayed
	// into another region's log.
	Origin string `json:"origin"`
	// ID is a lower-case UUIDv7, the idempotency key.
	ID string `json:"id"`
	// TraceID and SpanID are W3C Trace Context ids (32 and 16 lower-case hex)
	// linking the event to the organisation's Logboek Dataverwerkingen records.
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	// ProcessingActivity is the organisation's register entry (AVG art. 30).
	ProcessingActivity string `json:"processing_activity"`
	// OccurredAt is when the disclosure happened, in UTC.
	OccurredAt time.Time `json:"occurred_at"`
	// Discloser and Recipients are party ids of the covenant.
	Discloser  string   `json:"discloser"`
	Recipients []string `json:"recipients"`
	// Subject is the one data subject the disclosure is about.
	Subject Subject `json:"subject"`
	// SubjectAgeBand is the subject's age band at OccurredAt.
	SubjectAgeBand AgeBand `json:"subject_age_band"`
	// Categories are data category ids of the covenant's vocabulary.
	Categories []string `json:"categories"`
	// Purpose is a purpose id of the covenant's vocabulary.
	Purpose string `json:"purpose"`
	// LegalBasis is the ground the disclosure relies on.
	LegalBasis LegalBasis `json:"legal_basis"`
	// Consent is present when consent was obtained.
	Consent *Consent `json:"consent,omitempty"`
	// Justification says, in the discloser's words, why it was necessary.
	Justification string `json:"justification"`
	// Channel is one of Channels.
	Channel string `json:"channel"`
	// Actor is who disclosed, pseudonymously (NEN 7513).
	Actor Actor `json:"actor"`
	// CaseRef links events of one case (a child and a parent are two events).
	CaseRef string `json:"case_ref,omitempty"`
	// Corrects is the id of an earlier event of the same discloser that this
	// event corrects (AVG art. 16).
	Corrects string `json:"corrects,omitempty"`
	// Salt is 16 bytes, standard padded base64: HMAC-SHA256 of the party's
	// salt secret over the id, truncated, so a re-signed event has the same
	// bytes. See DeriveSalt.
	Salt string `json:"salt"`
}

// Subject identifies the data subject by a keyed pseudonym, never by number.
type Subject struct {
	IDType IDType `json:"id_type"`
	// KeyID names the pseudonym key K_v.
	KeyID string `json:"key_id"`
	// Pseudonym is 64 lower-case hex characters; see Pseudonym.
	Pseudonym string `json:"pseudonym"`
	// VRFOutput is the output of the VRF of the covenant's VRF key for KeyID
	// over the subject's identifier type and number (verifier/aboutchild):
	// 128 lower-case hex characters, present exactly in SchemaV2 events. It
	// lets a parent who knows the number, and holds no key, check that an
	// answer is about their child (issue 23). Like the pseudonym it is
	// personal data wherever the VRF secret key is known.
	VRFOutput string `json:"vrf_output,omitempty"`
}

// LegalBasis is the legal basis of a disclosure.
type LegalBasis struct {
	// Ground is the AVG art. 6(1) ground: one of "a" to "f".
	Ground string `json:"ground"`
	// Exception is the AVG art. 9(2) or UAVG exception id, needed for special
	// categories; empty otherwise.
	Exception string `json:"exception,omitempty"`
	// Statute is the statutory article id (e.g. "jeugdwet-7.3.11"), if any.
	Statute string `json:"statute,omitempty"`
}

// Consent records who consented and where the consent is documented.
type Consent struct {
	Reference string       `json:"reference"`
	GivenBy   ConsentGiver `json:"given_by"`
}

// Actor is the person who disclosed: a role and a pseudonymous staff id.
type Actor struct {
	Role    string `json:"role"`
	StaffID string `json:"staff_id"`
}

// ValidationError is one problem with one field of a disclosure.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ValidationErrors is every problem Validate found, in field order.
type ValidationErrors []*ValidationError

func (es ValidationErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid disclosure: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each *ValidationError.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

var (
	partyIDRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	vocabIDRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)
	keyIDRE    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)
	hex64RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	traceIDRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	spanIDRE   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	groundRE   = regexp.MustCompile(`^[a-f]$`)
	maxTextLen = 2000
)

// ValidPartyID reports whether s has the form of a party id, which is also
// a NATS subject token.
// It is partyIDRE written out, which is several times faster.
func ValidPartyID(s string) bool { return isPartyID(s) }

// ValidEventID reports whether s is a canonical lower-case UUIDv7.
func ValidEventID(s string) bool { return isUUIDv7(s) }

// Validate checks the disclosure's own structure (not the covenant's rules)
// and returns every problem at once as ValidationErrors, or nil.
func (d *Disclosure) Validate() error {
	// Almost every event is valid: answer that without building messages.
	if d.valid() {
		return nil
	}
	return d.validateAll()
}

// validateAll is Validate's full check, which names every problem. It is
// also the reference that valid must agree with.
func (d *Disclosure) validateAll() error {
	var errs ValidationErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	text := func(field, v string, required bool) {
		switch {
		case required && strings.TrimSpace(v) == "":
			bad(field, "is required")
		case len(v) > maxTextLen:
			bad(field, "is longer than %d bytes", maxTextLen)
		case !utf8.ValidString(v):
			// JSON would carry the bad bytes as U+FFFD, so the envelope
			// would not re-encode to itself and Open would reject it.
			bad(field, "is not valid UTF-8")
		}
	}
	switch d.Schema {
	case SchemaV1:
		if d.Subject.VRFOutput != "" {
			bad("subject.vrf_output", "is only in schema %q", SchemaV2)
		}
	case SchemaV2:
		if !aboutchild.ValidOutputHex(d.Subject.VRFOutput) {
			bad("subject.vrf_output", "must be %d lower-case hex characters in schema %q", aboutchild.OutputHexSize, SchemaV2)
		}
	default:
		bad("schema", "must be %q or %q", SchemaV1, SchemaV2)
	}
	text("origin", d.Origin, true)
	if strings.ContainsAny(d.Origin, " \t\n+") {
		bad("origin", "must not contain spaces, newlines or '+'")
	}
	if !ValidEventID(d.ID) {
		bad("id", "must be a lower-case UUIDv7")
	}
	if !traceIDRE.MatchString(d.TraceID) || d.TraceID == strings.Repeat("0", 32) {
		bad("trace_id", "must be 32 lower-case hex characters, not all zero (W3C Trace Context)")
	}
	if !spanIDRE.MatchString(d.SpanID) || d.SpanID == strings.Repeat("0", 16) {
		bad("span_id", "must be 16 lower-case hex characters, not all zero (W3C Trace Context)")
	}
	text("processing_activity", d.ProcessingActivity, true)
	switch {
	case d.OccurredAt.IsZero():
		bad("occurred_at", "is required")
	case d.OccurredAt.Location() != time.UTC:
		bad("occurred_at", "must be in UTC (end with Z)")
	case d.OccurredAt.Year() < 2000:
		bad("occurred_at", "is before the year 2000")
	}
	if !partyIDRE.MatchString(d.Discloser) {
		bad("discloser", "must be a party id (lower-case letters, digits and '-')")
	}
	if len(d.Recipients) == 0 || len(d.Recipients) > 50 {
		bad("recipients", "must name 1 to 50 parties")
	}
	firstRecipient := firstIndexes(d.Recipients)
	for i, r := range d.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		switch {
		case !partyIDRE.MatchString(r):
			bad(field, "must be a party id")
		case r == d.Discloser:
			bad(field, "is the discloser itself")
		case firstRecipient[i] != i:
			bad(field, "repeats recipients[%d]", firstRecipient[i])
		}
	}
	switch d.Subject.IDType {
	case IDTypeBSN, IDTypeOnderwijsnummer:
	default:
		bad("subject.id_type", "must be %q or %q", IDTypeBSN, IDTypeOnderwijsnummer)
	}
	if !keyIDRE.MatchString(d.Subject.KeyID) {
		bad("subject.key_id", "must name a pseudonym key")
	}
	if !hex64RE.MatchString(d.Subject.Pseudonym) {
		bad("subject.pseudonym", "must be 64 lower-case hex characters")
	}
	if !slices.Contains(AgeBands, d.SubjectAgeBand) {
		bad("subject_age_band", "must be one of under-12, 12-15, 16-plus")
	}
	if len(d.Categories) == 0 || len(d.Categories) > 30 {
		bad("categories", "must name 1 to 30 data categories")
	}
	firstCategory := firstIndexes(d.Categories)
	for i, c := range d.Categories {
		field := fmt.Sprintf("categories[%d]", i)
		switch {
		case !vocabIDRE.MatchString(c):
			bad(field, "must be a vocabulary id")
		case firstCategory[i] != i:
			bad(field, "repeats categories[%d]", firstCategory[i])
		}
	}
	if !vocabIDRE.MatchString(d.Purpose) {
		bad("purpose", "must be a vocabulary id")
	}
	if !groundRE.MatchString(d.LegalBasis.Ground) {
		bad("legal_basis.ground", "must be an AVG art. 6(1) ground, a to f")
	}
	if d.LegalBasis.Exception != "" && !vocabIDRE.MatchString(d.LegalBasis.Exception) {
		bad("legal_basis.exception", "must be a vocabulary id")
	}
	if d.LegalBasis.Statute != "" && !vocabIDRE.MatchString(d.LegalBasis.Statute) {
		bad("legal_basis.statute", "must be a vocabulary id")
	}
	if c := d.Consent; c != nil {
		text("consent.reference", c.Reference, true)
		switch c.GivenBy {
		case ConsentParents, ConsentChildAndParents, ConsentYoungPerson:
		default:
			bad("consent.given_by", "must be parents, child-and-parents or young-person")
		}
	}
	text("justification", d.Justification, true)
	if !slices.Contains(Channels, d.Channel) {
		bad("channel", "must be one of %s", strings.Join(Channels, ", "))
	}
	text("actor.role", d.Actor.Role, true)
	text("actor.staff_id", d.Actor.StaffID, true)
	text("case_ref", d.CaseRef, false)
	if d.Corrects != "" {
		switch {
		case !ValidEventID(d.Corrects):
			bad("corrects", "must be the id (UUIDv7) of the corrected event")
		case d.Corrects == d.ID:
			bad("corrects", "names the event itself")
		}
	}
	if salt, err := base64.StdEncoding.Strict().DecodeString(d.Salt); err != nil || len(salt) != SaltSize {
		bad("salt", "must be %d bytes in standard padded base64", SaltSize)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// firstIndexes returns, for each element of list, the index of its first
// occurrence. Validation runs before the signature is checked, so anyone who
// can publish can send a list of thousands of distinct entries; a map keeps
// that linear, where slices.Index per element took a third of a second for
// one 55 KB envelope.
func firstIndexes(list []string) []int {
	out := make([]int, len(list))
	seen := make(map[string]int, len(list))
	for i, s := range list {
		if j, ok := seen[s]; ok {
			out[i] = j
			continue
		}
		seen[s] = i
		out[i] = i
	}
	return out
}

// MarshalCanonical returns the disclosure's canonical JSON: the standard
// encoding of the struct in field order, without HTML escaping and without
// a trailing newline. A payload is accepted only in this form, so one event
// has exactly one byte form.
func (d *Disclosure) MarshalCanonical() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("couldn't encode disclosure: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ErrNonCanonical means the bytes decode but are not in the one canonical form.
var ErrNonCanonical = errors.New("not in canonical form")

// DecodeDisclosure strictly decodes a payload: unknown fields, wrong types,
// trailing data and times without a zone are errors, and the bytes must be
// the canonical form (ErrNonCanonical otherwise). It does not Validate.
func DecodeDisclosure(payload []byte) (*Disclosure, error) {
	if d, ok := decodeDisclosureFast(payload); ok {
		return d, nil
	}
	return decodeDisclosureStrict(payload)
}

// decodeDisclosureStrict is DecodeDisclosure by encoding/json and
// re-encoding: the reference that defines what is accepted, and the path
// that explains every rejection. decodeDisclosureFast takes the canonical
// payloads off its hands.
func decodeDisclosureStrict(payload []byte) (*Disclosure, error) {
	d, err := decodeDisclosureLoose(payload, false)
	if err != nil {
		return nil, err
	}
	canon, err := d.MarshalCanonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, payload) {
		return nil, fmt.Errorf("disclosure payload: %w (fields in schema order, no spaces, no HTML escaping, times in UTC with Z)", ErrNonCanonical)
	}
	return d, nil
}

// DecodeDisclosureJSON strictly decodes one disclosure written by a person or
// another system (any whitespace or field order) without requiring the
// canonical form; it is what `spoor publish` reads.
//
// Its errors may name an unknown member with a plain name: the person
// reading them wrote it. What the ledger says about a received event never
// does (DecodeDisclosure).
func DecodeDisclosureJSON(b []byte) (*Disclosure, error) {
	return decodeDisclosureLoose(b, true)
}

// decodeDisclosureLoose decodes with encoding/json. namePlainMembers lets
// an error name an unknown member whose name is plain letters (for the
// person who wrote the input, never for a received event).
func decodeDisclosureLoose(b []byte, namePlainMembers bool) (*Disclosure, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Disclosure
	if err := dec.Decode(&d); err != nil {
		if namePlainMembers {
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok && plainFieldNameRE.MatchString(name) {
				return nil, fmt.Errorf("disclosure payload: %w", err)
			}
		}
		return nil, fmt.Errorf("disclosure payload: %w", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("disclosure payload: data after the JSON object")
	}
	return &d, nil
}

// describeJSONError turns encoding/json's errors into ones that name the
// field. They never repeat anything from the input, neither a value nor a
// member name nor a character: a mistaken integration may put a BSN
// anywhere (written with dots, or an onderwijsnummer, which no pattern
// catches), and these messages reach the sender's status and the logs.
// They quote only what Spoor knows: its own field names and Go types, and
// byte offsets it computed.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// te.Value may be "number 999990019"; keep only the JSON kind.
		kind, _, _ := strings.Cut(te.Value, " ")
		return fmt.Errorf("field %s: wrong type (got JSON %s, want %s)", te.Field, kind, te.Type)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return errors.New("a time is not RFC 3339 with a zone (write it like 2025-03-14T09:26:53Z)")
	}
	if errors.Is(err, io.EOF) {
		return errors.New("empty input")
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return errors.New("an unknown member (its name is not repeated)")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not valid JSON (at byte %d)", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the JSON ends early")
	}
	return errors.New("the JSON does not have the expected shape")
}

// plainFieldNameRE matches the quoted unknown field names an error may repeat.
var plainFieldNameRE = regexp.MustCompile(`^"[A-Za-z_-]{1,64}"$`)

// hexLower is a small helper kept here so callers need not import encoding/hex.
func hexLower(b []byte) string { return hex.EncodeToString(b) }
