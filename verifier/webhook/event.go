package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// The CloudEvent types Spoor sends (NL GOV profile: reverse domain name
// notation, one version suffix "v1"; no organisation's name in the type).
const (
	// TypeRejected: some of a party's disclosures were refused; data is a
	// RejectedData. Sent to the party's webhook.
	TypeRejected = "nl.spoor.disclosures.rejected.v1"
	// TypeFindings: some of a party's logged disclosures break covenant
	// rules; data is a FindingsData. Sent to the party's webhook.
	TypeFindings = "nl.spoor.disclosures.findings.v1"
	// TypeAlarm: the ledger raised an alarm the FG must act on; data is an
	// AlarmData. Sent to the FG's webhook.
	TypeAlarm = "nl.spoor.ledger.alarm.v1"
)

// DataSchema is the dataschema of every event: the section of Spoor's
// wire format that defines the data bodies and says that the id is a
// random UUIDv7 with no meaning beyond naming the notification (the NL GOV
// profile asks that a random id's limits be described there).
const DataSchema = "https://github.com/spoor-ledger/spoor/blob/main/docs/wire-format.md#notifications"

// ContentType is the media type of a request body: the structured JSON
// mode of CloudEvents.
const ContentType = "application/cloudevents+json"

// The alarm kinds of AlarmData.Kind.
const (
	AlarmFork             = "fork"              // a witness holds another tree at a size this log has
	AlarmRollback         = "rollback"          // a witness holds a larger tree than this log
	AlarmIndexMismatch    = "index_mismatch"    // the subject index disagrees with the log
	AlarmRetentionOverdue = "retention_overdue" // disclosures past their retention are still stored
)

// MaxListed bounds the per-event lists of a body; the counts always cover
// everything, Truncated says the list does not.
const MaxListed = 1000

// RejectedData is the data of a TypeRejected event: which of the party's
// events were refused and why, by reason code. Never an envelope, a
// pseudonym or a message text.
type RejectedData struct {
	Party string `json:"party"`
	// Counts is the number of refused events by reason code.
	Counts map[string]int `json:"counts"`
	// Events lists up to MaxListed refusals.
	Events    []RejectedEvent `json:"events"`
	Truncated bool            `json:"truncated,omitempty"`
}

// RejectedEvent is one refusal: the event id (empty when the envelope
// named none that could be read), the reason code, and where the message
// was on the bus.
type RejectedEvent struct {
	EventID   string `json:"event_id,omitempty"`
	Reason    string `json:"reason"`
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	Line      int    `json:"line,omitempty"`
}

// FindingsData is the data of a TypeFindings event: the party's logged
// events that break covenant rules, by rule id.
type FindingsData struct {
	Party string `json:"party"`
	// Counts is the number of findings by rule id.
	Counts    map[string]int `json:"counts"`
	Events    []FindingEvent `json:"events"`
	Truncated bool           `json:"truncated,omitempty"`
}

// FindingEvent is one logged event with findings: its id, its leaf and the
// rule ids (and fields) it breaks.
type FindingEvent struct {
	EventID   string    `json:"event_id"`
	LeafIndex uint64    `json:"leaf_index"`
	Rules     []RuleHit `json:"rules"`
}

// RuleHit is one finding: a rule id and the field it is about.
type RuleHit struct {
	Rule  string `json:"rule"`
	Field string `json:"field,omitempty"`
}

// AlarmData is the data of a TypeAlarm event.
type AlarmData struct {
	Kind   string `json:"kind"`
	Origin string `json:"origin"`
	// TreeSize is the log's size when the alarm was raised.
	TreeSize uint64 `json:"tree_size"`
	// Witness names the witness of a fork or rollback alarm.
	Witness string `json:"witness,omitempty"`
	// WitnessSize is the size the witness holds (rollback).
	WitnessSize uint64 `json:"witness_size,omitempty"`
	// Count is how many entries the alarm is about (retention overdue:
	// disclosures past their term), when known.
	Count int `json:"count,omitempty"`
	// Code is a stable, machine-readable cause, for example
	// "retention_run_failed".
	Code string `json:"code,omitempty"`
}

var (
	eventIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	codePattern    = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)
)

// NewEvent builds the structured-mode JSON of a CloudEvent (specversion
// 1.0) with the NL GOV profile's attributes: id (a UUIDv7 string, random),
// source (an urn:nld: URN naming the log), type (one of the Type
// constants), time (when the ledger recorded what the event reports),
// datacontenttype application/json and DataSchema. data must be the body
// type of typ; it is checked (CheckData) before anything is built.
func NewEvent(id, source, typ string, at time.Time, data any) ([]byte, error) {
	if err := CheckData(typ, data); err != nil {
		return nil, err
	}
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(at.UTC())
	e.SetDataSchema(DataSchema)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("webhook: couldn't encode the event data: %w", err)
	}
	if err := checkAttributes(&e); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("webhook: couldn't encode the event: %w", err)
	}
	return b, nil
}

// Event is a parsed notification: the CloudEvent and its decoded data (a
// *RejectedData, *FindingsData or *AlarmData by type).
type Event struct {
	CloudEvent event.Event
	Data       any
}

// ParseEvent decodes a structured-mode CloudEvent as Spoor sends it and
// its data by type; an unknown type, a missing attribute or data that
// fails CheckData is an error.
func ParseEvent(b []byte) (*Event, error) {
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("webhook: not a CloudEvent: %w", err)
	}
	if err := checkAttributes(&e); err != nil {
		return nil, err
	}
	var data any
	switch e.Type() {
	case TypeRejected:
		data = &RejectedData{}
	case TypeFindings:
		data = &FindingsData{}
	case TypeAlarm:
		data = &AlarmData{}
	}
	if err := json.Unmarshal(e.Data(), data); err != nil {
		return nil, fmt.Errorf("webhook: %s data: %w", e.Type(), err)
	}
	if err := CheckData(e.Type(), data); err != nil {
		return nil, err
	}
	return &Event{CloudEvent: e, Data: data}, nil
}

func checkAttributes(e *event.Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	if e.SpecVersion() != event.CloudEventsVersionV1 {
		return fmt.Errorf("webhook: specversion %q, want 1.0", e.SpecVersion())
	}
	if !eventIDPattern.MatchString(e.ID()) {
		return errors.New("webhook: id is not a lower-case UUIDv7")
	}
	if !strings.HasPrefix(e.Source(), "urn:nld:") {
		return errors.New("webhook: source is not an urn:nld: URN (NL GOV profile)")
	}
	if e.Time().IsZero() {
		return errors.New("webhook: time is missing")
	}
	if e.DataContentType() != event.ApplicationJSON {
		return errors.New("webhook: datacontenttype must be application/json")
	}
	if e.DataSchema() != DataSchema {
		return errors.New("webhook: unexpected dataschema")
	}
	for name := range e.Extensions() {
		return fmt.Errorf("webhook: unexpected extension attribute %q", name)
	}
	switch e.Type() {
	case TypeRejected, TypeFindings, TypeAlarm:
	default:
		return fmt.Errorf("webhook: unknown type %q", e.Type())
	}
	return nil
}

// ErrBadData is wrapped by CheckData's errors: a body that is not what its
// type allows (a sender must not send it; a receiver must not trust it).
var ErrBadData = errors.New("webhook: bad event data")

// CheckData checks that data is the body of typ and holds only ids, codes
// and counts: party ids and reason, rule and alarm codes match the code
// pattern, event ids are UUIDv7s, lists stay within MaxListed and agree
// with the counts. What passes cannot carry a pseudonym (64 hex digits), a
// BSN (digits only in an id field fail the patterns) or free text.
func CheckData(typ string, data any) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s data: %s", ErrBadData, typ, fmt.Sprintf(format, args...))
	}
	code := func(s string) bool { return codePattern.MatchString(s) && !allDigits(s) }
	switch d := data.(type) {
	case *RejectedData:
		if typ != TypeRejected {
			return bad("RejectedData for another type")
		}
		if !code(d.Party) {
			return bad("party %q is not an id", d.Party)
		}
		if len(d.Events) > MaxListed {
			return bad("more than %d events listed", MaxListed)
		}
		total := 0
		for reason, n := range d.Counts {
			if !code(reason) || n <= 0 {
				return bad("bad count %q: %d", reason, n)
			}
			total += n
		}
		if len(d.Events) > total || (!d.Truncated && len(d.Events) != total) {
			return bad("%d events listed for a count of %d", len(d.Events), total)
		}
		for _, e := range d.Events {
			if (e.EventID != "" && !eventIDPattern.MatchString(e.EventID)) || !code(e.Reason) {
				return bad("event %q reason %q", e.EventID, e.Reason)
			}
		}
	case *FindingsData:
		if typ != TypeFindings {
			return bad("FindingsData for another type")
		}
		if !code(d.Party) {
			return bad("party %q is not an id", d.Party)
		}
		if len(d.Events) > MaxListed {
			return bad("more than %d events listed", MaxListed)
		}
		for rule, n := range d.Counts {
			if !code(rule) || n <= 0 {
				return bad("bad count %q: %d", rule, n)
			}
		}
		for _, e := range d.Events {
			if !eventIDPattern.MatchString(e.EventID) || len(e.Rules) == 0 {
				return bad("event %q", e.EventID)
			}
			for _, h := range e.Rules {
				if !code(h.Rule) || !fieldPattern.MatchString(h.Field) {
					return bad("rule %q field %q", h.Rule, h.Field)
				}
			}
		}
	case *AlarmData:
		if typ != TypeAlarm {
			return bad("AlarmData for another type")
		}
		switch d.Kind {
		case AlarmFork, AlarmRollback, AlarmIndexMismatch, AlarmRetentionOverdue:
		default:
			return bad("unknown alarm kind %q", d.Kind)
		}
		if d.Origin == "" || strings.ContainsAny(d.Origin, " \n") {
			return bad("origin")
		}
		if (d.Witness != "" && !code(d.Witness)) || (d.Code != "" && !code(d.Code)) {
			return bad("witness %q code %q", d.Witness, d.Code)
		}
	default:
		return bad("unknown body %T", data)
	}
	return nil
}

// fieldPattern is a disclosure field path as findings name it, for
// example "categories[1]" or "legal_basis.exception".
var fieldPattern = regexp.MustCompile(`^[a-z_.\[\]0-9]{0,64}$`)

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
