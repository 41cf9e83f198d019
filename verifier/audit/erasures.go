package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/verifier"
)

// This file is the audit's account of erasures on request: every proposal
// with its decision, the scopes that erased more on one day than the FG's
// stated number, and the tombstones "on request" that no recorded
// two-person decision explains. The proposals live beside the log (the
// store, or GET /v1/erasures with the FG's token), so only sources that
// reach them (ErasureSource) give this part; the tombstones
// themselves are public and checked like every entry.

// ErasureSource is implemented by sources that can list the erasure
// proposals: the store, the running ledger, and the FG's HTTP source.
type ErasureSource interface {
	// ErasureProposals returns every stored proposal, oldest first.
	ErasureProposals(ctx context.Context) ([]verifier.ErasureProposal, error)
}

// DefaultErasureDailyLimit is the number of erasures on request one scope
// may confirm on one calendar day before the audit flags it, when
// Config.ErasureDailyLimit is zero.
const DefaultErasureDailyLimit = 5

// ErasuresOnRequest is the report's part on erasures on request.
type ErasuresOnRequest struct {
	// Available is false when the source cannot list proposals (the
	// public tiles alone); the rest is then empty.
	Available bool `json:"available"`
	// DailyLimit is the stated number: more confirmed erasures than this
	// by one scope on one day (in the audit's time zone) is flagged.
	DailyLimit int `json:"daily_limit"`
	// Proposals are every proposal, with its status at the time of the
	// report (a lapsed one reads "expired"), oldest first.
	Proposals []verifier.ErasureProposal `json:"proposals"`
	// ByStatus counts the proposals per status.
	ByStatus map[string]int `json:"by_status"`
	// Flagged are the scope-days above DailyLimit.
	Flagged []ErasureDay `json:"flagged"`
	// WithoutDecision lists tombstones whose rule says "on request"
	// (erasure:...) that no confirmed proposal names: erased without a
	// recorded second desk user (logs from before two-person erasure
	// have them; after it, only a write around the API would).
	WithoutDecision []uint64 `json:"without_decision"`
}

// ErasureDay is one scope's confirmed erasures on request on one day.
type ErasureDay struct {
	Scope     string `json:"scope"`
	Day       string `json:"day"`
	Confirmed int    `json:"confirmed"`
}

// erasureAudit builds the report's ErasuresOnRequest once the entries are read
// (a.requestTombstones holds the tombstones on request).
func (a *auditor) erasureAudit(ctx context.Context, src Source) error {
	limit := a.cfg.ErasureDailyLimit
	if limit <= 0 {
		limit = DefaultErasureDailyLimit
	}
	ea := &ErasuresOnRequest{DailyLimit: limit, Proposals: []verifier.ErasureProposal{}, ByStatus: map[string]int{},
		Flagged: []ErasureDay{}, WithoutDecision: []uint64{}}
	a.rep.ErasuresOnRequest = ea
	es, ok := src.(ErasureSource)
	if !ok {
		return nil
	}
	ps, err := es.ErasureProposals(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the erasure proposals: %w", err)
	}
	ea.Available = true
	now := a.cfg.Now()
	perDay := map[[2]string]int{}
	decided := map[uint64]bool{}
	for _, p := range ps {
		p.Status = p.EffectiveStatus(now)
		ea.Proposals = append(ea.Proposals, p)
		ea.ByStatus[p.Status]++
		if p.Status != verifier.ErasureConfirmed || p.DecidedAt == nil || p.TombstoneIndex == nil {
			continue
		}
		tomb := *p.TombstoneIndex
		decided[tomb] = true
		perDay[[2]string{p.Scope, p.DecidedAt.In(a.loc).Format(time.DateOnly)}]++
		if tomb >= a.size {
			continue // confirmed after the checkpoint audited
		}
		if rule, ok := a.requestTombstones[tomb]; !ok || rule != verifier.ErasureRulePrefix+p.Ground || a.tombstoned[p.LeafIndex] != tomb {
			a.problem(CheckErasureDecision, ptr(tomb), nil, "erasure proposal %s was confirmed as the tombstone at leaf %d erasing leaf %d, which the log does not show", p.ID, tomb, p.LeafIndex)
		}
	}
	for tomb := range a.requestTombstones {
		if !decided[tomb] {
			ea.WithoutDecision = append(ea.WithoutDecision, tomb)
		}
	}
	slices.Sort(ea.WithoutDecision)
	for k, n := range perDay {
		if n > limit {
			ea.Flagged = append(ea.Flagged, ErasureDay{Scope: k[0], Day: k[1], Confirmed: n})
		}
	}
	slices.SortFunc(ea.Flagged, func(x, y ErasureDay) int {
		return strings.Compare(x.Day+x.Scope, y.Day+y.Scope)
	})
	return nil
}
