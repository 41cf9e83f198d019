package verifier

import (
	"strings"
	"time"
)

// An erasure on request (AVG art. 17) takes two desk users: one proposes
// it, a second one of the same scope confirms it, and only then does the
// ledger append the tombstone. The proposals are kept beside the log, in
// the store, for the FG: the public tombstone names only the leaf and the
// rule, never who asked for it. ErasureProposal is that record, as the
// store keeps it and as the read API (GET /v1/erasures) serves it.
type ErasureProposal struct {
	// ID is the proposal's id (a UUIDv7).
	ID string `json:"id"`
	// LeafIndex is the disclosure to erase.
	LeafIndex uint64 `json:"leaf_index"`
	// Ground is the legal ground, e.g. "avg-17-1-a"; the tombstone's rule
	// is "erasure:" + Ground.
	Ground string `json:"ground"`
	// Scope is the identity of the desk scope that proposed it
	// (BundleScope.Identity): only desk users of that scope see, confirm or
	// withdraw it.
	Scope string `json:"scope"`
	// Discloser is the party whose disclosure it is.
	Discloser string `json:"discloser"`
	// Status is one of the ErasureProposal* constants.
	Status string `json:"status"`
	// ProposedBy names the desk user who proposed it; ProposedByCredential
	// is the SHA-256 of that user's credential (hex), which is what tells
	// two desk users apart: two token entries may carry one name.
	ProposedBy           string    `json:"proposed_by"`
	ProposedByCredential string    `json:"proposed_by_credential"`
	ProposedAt           time.Time `json:"proposed_at"`
	// ExpiresAt is when an unconfirmed proposal lapses.
	ExpiresAt time.Time `json:"expires_at"`
	// DecidedBy, DecidedByCredential and DecidedAt say who confirmed or
	// withdrew it, and when.
	DecidedBy           string     `json:"decided_by,omitempty"`
	DecidedByCredential string     `json:"decided_by_credential,omitempty"`
	DecidedAt           *time.Time `json:"decided_at,omitempty"`
	// TombstoneIndex is the tombstone's leaf once confirmed.
	TombstoneIndex *uint64 `json:"tombstone_index,omitempty"`
}

// ErasureList is the body of GET /v1/erasures: the proposals a desk user's
// scope made, or, for the FG, all of them, oldest first.
type ErasureList struct {
	Proposals []ErasureProposal `json:"proposals"`
}

// The statuses of an erasure proposal.
const (
	// ErasureProposed: waiting for a second desk user.
	ErasureProposed = "proposed"
	// ErasureConfirmed: a second desk user confirmed it; the tombstone is
	// logged.
	ErasureConfirmed = "confirmed"
	// ErasureWithdrawn: a desk user of the scope withdrew it.
	ErasureWithdrawn = "withdrawn"
	// ErasureExpired: nobody confirmed it before ExpiresAt. A stored
	// proposal keeps the status proposed; readers report it as expired
	// (EffectiveStatus), so no job has to rewrite it.
	ErasureExpired = "expired"
	// ErasureOvertaken: the disclosure was erased otherwise (by retention)
	// before anyone confirmed the proposal.
	ErasureOvertaken = "overtaken"
)

// ErasureStatuses lists every status a reader reports for a proposal. Their
// Dutch words are in the report package (verifier/report).
func ErasureStatuses() []string {
	return []string{ErasureProposed, ErasureConfirmed, ErasureWithdrawn, ErasureExpired, ErasureOvertaken}
}

// EffectiveStatus is the proposal's status at time now: a proposal past its
// expiry that nobody decided is expired.
func (p *ErasureProposal) EffectiveStatus(now time.Time) string {
	if p.Status == ErasureProposed && !now.Before(p.ExpiresAt) {
		return ErasureExpired
	}
	return p.Status
}

// ErasureGrounds are the grounds an erasure on request may name: the six of
// AVG art. 17(1). A closed list, not a pattern: the ground becomes part of
// the public tombstone's rule id ("erasure:" + ground), so a desk user must
// not be able to type anything else into the public log (a BSN, a name).
func ErasureGrounds() []string {
	return []string{"avg-17-1-a", "avg-17-1-b", "avg-17-1-c", "avg-17-1-d", "avg-17-1-e", "avg-17-1-f"}
}

// ErasureRulePrefix starts the rule id of a tombstone appended on request.
const ErasureRulePrefix = "erasure:"

// Scope identities (BundleScope.Identity).
const (
	scopeCentral     = "central"
	scopePartyPrefix = "party:"
)

// Identity names the scope as a desk user holds it, independent of the
// covenant's party list on any one day: "central" for a central desk,
// "party:<id>" for a party's own desk. A request or proposal stays with the
// scope that made it when a later covenant version adds or removes parties.
func (s BundleScope) Identity() string {
	if s.CentralDesk {
		return scopeCentral
	}
	return scopePartyPrefix + strings.Join(s.Parties, ",")
}

// Covers reports whether the scope answers for party's disclosures.
func (s BundleScope) Covers(party string) bool {
	for _, p := range s.Parties {
		if p == party {
			return true
		}
	}
	return false
}
