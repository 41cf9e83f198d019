package events

// This file holds the covenant: the region's agreement, as a YAML file that
// the FG and the covenant's administrator edit by hand, saying who the
// parties are, which keys they sign with, which words (categories, purposes,
// legal grounds) disclosures may use and which rules they must keep.
//
// A covenant version flows like this. The administrator writes covenant.yaml;
// ParseCovenantYAML decodes it strictly and validates it, naming the field
// path of every problem; SignCovenant wraps the bytes, verbatim, in a DSSE
// envelope signed with the administrator's note key; the ledger appends the
// envelope to the log as an entry (leaf 0 is always version 1). Every reader
// of the log rebuilds the versions with ParseSignedCovenant and a Chain,
// which checks that each version follows the previous one and is signed by
// the administrator key that the previous version names. The latest version
// logged before an event is its KeyResolver (PartyKey) and its rule book
// (Check).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"gopkg.in/yaml.v3"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// CovenantSchemaV1 is the value of a covenant file's "schema" field.
const CovenantSchemaV1 = "spoor.covenant/v1"

// CovenantPayloadType is the DSSE payloadType of a signed covenant version.
const CovenantPayloadType = "application/vnd.spoor.covenant.v1+yaml"

// MaxCovenantSize is the largest covenant file accepted, in bytes. A signed
// covenant is a log entry like any event, so its envelope (the file in
// base64, a third larger, plus about 250 bytes) must fit MaxEnvelopeSize.
const MaxCovenantSize = 47 << 10

// Sentinels that Chain.Append and NewChain wrap, so that callers can tell a
// forged or mis-signed version from one that merely does not follow on.
var (
	// ErrCovenantSignature means a version is not signed by the
	// administrator key in force (for version 1: its own, or the pinned one).
	ErrCovenantSignature = errors.New("covenant not signed by the administrator key in force")
	// ErrCovenantChain means a version does not follow the previous one:
	// wrong version number, wrong previous hash, changed origin, a revoked
	// key reinstated.
	ErrCovenantChain = errors.New("covenant version does not follow the previous one")
)

// Covenant is one version of a region's privacy covenant, as decoded from
// covenant.yaml. The field comments below are the reference for that file.
// No method modifies a Covenant, so a parsed one may be shared between
// goroutines.
// Ids in the file (parties, vocabulary) are lower-case letters, digits, '-'
// (and '.' in vocabulary ids); times are RFC 3339 in UTC, for example
// 2023-05-25T00:00:00Z.
type Covenant struct {
	// Schema is always "spoor.covenant/v1".
	Schema string `yaml:"schema"`
	// Version is 1 for the first version and one more for each next version.
	Version int `yaml:"version"`
	// Previous is empty in version 1; in a later version it is the lower-case
	// hex SHA-256 of the previous version's signed file exactly as logged
	// (SignedCovenant.Hash), so each version names the one it replaces.
	Previous string `yaml:"previous"`
	// Origin names the log (the first line of its checkpoints), for example
	// "spoor.example/regio-amersfoort". It never changes between versions and
	// may not contain spaces, '+' or line breaks.
	Origin string `yaml:"origin"`
	// Name is the covenant's full name, as signed.
	Name string `yaml:"name"`
	// EffectiveFrom is when this version of the covenant took effect. It
	// never goes back in time between versions.
	EffectiveFrom time.Time `yaml:"effective_from"`
	// Administrator is who administers the covenant and signs its versions.
	Administrator Administrator `yaml:"administrator"`
	// CentralDesk is true when one central privacy desk answers access
	// requests (inzage) for all parties; false when each party answers for
	// its own disclosures.
	CentralDesk bool `yaml:"central_desk"`
	// SubjectKeys are the ids of the pseudonym keys K_v in use, oldest
	// first; an access request looks under each. The secrets themselves are
	// never in the covenant.
	SubjectKeys []string `yaml:"subject_keys"`
	// VRFKeys is optional: for pseudonym key ids of subject_keys, the public
	// key of the VRF key pair that goes with them (issue 23), for example
	//
	//	vrf_keys:
	//	  - key_id: kv-2026-1
	//	    vrf_public_key: 5007db7f5fa75f8d8bfefb30417e4785eeac07f6a3315a6ddd1849a8a9349263
	//
	// Events under such a key id carry the subject's VRF output (schema
	// spoor.disclosure/v2), so that a parent can check an answer with the
	// number alone. The secret is held by the parties and the desk, like the
	// pseudonym key, and never appears here. Once listed, a key id's VRF
	// public key never changes or goes in a later version.
	VRFKeys []VRFKey `yaml:"vrf_keys,omitempty"`
	// Parties are the organisations that signed the covenant.
	Parties []Party `yaml:"parties"`
	// Vocabulary lists the words disclosures may use, with Dutch labels for
	// reports to parents and the FG.
	Vocabulary Vocabulary `yaml:"vocabulary"`
	// Rules are what the ledger checks every disclosure against; a broken
	// rule becomes a finding for the FG, never a rejection.
	Rules Rules `yaml:"rules"`
	// Retention says how long disclosures are kept.
	Retention Retention `yaml:"retention"`
	// WitnessPolicy is optional: the witnesses that must cosign the log's
	// checkpoints, as a C2SP tlog-policy text in a YAML block (`|`), for
	// example
	//
	//	witness fg-a fg-a.example+1234abcd+BASE64 https://fg-a.example/witness
	//	witness fg-b fg-b.example+5678ef01+BASE64 https://fg-b.example/witness
	//	witness fg-c fg-c.example+9abc2345+BASE64
	//	group fgs 2 fg-a fg-b fg-c
	//	quorum fgs
	//
	// (ParseWitnessPolicy has the rules). A policy whose quorum is none, or
	// that the log's own keys (the origin's or "<origin>/cosigner") could
	// meet alone, is refused. Empty: no witnesses yet.
	WitnessPolicy string `yaml:"witness_policy"`
	// Contact is optional: how a parent reaches the covenant's central
	// desk and the FG (functionaris gegevensbescherming). The parent's
	// report prints it; a covenant without it (every version before
	// contacts existed) reads "contactgegevens onbekend" there. A party's
	// own desk is Party.Contact.
	Contact *CovenantContacts `yaml:"contact,omitempty"`
	// NotificationKey is optional: the Ed25519 public key (32 bytes,
	// standard base64) with which the ledger signs its webhook
	// notifications (HTTP Message Signatures, RFC 9421; the receiver's
	// side is verifier/webhook). The operator keeps the private key and
	// names its file in the ledger's configuration; the ledger refuses to
	// notify with a key the covenant in force does not list. Empty: the
	// ledger sends no notifications.
	NotificationKey string `yaml:"notification_key,omitempty"`
}

// CovenantContacts are the covenant-wide contacts.
type CovenantContacts struct {
	// Desk is the central privacy desk (required when the covenant has
	// one and names contacts at all; otherwise each party's Contact is
	// its desk).
	Desk *Contact `yaml:"desk,omitempty"`
	// FG is the functionaris gegevensbescherming whom a parent may ask
	// about the covenant (AVG art. 38(4)).
	FG *Contact `yaml:"fg,omitempty"`
}

// Contact is how a parent reaches a desk or the FG. Name is required and
// at least one of Email, Phone and Address; every field is one line of
// plain text, since the report prints it as text.
type Contact struct {
	// Name names the office or person, for example "Privacybalie gemeente
	// Vlaardingen".
	Name string `yaml:"name"`
	// Role says what they do for a parent, for example
	// "functionaris gegevensbescherming"; optional.
	Role string `yaml:"role,omitempty"`
	// Email is an e-mail address (one '@', no spaces).
	Email string `yaml:"email,omitempty"`
	// Phone is a telephone number: digits, spaces, '+', '-', '(' and ')'.
	Phone string `yaml:"phone,omitempty"`
	// Address is the postal address on one line, parts separated by
	// commas, for example "Postbus 1002, 3130 EB Vlaardingen".
	Address string `yaml:"address,omitempty"`
}

// VRFKey pairs a pseudonym key id with the public key of its VRF key pair.
type VRFKey struct {
	// KeyID is an id of subject_keys.
	KeyID string `yaml:"key_id"`
	// PublicKey is the VRF public key (c2sp.org/vrf-r255): 64 lower-case hex
	// characters, as `spoor covenant vrf-keygen` prints it.
	PublicKey string `yaml:"vrf_public_key"`
}

// Administrator is who administers the covenant.
type Administrator struct {
	// Name is the organisation or office, for example "Convenantbeheer regio
	// Amersfoort".
	Name string `yaml:"name"`
	// Key is the administrator's Ed25519 verifier key in signed-note form
	// (name+hash+base64, as GenerateAdminKey and note.GenerateKey make it). Version 1 is signed by the key it names here; every later
	// version is signed by the key named in the version before it, so naming
	// a new key here hands the role over from the next version on.
	Key string `yaml:"key"`
}

// PartyKind is the kind of organisation a party is.
type PartyKind string

// The kinds of party a covenant knows.
const (
	KindGemeente               PartyKind = "gemeente"               // municipality (youth care, leerplicht)
	KindSWV                    PartyKind = "swv"                    // samenwerkingsverband passend onderwijs
	KindSchoolbestuur          PartyKind = "schoolbestuur"          // school board
	KindUitvoeringsorganisatie PartyKind = "uitvoeringsorganisatie" // shared executive organisation
	KindWijkteam               PartyKind = "wijkteam"               // neighbourhood team, CJG
	KindJeugdhulp              PartyKind = "jeugdhulp"              // youth care provider
	KindGGD                    PartyKind = "ggd"                    // public health, jeugdgezondheidszorg
	KindWelzijn                PartyKind = "welzijn"                // welfare organisation
)

// PartyKinds lists every party kind.
var PartyKinds = []PartyKind{KindGemeente, KindSWV, KindSchoolbestuur, KindUitvoeringsorganisatie,
	KindWijkteam, KindJeugdhulp, KindGGD, KindWelzijn}

// PublicBody reports whether parties of this kind are public authorities
// acting in their public task, for which AVG art. 6(1) ground f (legitimate
// interest) is not available.
func (k PartyKind) PublicBody() bool { return k == KindGemeente || k == KindGGD }

// Party is one organisation that signed the covenant.
type Party struct {
	// ID is the party's id: lower-case letters, digits and '-', at most 63
	// characters. It is also the NATS subject token the party publishes on,
	// so it never changes.
	ID string `yaml:"id"`
	// Name is the organisation's name as it appears to parents.
	Name string `yaml:"name"`
	// Kind is one of gemeente, swv, schoolbestuur, uitvoeringsorganisatie,
	// wijkteam, jeugdhulp, ggd, welzijn.
	Kind PartyKind `yaml:"kind"`
	// OIN, if given, is the party's Organisatie-identificatienummer: the 20
	// digits that Logius assigns and that a PKIoverheid certificate carries
	// in its subject serialNumber. A gateway that requires client
	// certificates maps a certificate to the party with its OIN, so an OIN
	// belongs to at most one party.
	OIN string `yaml:"oin,omitempty"`
	// Keys are the party's signing keys. A party without keys can receive
	// but not disclose. Keys are not removed when they expire, so that old
	// events still verify; a stolen key is marked revoked.
	Keys []CovenantKey `yaml:"keys"`
	// Contact is optional: how a parent reaches this party's privacy
	// desk. On a covenant without a central desk each party answers for
	// its own disclosures, and the parent's report lists every party with
	// this contact.
	Contact *Contact `yaml:"contact,omitempty"`
	// Webhook is optional: the https URL to which the ledger posts this
	// party's notifications (its refused disclosures and the covenant
	// findings on its logged ones, as signed CloudEvents; see
	// NotificationKey). No credentials, no fragment. A webhook URL comes
	// only from here: the ledger posts to no other address for a party.
	Webhook string `yaml:"webhook,omitempty"`
}

// CovenantKey is one signing key of a party and when it is in force.
type CovenantKey struct {
	// PublicKey is the 32-byte Ed25519 public key in standard base64 (the
	// public_key of the party's key file).
	PublicKey string `yaml:"public_key"`
	// ValidFrom is the first instant at which a disclosure may have occurred
	// under this key.
	ValidFrom time.Time `yaml:"valid_from"`
	// ValidUntil, if given, is the first instant at which the key is no
	// longer in force; it must be after ValidFrom.
	ValidUntil *time.Time `yaml:"valid_until,omitempty"`
	// Revoked marks a compromised or withdrawn key: every event logged after
	// this covenant version that is signed by it is refused, whatever its
	// occurred_at. A revoked key cannot be reinstated in a later version.
	Revoked bool `yaml:"revoked,omitempty"`
	// RevokedReason says why, and is required when Revoked is true.
	RevokedReason string `yaml:"revoked_reason,omitempty"`
}

// NotificationPublicKey decodes NotificationKey; it returns nil and no
// error when the covenant lists none.
func (c *Covenant) NotificationPublicKey() (ed25519.PublicKey, error) {
	if c.NotificationKey == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(c.NotificationKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("must be a 32-byte Ed25519 public key in standard base64")
	}
	return ed25519.PublicKey(b), nil
}

// webhookProblem says what is wrong with a party's webhook URL, or "".
// The ledger checks it again, with the address it resolves to, at each
// delivery (ledger/notify).
func webhookProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || len(s) > 2048:
		return "is not a URL of at most 2048 bytes"
	case u.Scheme != "https":
		return "must be an https URL"
	case u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not carry credentials"
	case u.Fragment != "" || strings.ContainsAny(s, " \t\n"):
		return "must not have a fragment or white space"
	}
	return ""
}

// Public decodes the public key.
func (k CovenantKey) Public() (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(k.PublicKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("public_key must be a 32-byte Ed25519 key in standard base64")
	}
	return ed25519.PublicKey(b), nil
}

// InForce reports whether t lies in [ValidFrom, ValidUntil).
func (k CovenantKey) InForce(t time.Time) bool {
	return !t.Before(k.ValidFrom) && (k.ValidUntil == nil || t.Before(*k.ValidUntil))
}

// Special marks a data category as special under the AVG.
type Special string

// The kinds of special category.
const (
	SpecialNone  Special = ""      // an ordinary category
	SpecialArt9  Special = "art9"  // special category, AVG art. 9 (health, ...)
	SpecialArt10 Special = "art10" // criminal convictions and offences, AVG art. 10
)

// Term is one word of a vocabulary: a stable id used in events and a Dutch
// label shown in reports.
type Term struct {
	// ID is lower-case letters, digits, '.' and '-'.
	ID string `yaml:"id"`
	// Label is the Dutch text shown to parents and the FG.
	Label string `yaml:"label"`
}

// Category is a data category of the vocabulary.
type Category struct {
	// ID is lower-case letters, digits, '.' and '-'.
	ID string `yaml:"id"`
	// Label is the Dutch text shown to parents and the FG.
	Label string `yaml:"label"`
	// Special is empty for an ordinary category, "art9" for a special
	// category of AVG art. 9 (health, in the broad sense youth care uses) and
	// "art10" for criminal data (AVG art. 10).
	Special Special `yaml:"special,omitempty"`
}

// Vocabulary is every word a disclosure may use.
type Vocabulary struct {
	// Categories are the data categories (dataminimalisatie is checked
	// against them).
	Categories []Category `yaml:"categories"`
	// Purposes are the covenant's purposes (doelbinding).
	Purposes []Term `yaml:"purposes"`
	// Grounds are the six grounds of AVG art. 6(1), with ids "a" to "f";
	// all six must be listed.
	Grounds []Term `yaml:"grounds"`
	// Exceptions are the AVG art. 9(2) and UAVG exceptions (for example
	// "avg-9-2-h", "uavg-30").
	Exceptions []Term `yaml:"exceptions"`
	// Statutes are the statutory articles disclosures may cite (for example
	// "jeugdwet-7.3.11", "leerplichtwet-21").
	Statutes []Term `yaml:"statutes"`
	// Roles are the staff roles of the person who discloses (NEN 7513).
	Roles []Term `yaml:"roles"`
}

// Rules are the covenant's rules that every disclosure is checked against.
type Rules struct {
	// Purposes maps every purpose id to the categories it may need
	// (dataminimalisatie). Every purpose of the vocabulary has an entry.
	Purposes map[string][]string `yaml:"purposes"`
	// SpecialCategoryExceptions maps "art9" and "art10" to the exceptions
	// that allow a category of that kind; a disclosure of such a category
	// must name one of them as legal_basis.exception. An entry is required
	// for each kind that a category of the vocabulary has.
	SpecialCategoryExceptions map[Special][]string `yaml:"special_category_exceptions"`
	// Consent says when consent is needed and who gives it.
	Consent ConsentRules `yaml:"consent"`
	// LateRecordingHours is how long after occurred_at a disclosure may be
	// recorded in the ledger before the FG sees it as an anomaly.
	LateRecordingHours int `yaml:"late_recording_hours"`
}

// ConsentRules say when a disclosure needs consent and who may give it.
type ConsentRules struct {
	// RequiredForGrounds are AVG art. 6 grounds that are themselves consent
	// (normally just "a").
	RequiredForGrounds []string `yaml:"required_for_grounds"`
	// RequiredForExceptions are art. 9 exceptions that are consent
	// (normally "avg-9-2-a").
	RequiredForExceptions []string `yaml:"required_for_exceptions"`
	// RequiredForDiscloserKinds are kinds of party that may share only with
	// consent (Jeugdwet art. 7.3.11: youth care) ...
	RequiredForDiscloserKinds []PartyKind `yaml:"required_for_discloser_kinds"`
	// ExemptStatutes ... unless the disclosure cites one of these statutes
	// (for example the meldcode, or 7.3.11's own exceptions).
	ExemptStatutes []string `yaml:"exempt_statutes"`
	// ByAgeBand says who gives consent in each age band: under-12, 12-15
	// and 16-plus must all be listed, each with parents, child-and-parents
	// or young-person.
	ByAgeBand map[AgeBand]ConsentGiver `yaml:"by_age_band"`
}

// Retention says how long disclosures are kept, in days from the moment the
// ledger recorded them (integrated_at).
type Retention struct {
	// DefaultDays applies to categories not listed in Categories.
	DefaultDays int `yaml:"default_days"`
	// Categories maps a category id to its own retention in days.
	Categories map[string]int `yaml:"categories"`
	// ErasureNoticeDays is how long, after an erasure, the notice that
	// lets a parent be told that a record was erased (when and why) is kept.
	ErasureNoticeDays int `yaml:"erasure_notice_days"`
	// AnswersDays is how long the body of an inzage answer entry (and the
	// bundle kept beside it) is kept, in days from when the answer was
	// logged; the retention job then tombstones it like a disclosure.
	// Optional: 0 (or absent) means AnswerRetentionDays' default, the
	// longest period the covenant keeps any disclosure.
	AnswersDays int `yaml:"answers_days,omitempty"`
}

// AnswerRetentionDays returns how many days an inzage answer's body is
// kept: Retention.AnswersDays when set, else the longest disclosure
// retention of the covenant (the default and every category). Why that
// default: an answer is itself a disclosure to the requester and the
// evidence of what was handed out; as long as the covenant keeps any
// disclosure it could list, the record of what a parent was told about it
// should stay too, and no longer, since it repeats the child's
// pseudonyms.
func (c *Covenant) AnswerRetentionDays() int {
	if c.Retention.AnswersDays > 0 {
		return c.Retention.AnswersDays
	}
	days := c.Retention.DefaultDays
	for _, d := range c.Retention.Categories {
		days = max(days, d)
	}
	return days
}

// maxDays bounds every period so that it converts to a time.Duration
// without overflow (a century is plenty for any retention rule).
const maxDays = 36500

// CovenantError is one problem with one field of a covenant file. Field is a
// path such as "parties[3].keys[0].valid_from" (empty for the file as a
// whole); Line is the line in the file where the field (or the nearest
// enclosing one) is, or 0 when unknown.
type CovenantError struct {
	Field  string
	Reason string
	Line   int
	// within is the line inside a multi-line value (the witness policy)
	// the problem is on, 1-based, or 0; ParseCovenantYAML adds it to the
	// field's line when the value is a literal block.
	within int
}

func (e *CovenantError) Error() string {
	s := e.Reason
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	return s
}

// CovenantErrors is every problem found in a covenant file, in file order.
type CovenantErrors []*CovenantError

func (es CovenantErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid covenant: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each *CovenantError.
func (es CovenantErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ParseCovenantYAML decodes a covenant file strictly and validates it.
// Unknown fields, values of the wrong type, YAML aliases, merge keys, custom
// tags, duplicate keys and more than one document are errors, as is every
// rule of Validate; all problems are returned at once as CovenantErrors,
// each naming its field path and line.
func ParseCovenantYAML(b []byte) (*Covenant, error) {
	if len(b) > MaxCovenantSize {
		return nil, CovenantErrors{{Reason: fmt.Sprintf("the file is %d bytes; a covenant may be at most %d bytes so that its signed form fits in one log entry", len(b), MaxCovenantSize)}}
	}
	if !utf8.Valid(b) {
		return nil, CovenantErrors{{Reason: "the file is not UTF-8 text"}}
	}
	root, err := parseYAMLDocument(b)
	if err != nil {
		return nil, err
	}
	w := nodeWalker{lines: map[string]int{}, blocks: map[string]bool{}}
	w.walk("", root, reflect.TypeFor[Covenant]())
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	// The walk above has checked the shape and named the paths; the decoding
	// itself is yaml.v3's own, with unknown fields refused once more.
	var c Covenant
	if err := decodeKnownFields(b, &c); err != nil {
		return nil, CovenantErrors{{Reason: err.Error()}}
	}
	if err := c.Validate(); err != nil {
		var es CovenantErrors
		if errors.As(err, &es) {
			for _, e := range es {
				e.Line = w.lineOf(e.Field)
				if e.within > 0 && w.blocks[e.Field] {
					e.Line += e.within
				}
			}
		}
		return nil, err
	}
	return &c, nil
}

// parseYAMLDocument parses b into a node tree and returns the top node of
// its one document.
func parseYAMLDocument(b []byte) (root *yaml.Node, err error) {
	// yaml.v3 has internal panics on some malformed input; never let input
	// crash the caller (the ledger refuses to start, it does not crash).
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, CovenantErrors{{Reason: "the file is not valid YAML (the parser gave up)"}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, CovenantErrors{{Reason: "the file is empty"}}
		}
		return nil, CovenantErrors{{Reason: "the file is not valid YAML: " + err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, CovenantErrors{{Reason: "the file holds more than one YAML document (remove the second '---')"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, CovenantErrors{{Reason: "the file is empty"}}
	}
	return doc.Content[0], nil
}

func decodeKnownFields(b []byte, c *Covenant) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("the file is not valid YAML (the decoder gave up)")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(c)
}

var timeType = reflect.TypeFor[time.Time]()

// nodeWalker checks a YAML node tree against the Go type it will be decoded
// into, so that every problem names its field path (yaml.v3's own errors
// name only a line and a Go type). It records the line of every path for
// the errors of Validate.
type nodeWalker struct {
	errs  CovenantErrors
	lines map[string]int
	// blocks holds the paths whose value is a literal block (`|`), whose
	// n-th line is n lines below the field's.
	blocks map[string]bool
}

func (w *nodeWalker) bad(path string, n *yaml.Node, format string, args ...any) {
	w.errs = append(w.errs, &CovenantError{Field: path, Reason: fmt.Sprintf(format, args...), Line: n.Line})
}

// lineOf returns the line of path, or of its nearest enclosing field.
func (w *nodeWalker) lineOf(path string) int {
	for {
		if l, ok := w.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return w.lines[""]
		}
		path = path[:i]
	}
}

// standardTags are the YAML tags a covenant may use (implicitly, as plain
// values do, or written out).
var standardTags = map[string]bool{"!!str": true, "!!int": true, "!!bool": true, "!!float": true,
	"!!null": true, "!!timestamp": true, "!!seq": true, "!!map": true}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (w *nodeWalker) walk(path string, n *yaml.Node, t reflect.Type) {
	w.lines[path] = n.Line
	if n.Style&yaml.LiteralStyle != 0 {
		w.blocks[path] = true
	}
	if n.Kind == yaml.AliasNode {
		w.bad(path, n, "is a YAML alias (*%s); write the value out in full", n.Value)
		return
	}
	if !standardTags[n.ShortTag()] {
		w.bad(path, n, "uses the YAML tag %q; covenant files use plain values only", n.ShortTag())
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// An empty value is the zero value; Validate says if it is required.
		return
	}
	switch {
	case t == timeType:
		if n.Kind != yaml.ScalarNode || !isUTCTime(n.Value) {
			w.bad(path, n, "must be a time in UTC such as 2023-05-25T00:00:00Z")
			return
		}
		var v time.Time
		if err := n.Decode(&v); err != nil {
			w.bad(path, n, "must be a time in UTC such as 2023-05-25T00:00:00Z")
		}
	case t.Kind() == reflect.Pointer:
		w.walk(path, n, t.Elem())
	case t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		w.mapping(path, n, "a set of fields", func(key string, kn, vn *yaml.Node) {
			ft, ok := fields[key]
			if !ok {
				w.bad(joinPath(path, key), kn, "unknown field (the fields here are %s)", strings.Join(sortedFieldNames(fields), ", "))
				return
			}
			w.walk(joinPath(path, key), vn, ft)
		})
	case t.Kind() == reflect.Map:
		w.mapping(path, n, "a map of ids to values", func(key string, kn, vn *yaml.Node) {
			w.walk(joinPath(path, key), vn, t.Elem())
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.bad(path, n, "must be a list (%s)", describeYAMLKind(n))
			return
		}
		for i, c := range n.Content {
			w.walk(fmt.Sprintf("%s[%d]", path, i), c, t.Elem())
		}
	default:
		want := describeGoType(t)
		if n.Kind != yaml.ScalarNode {
			w.bad(path, n, "must be %s (%s)", want, describeYAMLKind(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.bad(path, n, "must be %s", want)
		}
	}
}

// mapping walks the key/value pairs of a mapping node, refusing non-text
// keys, merge keys and keys given twice.
func (w *nodeWalker) mapping(path string, n *yaml.Node, what string, each func(key string, kn, vn *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		w.bad(path, n, "must be %s (%s)", what, describeYAMLKind(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		switch {
		case kn.Kind != yaml.ScalarNode:
			w.bad(path, kn, "has a key that is not plain text")
			continue
		case kn.ShortTag() == "!!merge":
			w.bad(path, kn, "uses a YAML merge key (<<); write the fields out in full")
			continue
		case !standardTags[kn.ShortTag()]:
			w.bad(path, kn, "has a key with the YAML tag %q", kn.ShortTag())
			continue
		}
		if first, dup := seen[kn.Value]; dup {
			w.bad(joinPath(path, kn.Value), kn, "is given twice (first on line %d)", first)
			continue
		}
		seen[kn.Value] = kn.Line
		each(kn.Value, kn, vn)
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedFieldNames(fields map[string]reflect.Type) []string {
	return slices.Sorted(maps.Keys(fields))
}

func describeGoType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

func describeYAMLKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "found a set of fields"
	case yaml.SequenceNode:
		return "found a list"
	case yaml.ScalarNode:
		return "found a single value"
	}
	return "found something else"
}

// isUTCTime reports whether s is an RFC 3339 time ending in Z. Covenant
// times are in UTC so that no reader has to guess a time zone.
func isUTCTime(s string) bool {
	if !strings.HasSuffix(s, "Z") || !strings.Contains(s, "T") {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// Validate checks every rule of a covenant version on its own (the rules
// that relate it to the previous version are Chain.Append's) and returns
// every problem at once as CovenantErrors, or nil.
func (c *Covenant) Validate() error {
	var errs CovenantErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &CovenantError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	text := func(field, v string) {
		switch {
		case strings.TrimSpace(v) == "":
			bad(field, "is required")
		case len(v) > maxTextLen:
			bad(field, "is longer than %d bytes", maxTextLen)
		}
	}
	timeField := func(field string, t time.Time) {
		switch {
		case t.IsZero():
			bad(field, "is required")
		case t.Year() < 2000 || t.Year() > 9999:
			bad(field, "must be a time between the years 2000 and 9999")
		}
	}
	days := func(field string, v int) {
		if v < 1 || v > maxDays {
			bad(field, "must be a number of days from 1 to %d", maxDays)
		}
	}

	switch c.Schema {
	case CovenantSchemaV1:
	case "":
		bad("schema", "is required (%s)", CovenantSchemaV1)
	default:
		bad("schema", "must be %s", CovenantSchemaV1)
	}
	if c.Version < 1 {
		bad("version", "must be 1 or more")
	}
	switch {
	case c.Version == 1 && c.Previous != "":
		bad("previous", "must be empty in version 1")
	case c.Version > 1 && !hex64RE.MatchString(c.Previous):
		bad("previous", "must be the lower-case hex SHA-256 of version %d's signed file", c.Version-1)
	}
	switch {
	case c.Origin == "":
		bad("origin", "is required")
	case len(c.Origin) > 255:
		bad("origin", "is longer than 255 bytes")
	case strings.ContainsFunc(c.Origin, func(r rune) bool { return r == '+' || unicode.IsSpace(r) || unicode.IsControl(r) }):
		bad("origin", "must not contain spaces, line breaks, control characters or '+'")
	}
	text("name", c.Name)
	timeField("effective_from", c.EffectiveFrom)
	text("administrator.name", c.Administrator.Name)
	if c.Administrator.Key == "" {
		bad("administrator.key", "is required")
	} else if _, err := AdminPublicKey(c.Administrator.Key); err != nil {
		bad("administrator.key", "%s", err.Error())
	}

	if len(c.SubjectKeys) == 0 {
		bad("subject_keys", "must name at least one pseudonym key")
	}
	for i, k := range c.SubjectKeys {
		field := fmt.Sprintf("subject_keys[%d]", i)
		switch {
		case !keyIDRE.MatchString(k):
			bad(field, "must be a key id (letters, digits, '.', '_' or '-')")
		case slices.Index(c.SubjectKeys, k) != i:
			bad(field, "repeats %q", k)
		}
	}

	vrfSeen := map[string]int{}
	for i, k := range c.VRFKeys {
		field := fmt.Sprintf("vrf_keys[%d]", i)
		switch j, dup := vrfSeen[k.KeyID]; {
		case !slices.Contains(c.SubjectKeys, k.KeyID):
			bad(field+".key_id", "must be a key id of subject_keys")
		case dup:
			bad(field+".key_id", "repeats vrf_keys[%d]", j)
		}
		vrfSeen[k.KeyID] = i
		if _, err := aboutchild.ParsePublicKeyHex(k.PublicKey); err != nil {
			bad(field+".vrf_public_key", "must be a VRF public key: 64 lower-case hex characters of a canonical ristretto255 element")
		}
	}

	if len(c.Parties) == 0 {
		bad("parties", "must list at least one party")
	}
	partyIDs := map[string]bool{}
	keyOwner := map[string]string{} // public key -> field where first listed
	oinOwner := map[string]string{} // OIN -> party id
	for i, p := range c.Parties {
		field := fmt.Sprintf("parties[%d]", i)
		switch {
		case p.ID == "":
			bad(field+".id", "is required")
		case !ValidPartyID(p.ID):
			bad(field+".id", "must be lower-case letters, digits and '-' (at most 63, starting with a letter or digit)")
		case partyIDs[p.ID]:
			bad(field+".id", "repeats %q", p.ID)
		}
		partyIDs[p.ID] = true
		if p.OIN != "" {
			switch first, dup := oinOwner[p.OIN]; {
			case !ValidOIN(p.OIN):
				bad(field+".oin", "must be an OIN: 20 digits")
			case dup:
				bad(field+".oin", "is already the OIN of %s (an OIN names one organisation)", first)
			default:
				oinOwner[p.OIN] = p.ID
			}
		}
		text(field+".name", p.Name)
		switch {
		case p.Kind == "":
			bad(field+".kind", "is required")
		case !slices.Contains(PartyKinds, p.Kind):
			bad(field+".kind", "must be one of %s", joinKinds(PartyKinds))
		}
		for j, k := range p.Keys {
			kf := fmt.Sprintf("%s.keys[%d]", field, j)
			switch {
			case k.PublicKey == "":
				bad(kf+".public_key", "is required")
			default:
				if _, err := k.Public(); err != nil {
					bad(kf+".public_key", "must be a 32-byte Ed25519 public key in standard base64")
				} else if first, dup := keyOwner[k.PublicKey]; dup {
					bad(kf+".public_key", "is already listed at %s (a key belongs to one party, once)", first)
				} else {
					keyOwner[k.PublicKey] = kf
				}
			}
			timeField(kf+".valid_from", k.ValidFrom)
			if k.ValidUntil != nil {
				timeField(kf+".valid_until", *k.ValidUntil)
				if !k.ValidFrom.IsZero() && !k.ValidUntil.After(k.ValidFrom) {
					bad(kf+".valid_until", "must be after valid_from")
				}
			}
			switch {
			case k.Revoked && strings.TrimSpace(k.RevokedReason) == "":
				bad(kf+".revoked_reason", "is required when revoked is true")
			case !k.Revoked && k.RevokedReason != "":
				bad(kf+".revoked_reason", "is only for a revoked key (set revoked: true, or remove it)")
			case len(k.RevokedReason) > maxTextLen:
				bad(kf+".revoked_reason", "is longer than %d bytes", maxTextLen)
			}
		}
	}

	v := &c.Vocabulary
	cats := make([]Term, len(v.Categories))
	for i, cat := range v.Categories {
		cats[i] = Term{ID: cat.ID, Label: cat.Label}
		switch cat.Special {
		case SpecialNone, SpecialArt9, SpecialArt10:
		default:
			bad(fmt.Sprintf("vocabulary.categories[%d].special", i), "must be empty, art9 or art10")
		}
	}
	terms := func(field string, list []Term, required bool) {
		if required && len(list) == 0 {
			bad(field, "must list at least one entry")
		}
		for i, t := range list {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case t.ID == "":
				bad(f+".id", "is required")
			case !vocabIDRE.MatchString(t.ID):
				bad(f+".id", "must be lower-case letters, digits, '.' and '-' (at most 63)")
			case slices.IndexFunc(list, func(o Term) bool { return o.ID == t.ID }) != i:
				bad(f+".id", "repeats %q", t.ID)
			}
			text(f+".label", t.Label)
		}
	}
	terms("vocabulary.categories", cats, true)
	terms("vocabulary.purposes", v.Purposes, true)
	terms("vocabulary.grounds", v.Grounds, true)
	terms("vocabulary.exceptions", v.Exceptions, false)
	terms("vocabulary.statutes", v.Statutes, false)
	terms("vocabulary.roles", v.Roles, true)
	for i, g := range v.Grounds {
		if g.ID != "" && !groundRE.MatchString(g.ID) {
			bad(fmt.Sprintf("vocabulary.grounds[%d].id", i), "must be one of the AVG art. 6(1) grounds a to f")
		}
	}
	for _, g := range []string{"a", "b", "c", "d", "e", "f"} {
		if !hasTerm(v.Grounds, g) {
			bad("vocabulary.grounds", "must list ground %q (all six grounds a to f are listed)", g)
		}
	}

	r := &c.Rules
	inList := func(field string, ids []string, list []Term, what string) {
		for i, id := range ids {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case !hasTerm(list, id):
				bad(f, "%q is not in vocabulary.%s", id, what)
			case slices.Index(ids, id) != i:
				bad(f, "repeats %q", id)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(r.Purposes)) {
		field := "rules.purposes." + p
		if !hasTerm(v.Purposes, p) {
			bad(field, "purpose %q is not in vocabulary.purposes", p)
		}
		if len(r.Purposes[p]) == 0 {
			bad(field, "must list the categories the purpose needs")
		}
		inList(field, r.Purposes[p], cats, "categories")
	}
	for _, p := range v.Purposes {
		if _, ok := r.Purposes[p.ID]; !ok && p.ID != "" {
			bad("rules.purposes", "has no entry for purpose %q (list the categories it needs)", p.ID)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(r.SpecialCategoryExceptions)) {
		field := "rules.special_category_exceptions." + string(s)
		if s != SpecialArt9 && s != SpecialArt10 {
			bad(field, "only art9 and art10 are special kinds")
			continue
		}
		if len(r.SpecialCategoryExceptions[s]) == 0 {
			bad(field, "must list at least one exception")
		}
		inList(field, r.SpecialCategoryExceptions[s], v.Exceptions, "exceptions")
	}
	for _, cat := range v.Categories {
		if cat.Special == SpecialArt9 || cat.Special == SpecialArt10 {
			if _, ok := r.SpecialCategoryExceptions[cat.Special]; !ok {
				bad("rules.special_category_exceptions", "has no entry for %s, which category %q is", cat.Special, cat.ID)
			}
		}
	}
	inList("rules.consent.required_for_grounds", r.Consent.RequiredForGrounds, v.Grounds, "grounds")
	inList("rules.consent.required_for_exceptions", r.Consent.RequiredForExceptions, v.Exceptions, "exceptions")
	inList("rules.consent.exempt_statutes", r.Consent.ExemptStatutes, v.Statutes, "statutes")
	for i, k := range r.Consent.RequiredForDiscloserKinds {
		f := fmt.Sprintf("rules.consent.required_for_discloser_kinds[%d]", i)
		switch {
		case !slices.Contains(PartyKinds, k):
			bad(f, "must be one of %s", joinKinds(PartyKinds))
		case slices.Index(r.Consent.RequiredForDiscloserKinds, k) != i:
			bad(f, "repeats %q", k)
		}
	}
	for _, band := range slices.Sorted(maps.Keys(r.Consent.ByAgeBand)) {
		field := "rules.consent.by_age_band." + string(band)
		if !slices.Contains(AgeBands, band) {
			bad(field, "is not an age band (under-12, 12-15, 16-plus)")
			continue
		}
		switch r.Consent.ByAgeBand[band] {
		case ConsentParents, ConsentChildAndParents, ConsentYoungPerson:
		default:
			bad(field, "must be parents, child-and-parents or young-person")
		}
	}
	for _, band := range AgeBands {
		if _, ok := r.Consent.ByAgeBand[band]; !ok {
			bad("rules.consent.by_age_band", "must say who consents for age band %s", band)
		}
	}
	if r.LateRecordingHours < 1 || r.LateRecordingHours > 24*365 {
		bad("rules.late_recording_hours", "must be a number of hours from 1 to %d", 24*365)
	}

	days("retention.default_days", c.Retention.DefaultDays)
	for _, cat := range slices.Sorted(maps.Keys(c.Retention.Categories)) {
		field := "retention.categories." + cat
		if !hasTerm(cats, cat) {
			bad(field, "category %q is not in vocabulary.categories", cat)
		}
		days(field, c.Retention.Categories[cat])
	}
	days("retention.erasure_notice_days", c.Retention.ErasureNoticeDays)
	if c.Retention.AnswersDays != 0 {
		days("retention.answers_days", c.Retention.AnswersDays)
	}

	if c.WitnessPolicy != "" {
		policyBad := func(line int, reason string) {
			errs = append(errs, &CovenantError{Field: "witness_policy", Reason: fmt.Sprintf("policy line %d: %s", line, reason), within: line})
		}
		p, err := ParseWitnessPolicy(c.WitnessPolicy)
		var pe *WitnessPolicyError
		switch {
		case errors.As(err, &pe):
			policyBad(pe.Line, pe.Reason)
		case err != nil:
			bad("witness_policy", "%s", err.Error())
		default:
			if line, reason := p.checkOperatorCannotMeet(c.Origin); line > 0 {
				policyBad(line, reason)
			}
		}
	}

	for i, p := range c.Parties {
		if p.Contact != nil {
			errs = append(errs, p.Contact.problems(fmt.Sprintf("parties[%d].contact", i))...)
		}
		if p.Webhook != "" {
			if reason := webhookProblem(p.Webhook); reason != "" {
				bad(fmt.Sprintf("parties[%d].webhook", i), "%s", reason)
			}
		}
	}
	if c.NotificationKey != "" {
		if _, err := c.NotificationPublicKey(); err != nil {
			bad("notification_key", "%s", err.Error())
		}
	}
	if c.Contact != nil {
		if c.Contact.Desk == nil && c.Contact.FG == nil {
			bad("contact", "names no one: give desk, fg or both")
		}
		if c.CentralDesk && c.Contact.Desk == nil {
			bad("contact.desk", "is required when central_desk is true (the central desk answers the parents)")
		}
		if c.Contact.Desk != nil {
			errs = append(errs, c.Contact.Desk.problems("contact.desk")...)
		}
		if c.Contact.FG != nil {
			errs = append(errs, c.Contact.FG.problems("contact.fg")...)
		}
	}

	if len(errs) == 0 {
		return nil
	}
	return errs
}

// maxContactLen bounds each field of a contact: a line on a page.
const maxContactLen = 200

// problems checks a contact whose field path is field.
func (ct *Contact) problems(field string) CovenantErrors {
	var errs CovenantErrors
	bad := func(f, format string, args ...any) {
		errs = append(errs, &CovenantError{Field: field + "." + f, Reason: fmt.Sprintf(format, args...)})
	}
	line := func(f, v string) bool {
		switch {
		case len(v) > maxContactLen:
			bad(f, "is longer than %d bytes", maxContactLen)
		case strings.ContainsFunc(v, unicode.IsControl):
			bad(f, "must be one line of text (no line breaks or control characters)")
		default:
			return true
		}
		return false
	}
	if strings.TrimSpace(ct.Name) == "" {
		bad("name", "is required")
	}
	line("name", ct.Name)
	line("role", ct.Role)
	if ct.Email == "" && ct.Phone == "" && ct.Address == "" {
		errs = append(errs, &CovenantError{Field: field, Reason: "needs at least one of email, phone and address"})
	}
	if ct.Email != "" && line("email", ct.Email) {
		at := strings.Index(ct.Email, "@")
		if at < 1 || at != strings.LastIndex(ct.Email, "@") || at == len(ct.Email)-1 ||
			strings.ContainsFunc(ct.Email, unicode.IsSpace) || !strings.Contains(ct.Email[at:], ".") {
			bad("email", "must be an e-mail address such as privacy@example.nl")
		}
	}
	if ct.Phone != "" && line("phone", ct.Phone) {
		digits := 0
		for _, r := range ct.Phone {
			switch {
			case r >= '0' && r <= '9':
				digits++
			case strings.ContainsRune(" +-()", r):
			default:
				bad("phone", "may hold only digits, spaces, '+', '-', '(' and ')'")
				return errs
			}
		}
		if digits < 3 {
			bad("phone", "must be a telephone number")
		}
	}
	line("address", ct.Address)
	return errs
}

func joinKinds(kinds []PartyKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func hasTerm(list []Term, id string) bool {
	return slices.ContainsFunc(list, func(t Term) bool { return t.ID == id })
}

func termLabel(list []Term, id string) string {
	if i := slices.IndexFunc(list, func(t Term) bool { return t.ID == id }); i >= 0 {
		return list[i].Label
	}
	return id
}

// Party returns the party with id.
func (c *Covenant) Party(id string) (Party, bool) {
	if i := slices.IndexFunc(c.Parties, func(p Party) bool { return p.ID == id }); i >= 0 {
		return c.Parties[i], true
	}
	return Party{}, false
}

// PartyByOIN returns the party whose oin is oin.
func (c *Covenant) PartyByOIN(oin string) (Party, bool) {
	if oin == "" {
		return Party{}, false
	}
	if i := slices.IndexFunc(c.Parties, func(p Party) bool { return p.OIN == oin }); i >= 0 {
		return c.Parties[i], true
	}
	return Party{}, false
}

// ValidOIN reports whether s has the form of an OIN (Organisatie-
// identificatienummer): exactly 20 ASCII digits. The OIN has no check
// digit; which numbers are assigned only the OIN register knows.
func ValidOIN(s string) bool {
	if len(s) != 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PartyName returns the party's name, or the id if it is not a party.
func (c *Covenant) PartyName(id string) string {
	if p, ok := c.Party(id); ok {
		return p.Name
	}
	return id
}

// Category returns the data category with id.
func (c *Covenant) Category(id string) (Category, bool) {
	if i := slices.IndexFunc(c.Vocabulary.Categories, func(t Category) bool { return t.ID == id }); i >= 0 {
		return c.Vocabulary.Categories[i], true
	}
	return Category{}, false
}

// CategoryLabel returns the Dutch label of a data category, or the id if it
// is not in the vocabulary. The labels below do the same for their lists.
func (c *Covenant) CategoryLabel(id string) string {
	if cat, ok := c.Category(id); ok {
		return cat.Label
	}
	return id
}

// PurposeLabel returns the Dutch label of a purpose.
func (c *Covenant) PurposeLabel(id string) string { return termLabel(c.Vocabulary.Purposes, id) }

// GroundLabel returns the Dutch label of an AVG art. 6(1) ground.
func (c *Covenant) GroundLabel(id string) string { return termLabel(c.Vocabulary.Grounds, id) }

// ExceptionLabel returns the Dutch label of an art. 9/10 exception.
func (c *Covenant) ExceptionLabel(id string) string { return termLabel(c.Vocabulary.Exceptions, id) }

// StatuteLabel returns the Dutch label of a statutory article.
func (c *Covenant) StatuteLabel(id string) string { return termLabel(c.Vocabulary.Statutes, id) }

// RoleLabel returns the Dutch label of a staff role.
func (c *Covenant) RoleLabel(id string) string { return termLabel(c.Vocabulary.Roles, id) }

// RetentionDays returns how many days a disclosure of category is kept:
// its own period, or the default.
func (c *Covenant) RetentionDays(category string) int {
	if d, ok := c.Retention.Categories[category]; ok {
		return d
	}
	return c.Retention.DefaultDays
}

// RetentionDaysFor returns how many days a disclosure of all of categories
// is kept: the shortest of their periods, since one envelope cannot be
// erased in part and keeping it longer would keep the most sensitive
// category past its term. With no categories it is the default.
func (c *Covenant) RetentionDaysFor(categories []string) int {
	days := 0
	for _, cat := range categories {
		if d := c.RetentionDays(cat); days == 0 || d < days {
			days = d
		}
	}
	if days == 0 {
		return c.Retention.DefaultDays
	}
	return days
}

// PartyKey returns the public key of party with fingerprint keyID if this
// covenant version has it in force at t. It implements KeyResolver: an
// unknown party wraps ErrUnknownParty; a key this version marks revoked
// wraps ErrKeyRevoked whatever t is (a signer chooses occurred_at, so a
// window alone would let a stolen key back-date); a key not listed, or t
// outside [valid_from, valid_until), wraps ErrKeyNotInForce.
func (c *Covenant) PartyKey(party, keyID string, t time.Time) (ed25519.PublicKey, error) {
	p, ok := c.Party(party)
	if !ok {
		// The discloser is not repeated: it is not a party, so the
		// sender chose it.
		return nil, fmt.Errorf("the discloser is not a party of covenant version %d: %w", c.Version, ErrUnknownParty)
	}
	for _, k := range p.Keys {
		pub, err := k.Public()
		if err != nil || KeyID(pub) != keyID {
			continue
		}
		if k.Revoked {
			return nil, fmt.Errorf("key %s of party %s is revoked in covenant version %d: %w", shortKeyID(keyID), party, c.Version, ErrKeyRevoked)
		}
		if !k.InForce(t) {
			return nil, fmt.Errorf("key %s of party %s is not in force at %s: %w", shortKeyID(keyID), party, t.UTC().Format(time.RFC3339), ErrKeyNotInForce)
		}
		return pub, nil
	}
	// The keyid is not repeated: it matches no key, so the sender chose it.
	return nil, fmt.Errorf("party %s has no key with that keyid in covenant version %d: %w", party, c.Version, ErrKeyNotInForce)
}

// VRFKey returns the VRF public key this version pairs with pseudonym key
// id keyID, if it lists one.
func (c *Covenant) VRFKey(keyID string) (*aboutchild.PublicKey, bool) {
	for _, k := range c.VRFKeys {
		if k.KeyID == keyID {
			pk, err := aboutchild.ParsePublicKeyHex(k.PublicKey)
			return pk, err == nil
		}
	}
	return nil, false
}

// shortKeyID shortens a fingerprint for messages, and does not repeat a
// keyid that is not one (it comes from an envelope, so from anyone).
func shortKeyID(keyID string) string {
	if !hex64RE.MatchString(keyID) {
		return "(malformed keyid)"
	}
	return keyID[:16]
}

// quoteKeyID quotes a pseudonym key id, or says it is not one.
func quoteKeyID(s string) string {
	if keyIDRE.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return "(not a key id)"
}

// quoteID quotes an id for a message, or says it is not one, so that
// messages never carry free text from an event.
func quoteID(s string) string {
	if vocabIDRE.MatchString(s) || partyIDRE.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return "(not an id)"
}

// Finding is one covenant rule that a recorded disclosure breaks. Findings
// are stored with the event and shown to the FG; they never reject an
// event. Messages are English and carry ids only, never a pseudonym or
// other personal data; FindingLabelNL gives the Dutch name of the rule.
type Finding struct {
	// Rule is a stable rule id, one of the Rule constants.
	Rule string `json:"rule"`
	// Field is the disclosure field the finding is about, for example
	// "categories[1]" or "legal_basis.exception".
	Field string `json:"field"`
	// Message says what is wrong, in English.
	Message string `json:"message"`
}

// The rule ids of findings. They are stable: they are stored with events,
// counted in reports and used as metric labels.
const (
	RulePurposeUnknown           = "purpose-unknown"
	RuleCategoryUnknown          = "category-unknown"
	RuleCategoryNotNeeded        = "category-not-needed"
	RuleSpecialWithoutException  = "special-category-without-exception"
	RuleConsentMissing           = "consent-missing"
	RuleConsentWrongGiver        = "consent-wrong-giver"
	RuleRecipientOutsideCovenant = "recipient-outside-covenant"
	RuleGroundUnknown            = "ground-unknown"
	RuleExceptionUnknown         = "exception-unknown"
	RuleStatuteUnknown           = "statute-unknown"
	RuleRoleUnknown              = "role-unknown"
	RulePublicBodyGroundF        = "public-body-ground-f"
	RuleRecordedLate             = "recorded-late"
	RuleOccurredAfterRecording   = "occurred-after-recording"
	// A correction (AVG art. 16) must reference an earlier event of the
	// same discloser; the ledger checks that when it records it.
	RuleCorrectionUnknown        = "correction-target-unknown"
	RuleCorrectionOtherDiscloser = "correction-other-discloser"
	// A free-text field holds a nine-digit number that passes the
	// elfproef: possibly a BSN (possiblebsn.go). Recorded, never refused.
	RulePossibleBSN = "possible-bsn"
	// The event's schema does not fit its pseudonym key: the covenant pairs
	// the key id with a VRF key and the event has no VRF output, or the
	// other way round (issue 23). The ledger checks only the output's form;
	// a parent's check then shows the entry as not checkable.
	RuleVRFOutputMismatch = "vrf-output-mismatch"
)

var findingLabelsNL = map[string]string{
	RulePurposeUnknown:           "Doel staat niet in het convenant",
	RuleCategoryUnknown:          "Gegevenscategorie staat niet in het convenant",
	RuleCategoryNotNeeded:        "Gegevens niet nodig voor dit doel (dataminimalisatie)",
	RuleSpecialWithoutException:  "Bijzonder of strafrechtelijk gegeven zonder passende uitzonderingsgrond",
	RuleConsentMissing:           "Toestemming ontbreekt",
	RuleConsentWrongGiver:        "Toestemming niet gegeven door wie dat bij deze leeftijd doet",
	RuleRecipientOutsideCovenant: "Ontvanger valt buiten het convenant",
	RuleGroundUnknown:            "Grondslag staat niet in het convenant",
	RuleExceptionUnknown:         "Uitzonderingsgrond staat niet in het convenant",
	RuleStatuteUnknown:           "Wetsartikel staat niet in het convenant",
	RuleRoleUnknown:              "Rol van de medewerker staat niet in het convenant",
	RulePublicBodyGroundF:        "Gerechtvaardigd belang (grondslag f) gebruikt door een overheidsorgaan",
	RuleRecordedLate:             "Te laat vastgelegd",
	RuleOccurredAfterRecording:   "Tijdstip van verstrekking ligt na de vastlegging",
	RuleCorrectionUnknown:        "Correctie verwijst naar een verstrekking die niet in het register staat",
	RuleCorrectionOtherDiscloser: "Correctie van een verstrekking van een andere organisatie",
	RulePossibleBSN:              "Mogelijk een BSN in de vrije tekst (het nummer wordt niet getoond)",
	RuleVRFOutputMismatch:        "Controlewaarde voor ouders past niet bij de sleutel van het convenant",
}

// FindingRules lists every rule id, in a fixed order, for reports.
func FindingRules() []string {
	return []string{RulePurposeUnknown, RuleCategoryUnknown, RuleCategoryNotNeeded, RuleSpecialWithoutException,
		RuleConsentMissing, RuleConsentWrongGiver, RuleRecipientOutsideCovenant, RuleGroundUnknown,
		RuleExceptionUnknown, RuleStatuteUnknown, RuleRoleUnknown, RulePublicBodyGroundF, RuleRecordedLate,
		RuleOccurredAfterRecording, RuleCorrectionUnknown, RuleCorrectionOtherDiscloser, RulePossibleBSN, RuleVRFOutputMismatch}
}

// FindingLabelNL returns the Dutch name of a rule for reports, or the rule
// id itself if it is not known.
func FindingLabelNL(rule string) string {
	if l, ok := findingLabelsNL[rule]; ok {
		return l
	}
	return rule
}

// Check lists the covenant rules that d breaks, in the order of the
// disclosure's fields. It never rejects and never fails: a disclosure that
// happened is recorded, and hiding it would defeat the ledger. d should have
// passed Validate (Open does that); Check does not rely on it.
func (c *Covenant) Check(d *Disclosure) []Finding {
	if d == nil {
		return nil
	}
	var fs []Finding
	add := func(rule, field, format string, args ...any) {
		fs = append(fs, Finding{Rule: rule, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	discloser, discloserKnown := c.Party(d.Discloser)

	for i, r := range d.Recipients {
		if _, ok := c.Party(r); !ok {
			add(RuleRecipientOutsideCovenant, fmt.Sprintf("recipients[%d]", i), "recipient %s is not a party of covenant version %d", quoteID(r), c.Version)
		}
	}

	purposeKnown := hasTerm(c.Vocabulary.Purposes, d.Purpose)
	needed := c.Rules.Purposes[d.Purpose]
	exception := d.LegalBasis.Exception
	for i, id := range d.Categories {
		field := fmt.Sprintf("categories[%d]", i)
		cat, ok := c.Category(id)
		if !ok {
			add(RuleCategoryUnknown, field, "category %s is not in the covenant's vocabulary", quoteID(id))
			continue
		}
		if purposeKnown && !slices.Contains(needed, id) {
			add(RuleCategoryNotNeeded, field, "category %s is not needed for purpose %s", id, d.Purpose)
		}
		if cat.Special != SpecialNone {
			allowed := c.Rules.SpecialCategoryExceptions[cat.Special]
			switch {
			case exception == "":
				add(RuleSpecialWithoutException, "legal_basis.exception", "category %s is special (%s) and needs an exception (one of %s), but none is given",
					id, cat.Special, strings.Join(allowed, ", "))
			case !slices.Contains(allowed, exception):
				add(RuleSpecialWithoutException, "legal_basis.exception", "category %s is special (%s); exception %s is not one that allows it (one of %s)",
					id, cat.Special, quoteID(exception), strings.Join(allowed, ", "))
			}
		}
	}
	if !purposeKnown {
		add(RulePurposeUnknown, "purpose", "purpose %s is not in the covenant's vocabulary", quoteID(d.Purpose))
	}

	lb := d.LegalBasis
	if !hasTerm(c.Vocabulary.Grounds, lb.Ground) {
		add(RuleGroundUnknown, "legal_basis.ground", "ground %s is not in the covenant's vocabulary", quoteID(lb.Ground))
	}
	if lb.Ground == "f" && discloserKnown && discloser.Kind.PublicBody() {
		add(RulePublicBodyGroundF, "legal_basis.ground", "ground f (legitimate interest) is not available to a %s acting in its public task", discloser.Kind)
	}
	if exception != "" && !hasTerm(c.Vocabulary.Exceptions, exception) {
		add(RuleExceptionUnknown, "legal_basis.exception", "exception %s is not in the covenant's vocabulary", quoteID(exception))
	}
	if lb.Statute != "" && !hasTerm(c.Vocabulary.Statutes, lb.Statute) {
		add(RuleStatuteUnknown, "legal_basis.statute", "statute %s is not in the covenant's vocabulary", quoteID(lb.Statute))
	}

	if why := c.consentNeeded(d, discloser, discloserKnown); why != "" && d.Consent == nil {
		add(RuleConsentMissing, "consent", "consent is required (%s) but the disclosure records none", why)
	}
	if d.Consent != nil {
		if want, ok := c.Rules.Consent.ByAgeBand[d.SubjectAgeBand]; ok && d.Consent.GivenBy != want {
			add(RuleConsentWrongGiver, "consent.given_by", "for age band %s consent is given by %s, not by %s",
				d.SubjectAgeBand, want, quoteID(string(d.Consent.GivenBy)))
		}
	}

	_, hasVRF := c.VRFKey(d.Subject.KeyID)
	switch {
	case hasVRF && d.Subject.VRFOutput == "":
		add(RuleVRFOutputMismatch, "subject.vrf_output", "covenant version %d pairs pseudonym key %s with a VRF key, but the event carries no VRF output", c.Version, quoteKeyID(d.Subject.KeyID))
	case !hasVRF && d.Subject.VRFOutput != "":
		add(RuleVRFOutputMismatch, "subject.vrf_output", "the event carries a VRF output, but covenant version %d has no VRF key for pseudonym key %s", c.Version, quoteKeyID(d.Subject.KeyID))
	}

	if !hasTerm(c.Vocabulary.Roles, d.Actor.Role) {
		// The role is free text in the event: it is not repeated here.
		add(RuleRoleUnknown, "actor.role", "the actor's role is not in the covenant's vocabulary of roles")
	}
	checkPossibleBSN(d, add)
	return fs
}

// consentNeeded says why d needs consent, or "" if it does not.
func (c *Covenant) consentNeeded(d *Disclosure, discloser Party, discloserKnown bool) string {
	cr := &c.Rules.Consent
	switch {
	case slices.Contains(cr.RequiredForGrounds, d.LegalBasis.Ground):
		return "ground " + d.LegalBasis.Ground
	case d.LegalBasis.Exception != "" && slices.Contains(cr.RequiredForExceptions, d.LegalBasis.Exception):
		return "exception " + d.LegalBasis.Exception
	case discloserKnown && slices.Contains(cr.RequiredForDiscloserKinds, discloser.Kind) &&
		!(d.LegalBasis.Statute != "" && slices.Contains(cr.ExemptStatutes, d.LegalBasis.Statute)):
		return fmt.Sprintf("the discloser is a %s and no exempting statute is cited", discloser.Kind)
	}
	return ""
}

// recordingSkew is how far a discloser's clock may run ahead of the
// ledger's before an occurred_at in the future is an anomaly. Since the
// ledger refuses such events (CheckOccurredInFuture, with the same
// default), the finding marks only events logged before that rule, or
// under a wider FutureSkew.
const recordingSkew = 5 * time.Minute

// CheckRecording lists the timing anomalies of a disclosure the ledger
// recorded at integratedAt: recorded later than rules.late_recording_hours
// after it occurred, or said to have occurred after it was recorded (beyond
// a few minutes of clock skew).
//
// The audit recomputes these findings and compares them, messages
// included, with the stored ones: a message may change only where it was
// wrong (aheadText).
func (c *Covenant) CheckRecording(d *Disclosure, integratedAt time.Time) []Finding {
	if d == nil {
		return nil
	}
	var fs []Finding
	late := time.Duration(c.Rules.LateRecordingHours) * time.Hour
	switch lag := integratedAt.Sub(d.OccurredAt); {
	case late > 0 && lag > late:
		fs = append(fs, Finding{Rule: RuleRecordedLate, Field: "occurred_at",
			Message: fmt.Sprintf("recorded %d hours after it occurred; the covenant allows %d", int64(lag/time.Hour), c.Rules.LateRecordingHours)})
	case lag < -recordingSkew:
		fs = append(fs, Finding{Rule: RuleOccurredAfterRecording, Field: "occurred_at",
			Message: fmt.Sprintf("occurred_at is %s after the ledger recorded the event", aheadText(integratedAt, d.OccurredAt))})
	}
	return fs
}

// DefaultFutureSkew is how far occurred_at may lie after the ledger's time
// of recording (a discloser's clock running ahead) before the event is
// refused as ReasonOccurredInFuture.
const DefaultFutureSkew = 5 * time.Minute

// CheckOccurredInFuture refuses (a *RejectError, ReasonOccurredInFuture) a
// disclosure whose occurred_at lies more than skew after integratedAt, the
// time the ledger records it; skew <= 0 means DefaultFutureSkew. A signer
// chooses occurred_at: one dated ahead would pick the key in force at that
// date, could never be late, and would sort after every real event.
//
// Only the sequencer applies it, at the time of recording. It is not a
// rule of the event itself (Validate, Open) nor a finding, so the audit,
// which opens and checks stored events again, does not apply it to events
// logged before it existed: those keep their RuleOccurredAfterRecording
// finding.
func CheckOccurredInFuture(d *Disclosure, integratedAt time.Time, skew time.Duration) error {
	if skew <= 0 {
		skew = DefaultFutureSkew
	}
	if !d.OccurredAt.After(integratedAt.Add(skew)) {
		return nil
	}
	return reject(ReasonOccurredInFuture, "occurred_at lies %s after the ledger's time of recording; at most %s is allowed",
		aheadText(integratedAt, d.OccurredAt), skew)
}

// aheadText says how long after from to lies. A time.Duration spans only
// 292 years, and occurred_at may be any time up to the year 9999: beyond
// that span to.Sub(from) is clamped, and negating a clamped difference
// overflowed into a negative duration ("-2562047h47m16.854775808s").
// Within the span the text is the rounded duration, as it always was
// (stored findings carry it); beyond, whole days from the seconds since
// 1970, which cannot overflow.
func aheadText(from, to time.Time) string {
	if ahead := to.Sub(from); ahead < math.MaxInt64 {
		return ahead.Round(time.Second).String()
	}
	return fmt.Sprintf("%d days", (to.Unix()-from.Unix())/(24*3600))
}

// GenerateAdminKey makes a new administrator key pair in signed-note form:
// skey ("PRIVATE+KEY+name+hash+base64", keep it secret) and vkey (for the
// covenant file and for verifiers to pin).
func GenerateAdminKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate administrator key: %w", err)
	}
	return skey, vkey, nil
}

// AdminPrivateKey decodes an administrator signing key in signed-note form
// (PRIVATE+KEY+name+hash+base64 of 0x01 and the 32-byte seed). Errors never
// repeat the key.
func AdminPrivateKey(skey string) (ed25519.PrivateKey, error) {
	skey = strings.TrimSpace(skey)
	if _, err := note.NewSigner(skey); err != nil {
		return nil, errors.New("administrator signing key is not a signed-note Ed25519 key (PRIVATE+KEY+name+hash+key)")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(noteKeyBase64(skey, 4))
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 0x01 {
		return nil, errors.New("administrator signing key is not an Ed25519 key in strict base64")
	}
	return ed25519.NewKeyFromSeed(raw[1:]), nil
}

// AdminPublicKey decodes an administrator verifier key in signed-note form
// (name+hash+base64 of 0x01 and the 32-byte public key), checking its hash.
func AdminPublicKey(vkey string) (ed25519.PublicKey, error) {
	vkey = strings.TrimSpace(vkey)
	if _, err := note.NewVerifier(vkey); err != nil {
		return nil, errors.New("is not a signed-note Ed25519 verifier key (name+hash+key): " + err.Error())
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(noteKeyBase64(vkey, 2))
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x01 {
		return nil, errors.New("is not an Ed25519 verifier key in strict base64")
	}
	return ed25519.PublicKey(raw[1:]), nil
}

// noteKeyBase64 returns the key part of a signed-note key string: what
// follows its first n '+' separators (base64 itself may contain '+').
func noteKeyBase64(key string, n int) string {
	for range n {
		_, key, _ = strings.Cut(key, "+")
	}
	return key
}

// adminKeyName returns the name part of a verifier key, for messages.
func adminKeyName(vkey string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(vkey), "+")
	return name
}

// SignCovenant validates a covenant file and signs its bytes, verbatim, with
// the administrator signing key, returning the envelope to log. Version 1
// must be signed by the administrator key it names itself; a later version
// by the key named in the version before it, which only a Chain can check.
func SignCovenant(yamlBytes []byte, adminSkey string) ([]byte, error) {
	c, err := ParseCovenantYAML(yamlBytes)
	if err != nil {
		return nil, err
	}
	priv, err := AdminPrivateKey(adminSkey)
	if err != nil {
		return nil, err
	}
	if c.Version == 1 {
		// Validate has parsed the key already.
		own, err := AdminPublicKey(c.Administrator.Key)
		if err != nil {
			return nil, fmt.Errorf("administrator.key: %w", err)
		}
		if !own.Equal(priv.Public()) {
			return nil, fmt.Errorf("version 1 must be signed by the administrator key it names (%s), not by this key: %w",
				adminKeyName(c.Administrator.Key), ErrCovenantSignature)
		}
	}
	env := SignEnvelope(CovenantPayloadType, yamlBytes, priv)
	if len(env) > MaxEnvelopeSize {
		return nil, fmt.Errorf("the signed covenant is %d bytes, the limit is %d", len(env), MaxEnvelopeSize)
	}
	return env, nil
}

// SignedCovenant is one covenant version as logged: the envelope (Raw is
// the bytes as logged, Payload the covenant file verbatim) and its decoded
// content.
type SignedCovenant struct {
	Covenant *Covenant
	Envelope *Envelope
}

// Hash returns the lower-case hex SHA-256 of the signed bytes, which the
// next version names as its "previous".
func (sc *SignedCovenant) Hash() string {
	sum := sha256.Sum256(sc.Envelope.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseSignedCovenant parses a signed covenant: the strict envelope, its
// payload type and the covenant file in it. Who must have signed a later
// version depends on the version before it, which is for a Chain to check;
// version 1 must be signed by the administrator key it names, and that is
// checked here (ErrCovenantSignature).
func ParseSignedCovenant(b []byte) (*SignedCovenant, error) {
	env, err := ParseEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("signed covenant: %w", err)
	}
	if env.PayloadType != CovenantPayloadType {
		return nil, fmt.Errorf("signed covenant: payloadType is %q, want %q", env.PayloadType, CovenantPayloadType)
	}
	if !hex64RE.MatchString(env.KeyID) {
		return nil, errors.New("signed covenant: keyid is not a key fingerprint (64 lower-case hex)")
	}
	c, err := ParseCovenantYAML(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("signed covenant: %w", err)
	}
	sc := &SignedCovenant{Covenant: c, Envelope: env}
	if c.Version == 1 {
		if err := sc.verifyBy(c.Administrator.Key); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// verifyBy checks that the version is signed by the administrator vkey.
func (sc *SignedCovenant) verifyBy(vkey string) error {
	pub, err := AdminPublicKey(vkey)
	if err != nil {
		return fmt.Errorf("administrator key: %w", err)
	}
	if err := sc.Envelope.Verify(pub); err != nil {
		return fmt.Errorf("covenant version %d is not signed by administrator key %s: %w",
			sc.Covenant.Version, adminKeyName(vkey), ErrCovenantSignature)
	}
	return nil
}

// Chain is the covenant versions of one log, in order, each checked against
// the one before it. It re-parses every version from its signed bytes, so
// what it holds is what was signed. A Chain is not safe for concurrent use
// while Append runs.
type Chain struct {
	versions []*SignedCovenant
}

// reparse parses sc again from its signed bytes, so that a hand-built
// SignedCovenant whose Covenant differs from its payload cannot slip in.
func reparse(sc *SignedCovenant) (*SignedCovenant, error) {
	if sc == nil || sc.Envelope == nil {
		return nil, errors.New("no signed covenant given")
	}
	return ParseSignedCovenant(sc.Envelope.Raw)
}

// NewChain starts a chain with version 1. If pinnedAdmin (a verifier key)
// is not empty, version 1 must name and be signed by that key; otherwise
// the file's own administrator key is trusted for version 1, as the first
// entry of the log.
func NewChain(first *SignedCovenant, pinnedAdmin string) (*Chain, error) {
	sc, err := reparse(first)
	if err != nil {
		return nil, err
	}
	if sc.Covenant.Version != 1 {
		return nil, fmt.Errorf("the first covenant version of a log must be 1, not %d: %w", sc.Covenant.Version, ErrCovenantChain)
	}
	if pinnedAdmin != "" {
		pinned, err := AdminPublicKey(pinnedAdmin)
		if err != nil {
			return nil, fmt.Errorf("pinned administrator key %w", err)
		}
		own, err := AdminPublicKey(sc.Covenant.Administrator.Key)
		if err != nil || !own.Equal(pinned) {
			return nil, fmt.Errorf("covenant version 1 names administrator key %s, not the pinned key %s: %w",
				adminKeyName(sc.Covenant.Administrator.Key), adminKeyName(pinnedAdmin), ErrCovenantSignature)
		}
		if err := sc.verifyBy(pinnedAdmin); err != nil {
			return nil, err
		}
	}
	return &Chain{versions: []*SignedCovenant{sc}}, nil
}

// Append adds the next version after checking that it is signed by the
// administrator key of the latest version (ErrCovenantSignature), and that
// it follows it (ErrCovenantChain): version one higher, previous = the
// latest's Hash, the same origin, effective_from not earlier, no revoked key
// reinstated and no key moved to another party.
func (ch *Chain) Append(next *SignedCovenant) error {
	sc, err := reparse(next)
	if err != nil {
		return err
	}
	prev := ch.Latest()
	p, n := prev.Covenant, sc.Covenant
	if err := sc.verifyBy(p.Administrator.Key); err != nil {
		return err
	}
	switch {
	case n.Version != p.Version+1:
		return fmt.Errorf("version %d cannot follow version %d (each version is the previous one plus 1): %w", n.Version, p.Version, ErrCovenantChain)
	case n.Previous != prev.Hash():
		return fmt.Errorf("version %d's previous is not the hash of version %d's signed file (%s): %w", n.Version, p.Version, prev.Hash(), ErrCovenantChain)
	case n.Origin != p.Origin:
		return fmt.Errorf("version %d changes the origin from %q to %q; the origin never changes: %w", n.Version, p.Origin, n.Origin, ErrCovenantChain)
	case n.Schema != p.Schema:
		return fmt.Errorf("version %d changes the schema: %w", n.Version, ErrCovenantChain)
	case n.EffectiveFrom.Before(p.EffectiveFrom):
		return fmt.Errorf("version %d takes effect before version %d: %w", n.Version, p.Version, ErrCovenantChain)
	}
	for _, old := range p.VRFKeys {
		pk, ok := n.VRFKey(old.KeyID)
		if !ok || pk.String() != old.PublicKey {
			return fmt.Errorf("version %d drops or changes the VRF public key of pseudonym key %s (events under it carry its outputs; a new key needs a new key id): %w", n.Version, old.KeyID, ErrCovenantChain)
		}
	}
	type listing struct {
		party   string
		revoked bool
	}
	before := map[string]listing{}
	for _, party := range p.Parties {
		for _, k := range party.Keys {
			before[k.PublicKey] = listing{party.ID, k.Revoked}
		}
	}
	for _, party := range n.Parties {
		for _, k := range party.Keys {
			old, ok := before[k.PublicKey]
			switch {
			case !ok:
			case old.party != party.ID:
				return fmt.Errorf("version %d lists a key of party %s under party %s: %w", n.Version, old.party, party.ID, ErrCovenantChain)
			case old.revoked && !k.Revoked:
				return fmt.Errorf("version %d reinstates a key of party %s that version %d revoked (add a new key instead): %w", n.Version, party.ID, p.Version, ErrCovenantChain)
			}
		}
	}
	ch.versions = append(ch.versions, sc)
	return nil
}

// Latest returns the newest version.
func (ch *Chain) Latest() *SignedCovenant { return ch.versions[len(ch.versions)-1] }

// Version returns version n, or nil if the chain does not hold it.
func (ch *Chain) Version(n int) *SignedCovenant {
	if n < 1 || n > len(ch.versions) {
		return nil
	}
	return ch.versions[n-1]
}

// Len returns the number of versions.
func (ch *Chain) Len() int { return len(ch.versions) }
