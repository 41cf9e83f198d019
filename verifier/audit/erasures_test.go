package audit_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// withProposals is a memLog that also lists erasure proposals, as the store
// and the FG's HTTP source do (audit.ErasureSource).
type withProposals struct {
	*memLog
	proposals []verifier.ErasureProposal
	err       error
}

func (w withProposals) ErasureProposals(context.Context) ([]verifier.ErasureProposal, error) {
	return w.proposals, w.err
}

// eraseOnRequest erases leaf n with a tombstone "erasure:"+ground whose
// body agrees with its leaf record, and drops leaf n's body, as the ledger
// does; it returns the tombstone's index.
func (l *memLog) eraseOnRequest(n uint64, ground string, at time.Time) uint64 {
	l.t.Helper()
	rule := verifier.ErasureRulePrefix + ground
	h := verifier.LeafHash(l.entries[n].LeafRecord)
	body, err := json.Marshal(verifier.TombstoneBody{Schema: verifier.TombstoneSchema, Origin: l.origin, ErasedIndex: n,
		ErasedLeafHash: hex.EncodeToString(h[:]), RuleID: rule, CovenantVersion: l.m.Signed.Covenant.Version})
	if err != nil {
		l.t.Fatal(err)
	}
	l.entries[n].Body = nil
	l.last = at
	return l.add(verifier.LeafRecord{Type: verifier.EntryTombstone, IntegratedAt: at, ErasedIndex: n, RuleID: rule}, body, nil)
}

// TestAuditErasuresOnRequest: the audit lists every proposal with the
// status it has at the report's time, counts them per status, flags a
// scope that confirmed more than the daily limit on one day, names the
// tombstones on request that no confirmed proposal explains, and reports a
// confirmed proposal the log does not show as a problem. A source without
// proposals leaves the part unavailable; one whose listing fails fails the
// audit.
func TestAuditErasuresOnRequest(t *testing.T) {
	l := newMemLog(t)
	l.fill(1, 8)
	day := time.Date(2026, 1, 20, 9, 0, 0, 0, time.UTC)
	now := day.Add(30 * 24 * time.Hour)
	var tombs []uint64
	for i, leaf := range []uint64{1, 2, 3, 4} {
		tombs = append(tombs, l.eraseOnRequest(leaf, verifier.ErasureGrounds()[i], day.Add(time.Duration(i)*time.Minute)))
	}
	l.checkpoint()

	decided := day.Add(time.Hour)
	confirmed := func(id string, leaf, tomb uint64) verifier.ErasureProposal {
		return verifier.ErasureProposal{ID: id, LeafIndex: leaf, Ground: verifier.ErasureGrounds()[leaf-1], Scope: "central",
			Status: verifier.ErasureConfirmed, ExpiresAt: day.Add(24 * time.Hour), DecidedAt: &decided, TombstoneIndex: &tomb}
	}
	ps := []verifier.ErasureProposal{
		confirmed("p1", 1, tombs[0]),
		confirmed("p2", 2, tombs[1]),
		// Confirmed as the tombstone of leaf 1, but it names leaf 3.
		confirmed("p3", 3, tombs[0]),
		{ID: "p4", LeafIndex: 5, Ground: "avg-17-1-a", Scope: "central", Status: verifier.ErasureWithdrawn, ExpiresAt: day, DecidedAt: &decided},
		// Never decided and past its expiry: reported as expired.
		{ID: "p5", LeafIndex: 6, Ground: "avg-17-1-a", Scope: "central", Status: verifier.ErasureProposed, ExpiresAt: day},
		// Confirmed after the checkpoint audited: not checked against it.
		confirmed("p6", 2, tombs[3]+10),
	}
	src := withProposals{memLog: l, proposals: ps}
	rep, err := audit.Run(context.Background(), src, audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey,
		Now: func() time.Time { return now }, ErasureDailyLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	ea := rep.ErasuresOnRequest
	if ea == nil || !ea.Available || ea.DailyLimit != 2 || len(ea.Proposals) != len(ps) {
		t.Fatalf("erasures on request: %+v", ea)
	}
	want := map[string]int{verifier.ErasureConfirmed: 4, verifier.ErasureWithdrawn: 1, verifier.ErasureExpired: 1}
	for s, n := range want {
		if ea.ByStatus[s] != n {
			t.Errorf("%d proposals %s, want %d (%v)", ea.ByStatus[s], s, n, ea.ByStatus)
		}
	}
	if ea.Proposals[4].Status != verifier.ErasureExpired {
		t.Errorf("a lapsed proposal reads %s", ea.Proposals[4].Status)
	}
	if len(ea.Flagged) != 1 || ea.Flagged[0].Scope != "central" || ea.Flagged[0].Confirmed != 4 || ea.Flagged[0].Day != "2026-01-20" {
		t.Errorf("flagged: %+v", ea.Flagged)
	}
	// Tombstones 2 and 3 (leaves 3 and 4) have no confirmed proposal naming
	// them; p3 names tombstone 0 and p6 one beyond the log.
	if !slices.Equal(ea.WithoutDecision, []uint64{tombs[2], tombs[3]}) {
		t.Errorf("without decision: %v, want %v", ea.WithoutDecision, []uint64{tombs[2], tombs[3]})
	}
	var decisions []uint64
	for _, p := range rep.Problems {
		if p.Check == audit.CheckErasureDecision {
			decisions = append(decisions, *p.Leaf)
		} else {
			t.Errorf("unexpected problem: %s", p)
		}
	}
	if !slices.Equal(decisions, []uint64{tombs[0]}) {
		t.Errorf("erasure-decision problems at %v, want one at %d", decisions, tombs[0])
	}

	// The public log alone cannot say anything about proposals.
	rep, err = audit.Run(context.Background(), l, audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if ea := rep.ErasuresOnRequest; ea == nil || ea.Available || ea.DailyLimit != audit.DefaultErasureDailyLimit {
		t.Errorf("without proposals: %+v", ea)
	}

	broken := errors.New("proposals unreadable")
	if _, err := audit.Run(context.Background(), withProposals{memLog: l, err: broken}, audit.Config{Keys: l.keys, AdminVkey: l.m.AdminVkey}); !errors.Is(err, broken) {
		t.Errorf("a failing proposal listing: %v, want it wrapped", err)
	}
}
