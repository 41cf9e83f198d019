package verifier

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestErasureProposalStatus: an undecided proposal reads as expired from
// its expiry on, never before; a decided one keeps its status however old.
func TestErasureProposalStatus(t *testing.T) {
	exp := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	open := ErasureProposal{Status: ErasureProposed, ExpiresAt: exp}
	if got := open.EffectiveStatus(exp.Add(-time.Nanosecond)); got != ErasureProposed {
		t.Errorf("just before expiry: %s", got)
	}
	if got := open.EffectiveStatus(exp); got != ErasureExpired {
		t.Errorf("at expiry: %s", got)
	}
	for _, s := range []string{ErasureConfirmed, ErasureWithdrawn, ErasureOvertaken} {
		p := ErasureProposal{Status: s, ExpiresAt: exp}
		if got := p.EffectiveStatus(exp.Add(time.Hour)); got != s {
			t.Errorf("a %s proposal after expiry reads %s", s, got)
		}
	}
	for _, s := range []string{ErasureProposed, ErasureConfirmed, ErasureWithdrawn, ErasureExpired, ErasureOvertaken} {
		if !slices.Contains(ErasureStatuses(), s) {
			t.Errorf("ErasureStatuses lacks %s", s)
		}
	}
}

// TestErasureGroundsAreAVG17: the grounds are exactly AVG art. 17(1) a to
// f, and each is safe in a public rule id (no space, no colon).
func TestErasureGroundsAreAVG17(t *testing.T) {
	want := []string{"avg-17-1-a", "avg-17-1-b", "avg-17-1-c", "avg-17-1-d", "avg-17-1-e", "avg-17-1-f"}
	if got := ErasureGrounds(); !slices.Equal(got, want) {
		t.Errorf("ErasureGrounds() = %v, want %v", got, want)
	}
	for _, g := range ErasureGrounds() {
		if strings.ContainsAny(g, " :") {
			t.Errorf("ground %q cannot be part of a rule id", g)
		}
	}
}

// TestScopeIdentity: a central desk is "central" whatever parties it
// lists; a party desk is named by its parties, and covers only those.
func TestScopeIdentity(t *testing.T) {
	central := BundleScope{CentralDesk: true, Parties: []string{"a", "b"}}
	if got := central.Identity(); got != "central" {
		t.Errorf("central desk identity %q", got)
	}
	party := BundleScope{Parties: []string{"gemeente-a", "school-b"}}
	if got := party.Identity(); got != "party:gemeente-a,school-b" {
		t.Errorf("party desk identity %q", got)
	}
	if !party.Covers("school-b") || party.Covers("jeugdhulp-c") {
		t.Errorf("Covers: school-b %v, jeugdhulp-c %v", party.Covers("school-b"), party.Covers("jeugdhulp-c"))
	}
}
