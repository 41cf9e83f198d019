// Package natsbus is the NATS JetStream side of Spoor: the names of its
// streams, subjects and consumers, the messages that travel on them, and the
// Publisher that an organisation's system embeds to record disclosures.
//
// # Data flow
//
// An organisation's system builds an events.Disclosure and hands it to
// Publisher.Publish (or PublishAsync). The Publisher seals and signs it into
// the one canonical DSSE envelope and publishes the envelope on
// spoor.disclosures.<party>, which the stream SPOOR (work-queue retention,
// file storage) holds until the ledger has taken it. The ledger reads SPOOR
// through its own durable pull consumer "ledger", opens and validates each
// envelope, commits the accepted ones to its Merkle log and only then acks
// them. An envelope it rejects is never stored; instead the ledger publishes a
// Rejection (event id and reason code, never payload contents) on
// spoor.rejected.<party> in the stream SPOOR_REJECTED, which the party reads
// through its own durable consumer rejected-<party> (see Rejections). A party
// asks for a Receipt (leaf index, inclusion proof, checkpoint) with a NATS
// request on spoor.receipts.<party> (see Publisher.WaitReceipt).
//
// A system that records many disclosures at once sends them as one batch
// message (PublishBatch, BatchMessage): JSON Lines of envelopes with the
// header BatchHeader. The ledger judges each envelope on its own and acks
// the message when all of them are logged or reported (see batch.go).
//
// Only the ledger creates the streams and consumers (EnsureStreams). The
// Publisher never does: before the ledger has run once, publishing fails
// with ErrNoStream.
//
// # What an acknowledgement means
//
// A JetStream publish ack means the bus holds the envelope: it survives a
// process crash (JetStream writes its file store to disk on an interval, so
// not necessarily a power loss). A Receipt with status "committed" means the
// ledger has committed the event with fsync. Only the receipt is proof.
//
// # De-duplication
//
// Each message carries a Nats-Msg-Id of the event id plus the first 16 hex
// characters of the SHA-256 of the envelope (MsgID). JetStream's duplicate
// window therefore swallows only a byte-identical re-publish, which the
// PublishResult reports as Duplicate. The same event id with other bytes
// reaches the ledger, which rejects it as id_conflict: the first one stands.
//
// # NATS permissions of a party
//
// A party's NATS user needs exactly the subjects PartyPermissions returns,
// and its client must connect with nats.CustomInboxPrefix(InboxPrefix(party))
// so that replies come on inboxes only that party may read. For the party
// "gemeente-amersfoort", in nats-server configuration syntax:
//
//	authorization {
//	  users = [{
//	    user: "gemeente-amersfoort"
//	    password: "..."
//	    permissions: {
//	      publish: {
//	        allow: [
//	          "spoor.disclosures.gemeente-amersfoort",
//	          "spoor.receipts.gemeente-amersfoort",
//	          "$JS.API.CONSUMER.INFO.SPOOR_REJECTED.rejected-gemeente-amersfoort",
//	          "$JS.API.CONSUMER.MSG.NEXT.SPOOR_REJECTED.rejected-gemeente-amersfoort",
//	          "$JS.ACK.SPOOR_REJECTED.rejected-gemeente-amersfoort.>"
//	        ]
//	      }
//	      subscribe: { allow: ["_INBOX.gemeente-amersfoort.>"] }
//	    }
//	  }]
//	}
//
// Publishing on its own subject lets the party record disclosures (the
// JetStream ack comes back on its inbox); the receipts subject lets it ask
// the ledger for receipts; CONSUMER.INFO and CONSUMER.MSG.NEXT on its own
// rejections consumer let it bind to and pull from that consumer, and the
// $JS.ACK subject lets it acknowledge what it has read. Nothing else: the
// party cannot create or delete streams or consumers, cannot read SPOOR or
// another party's rejections, and cannot subscribe to anyone's disclosures.
// A server that enables the version 2 ack subject format (feature flag
// js_ack_fc_v2) sends acks as $JS.ACK.<domain>.<account hash>.SPOOR_REJECTED...,
// so there allow "$JS.ACK.*.*.SPOOR_REJECTED.rejected-<party>.>" instead.
// Granting "_INBOX.>" instead of the party's own inbox prefix would work, but
// would let every party read the replies meant for the others.
package natsbus

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// Names of the streams, consumers and subject spaces. They are part of the
// contract between the ledger, the parties and the operator's NATS
// permissions: do not change them.
const (
	// Stream holds disclosure envelopes until the ledger has committed them.
	Stream = "SPOOR"
	// DisclosureSubjects is the subject filter of Stream.
	DisclosureSubjects = "spoor.disclosures.>"
	// LedgerConsumer is the ledger's durable pull consumer on Stream.
	LedgerConsumer = "ledger"

	// RejectedStream holds the ledger's rejections, per party.
	RejectedStream = "SPOOR_REJECTED"
	// RejectedSubjects is the subject filter of RejectedStream.
	RejectedSubjects = "spoor.rejected.>"

	// ReceiptSubjects matches every party's receipt subject; the ledger
	// answers requests on it.
	ReceiptSubjects = "spoor.receipts.*"
)

const (
	disclosurePrefix       = "spoor.disclosures."
	rejectedPrefix         = "spoor.rejected."
	receiptPrefix          = "spoor.receipts."
	rejectedConsumerPrefix = "rejected-"
	inboxPrefix            = "_INBOX."
)

// Sentinel errors that callers branch on. They are wrapped with context.
var (
	// ErrNoStream means a stream does not exist yet: the ledger has not run
	// EnsureStreams (it is not running, or never has).
	ErrNoStream = errors.New("natsbus: stream does not exist (is the ledger running?)")
	// ErrNoConsumer means the stream exists but the party's rejections
	// consumer does not: the party is not in the covenant the ledger runs.
	ErrNoConsumer = errors.New("natsbus: consumer does not exist")
	// ErrAckTimeout means an asynchronous publish got no JetStream ack in
	// time; the envelope may or may not be on the bus, so publish it again.
	ErrAckTimeout = errors.New("natsbus: no publish ack in time")
	// ErrInvalidParty means a party id is not of the form events.ValidPartyID
	// accepts, so it cannot be a subject token.
	ErrInvalidParty = errors.New("natsbus: invalid party id")
)

// DisclosureSubject is the subject a party publishes its envelopes on. party
// must satisfy events.ValidPartyID.
func DisclosureSubject(party string) string { return disclosurePrefix + party }

// PartyOfSubject returns the party a disclosure subject belongs to. The
// ledger uses it to check that the discloser is the party that published.
func PartyOfSubject(subject string) (string, error) {
	party, ok := strings.CutPrefix(subject, disclosurePrefix)
	if !ok || !events.ValidPartyID(party) {
		return "", fmt.Errorf("subject %q is not %s<party>: %w", subject, disclosurePrefix, ErrInvalidParty)
	}
	return party, nil
}

// RejectedSubject is the subject of a party's rejections.
func RejectedSubject(party string) string { return rejectedPrefix + party }

// RejectedConsumer is the name of a party's durable consumer on
// RejectedStream.
func RejectedConsumer(party string) string { return rejectedConsumerPrefix + party }

// ReceiptSubject is the subject on which a party requests receipts.
func ReceiptSubject(party string) string { return receiptPrefix + party }

// InboxPrefix is the inbox prefix a party's client connects with
// (nats.CustomInboxPrefix), so that its replies arrive on subjects only its
// own NATS user may subscribe to.
func InboxPrefix(party string) string { return inboxPrefix + party }

// Permissions lists the subjects a NATS user may publish and subscribe to,
// in the shape of nats-server's permission configuration (allow lists; the
// rest is denied). It is a plain struct so that this client package does not
// import nats-server.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// PartyPermissions returns the minimal permissions of a party's NATS user;
// see the package documentation for why each subject is needed.
func PartyPermissions(party string) Permissions {
	consumer := RejectedStream + "." + RejectedConsumer(party)
	return Permissions{
		Publish: []string{
			DisclosureSubject(party),
			ReceiptSubject(party),
			"$JS.API.CONSUMER.INFO." + consumer,
			"$JS.API.CONSUMER.MSG.NEXT." + consumer,
			"$JS.ACK." + consumer + ".>",
		},
		Subscribe: []string{InboxPrefix(party) + ".>"},
	}
}

// maxRejectionMessage bounds a rejection's message; the reason code is what
// programs branch on, the message is for the person reading it.
const maxRejectionMessage = 1024

// Rejection is what the ledger publishes on RejectedSubject(party) when it
// refuses an envelope. It names the event and the reason, never payload
// contents or the pseudonym.
type Rejection struct {
	// EventID is the event's id, or empty when the envelope was too
	// malformed to read one.
	EventID string `json:"event_id"`
	// MsgID is the Nats-Msg-Id the envelope was published with, when it had
	// one; it tells the party which bytes were refused (see MsgID). For an
	// envelope of a batch message it is the batch's (see BatchMsgID).
	MsgID string `json:"msg_id,omitempty"`
	// Line is the envelope's line (from 1) in its batch message, or 0 for
	// a message of one envelope (and for a batch refused whole).
	Line int `json:"line,omitempty"`
	// Party is the party that published the envelope (from its subject).
	Party string `json:"party"`
	// Reason is the stable reason code.
	Reason events.Reason `json:"reason"`
	// Message explains the reason in words, without payload contents.
	Message string `json:"message,omitempty"`
	// At is when the ledger rejected the envelope, in UTC.
	At time.Time `json:"at"`
	// Seq is the refused message's sequence number in Stream, when known.
	// It is not published: it goes into the rejection's Nats-Msg-Id so
	// that two distinct messages are never de-duplicated into one report
	// (two bad messages without an event id or a msg id, refused for the
	// same reason, look alike otherwise), while the same message
	// redelivered after a crash still is.
	Seq uint64 `json:"-"`
}

// Validate checks that r names a party, a reason and (if any) a valid event
// id, and that its message is not too long.
func (r *Rejection) Validate() error {
	switch {
	case !events.ValidPartyID(r.Party):
		return fmt.Errorf("rejection: party %q: %w", r.Party, ErrInvalidParty)
	case r.Reason == "":
		return errors.New("rejection: reason is required")
	case r.EventID != "" && !events.ValidEventID(r.EventID):
		return errors.New("rejection: event_id is not a UUIDv7")
	case r.MsgID != "" && !msgIDRE.MatchString(r.MsgID) && !batchMsgIDRE.MatchString(r.MsgID):
		return errors.New("rejection: msg_id is not of the form MsgID or BatchMsgID makes")
	case r.Line < 0 || r.Line > MaxBatchEvents:
		return fmt.Errorf("rejection: line %d is not 0 to %d", r.Line, MaxBatchEvents)
	case len(r.Message) > maxRejectionMessage:
		return fmt.Errorf("rejection: message is longer than %d bytes", maxRejectionMessage)
	case r.At.IsZero():
		return errors.New("rejection: at is required")
	}
	return nil
}

// ParseRejection decodes and validates a rejection message. Unknown fields
// are ignored, so that a ledger may add fields without breaking the parties'
// older clients.
func ParseRejection(b []byte) (*Rejection, error) {
	var r Rejection
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("couldn't decode rejection: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// msgIDRE matches what MsgID makes: a lower-case UUID, a dot and 16 hex.
var msgIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-f]{16}$`)

// batchMsgIDRE matches what BatchMsgID makes.
var batchMsgIDRE = regexp.MustCompile(`^batch\.[0-9a-f]{32}$`)

// personalDataRE matches what could be a BSN or onderwijsnummer (nine or
// more digits in a row) or a pseudonym (32 or more hex characters in a row).
var personalDataRE = regexp.MustCompile(`[0-9]{9,}|[0-9a-fA-F]{32,}`)

// redact replaces anything in s that looks like a national number or a
// pseudonym. The ledger's messages are built from events.RejectError, which
// never includes them; this is a second line of defence, since a rejection
// is kept for weeks and read outside the ledger.
func redact(s string) string {
	return personalDataRE.ReplaceAllString(s, "[redacted]")
}

// ReceiptStatus is where an event stands in the ledger.
type ReceiptStatus string

// The statuses a receipt can have.
const (
	// ReceiptCommitted: the event is in the log; the receipt carries its
	// leaf index, an inclusion proof and the checkpoint it is proven against.
	ReceiptCommitted ReceiptStatus = "committed"
	// ReceiptRejected: the ledger refused the event; Reason says why.
	ReceiptRejected ReceiptStatus = "rejected"
	// ReceiptPending: the ledger has not (yet) seen these bytes under the
	// event id; ask again, and publish them again if it stays pending.
	ReceiptPending ReceiptStatus = "pending"
	// ReceiptIDConflict: the party's event id is logged with other bytes
	// (the first ones stand); LeafIndex names their leaf. These bytes
	// will never be logged under this id.
	ReceiptIDConflict ReceiptStatus = "id_conflict"
)

// ReceiptRequest is the body of a request on ReceiptSubject(party). A
// receipt is about bytes: the answer is committed only for the envelope
// whose hash is given.
type ReceiptRequest struct {
	EventID string `json:"event_id"`
	// SHA256 is the lower-case hex SHA-256 of the envelope.
	SHA256 string `json:"sha256"`
}

// Hash returns the request's envelope hash.
func (r *ReceiptRequest) Hash() ([32]byte, error) {
	return ParseSHA256(r.SHA256)
}

// ErrBadHash means a hash is not 64 lower-case hex characters.
var ErrBadHash = errors.New("natsbus: not a SHA-256 in lower-case hex")

// ParseSHA256 decodes a SHA-256 in lower-case hex (as receipt and status
// requests carry it).
func ParseSHA256(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 || strings.ToLower(s) != s {
		return h, ErrBadHash
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, ErrBadHash
	}
	return h, nil
}

// ParseReceiptRequest decodes a receipt request and checks its event id and
// hash; the ledger calls it on each request.
func ParseReceiptRequest(b []byte) (*ReceiptRequest, error) {
	var r ReceiptRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("couldn't decode receipt request: %w", err)
	}
	if !events.ValidEventID(r.EventID) {
		return nil, errors.New("receipt request: event_id is not a UUIDv7")
	}
	if _, err := r.Hash(); err != nil {
		return nil, fmt.Errorf("receipt request: sha256: %w", err)
	}
	return &r, nil
}

// Receipt is the ledger's answer to a ReceiptRequest. A committed receipt is
// proof only after verification (the verifier package checks the inclusion
// proof against the checkpoint and the checkpoint's signatures).
type Receipt struct {
	EventID string        `json:"event_id"`
	Status  ReceiptStatus `json:"status"`
	// Reason is set when Status is ReceiptRejected or ReceiptIDConflict.
	Reason events.Reason `json:"reason,omitempty"`
	// LeafIndex and TreeSize locate the event's leaf in the tree the
	// checkpoint commits to; they are zero unless Status is ReceiptCommitted.
	// With ReceiptIDConflict, LeafIndex is the leaf of the bytes first
	// logged under the id.
	LeafIndex uint64 `json:"leaf_index"`
	TreeSize  uint64 `json:"tree_size"`
	// LeafRecord is the leaf's data (verifier.LeafRecord): with the
	// envelope it recomputes the leaf hash the proof starts from.
	LeafRecord []byte `json:"leaf_record,omitempty"`
	// InclusionProof is the RFC 6962 audit path of the leaf, for TreeSize.
	InclusionProof [][]byte `json:"inclusion_proof,omitempty"`
	// Checkpoint is the signed note (C2SP checkpoint) of size TreeSize.
	Checkpoint []byte `json:"checkpoint,omitempty"`
	// Unwitnessed is true when the covenant has a witness policy and no
	// checkpoint its witnesses cosigned covers the event yet: Checkpoint
	// then carries the log's own signatures only. Ask again later for a
	// witnessed one.
	Unwitnessed bool `json:"unwitnessed,omitempty"`
	// Findings are the covenant rules the committed event breaks (rule id
	// and field, as stored with the event; never a message text), so that
	// the party learns of them with its receipt as well as by webhook.
	// Empty for an event without findings and for any other status.
	Findings []ReceiptFinding `json:"findings,omitempty"`
}

// ReceiptFinding is one finding on a committed event: its stable rule id
// (events.FindingRules) and the field it is about.
type ReceiptFinding struct {
	Rule  string `json:"rule"`
	Field string `json:"field,omitempty"`
}

// Validate checks that r is a well-formed answer: a known status and, for a
// committed event, a leaf inside the tree and a checkpoint.
func (r *Receipt) Validate() error {
	if !events.ValidEventID(r.EventID) {
		return errors.New("receipt: event_id is not a UUIDv7")
	}
	switch r.Status {
	case ReceiptCommitted:
		if r.LeafIndex >= r.TreeSize {
			return fmt.Errorf("receipt: leaf_index %d is outside a tree of size %d", r.LeafIndex, r.TreeSize)
		}
		if len(r.Checkpoint) == 0 {
			return errors.New("receipt: a committed receipt needs a checkpoint")
		}
	case ReceiptRejected:
		if r.Reason == "" {
			return errors.New("receipt: a rejected receipt needs a reason")
		}
	case ReceiptIDConflict:
		if r.Reason != events.ReasonIDConflict {
			return fmt.Errorf("receipt: an id_conflict receipt needs reason %s", events.ReasonIDConflict)
		}
	case ReceiptPending:
	default:
		return fmt.Errorf("receipt: unknown status %q", r.Status)
	}
	return nil
}

// ParseReceipt decodes and validates a receipt. Unknown fields are ignored,
// as with ParseRejection.
func ParseReceipt(b []byte) (*Receipt, error) {
	var r Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("couldn't decode receipt: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// marshalJSON encodes v without HTML escaping, so messages read the same on
// the wire as in the documentation.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
