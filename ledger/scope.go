package ledger

import (
	"errors"
	"slices"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// ErrNoScope means a desk user answers for no party: a desk user without a
// party on a covenant that names no central desk, or one whose party is in
// no covenant version. Every desk route refuses such a user (fail closed):
// an unknown scope must never widen to "everything".
var ErrNoScope = errors.New("ledger: this desk user answers for no party of the covenant")

// chainView is what readers outside the sequencer may see of the covenant
// chain: the version in force and every party id any version listed.
type chainView struct {
	// first is version 1, whose administrator key checkBuiltBundle pins
	// when the ledger is given none.
	first      *events.SignedCovenant
	latest     *events.SignedCovenant
	everListed []string // sorted
}

// publishChain makes the chain's current state visible to readers (the
// HTTP handlers run beside the sequencer and a standby's Apply, which own
// the chain).
func (l *Ledger) publishChain() {
	v := &chainView{first: l.chain.Version(1), latest: l.chain.Latest()}
	seen := map[string]bool{}
	for n := 1; n <= l.chain.Len(); n++ {
		for _, p := range l.chain.Version(n).Covenant.Parties {
			if !seen[p.ID] {
				seen[p.ID] = true
				v.everListed = append(v.everListed, p.ID)
			}
		}
	}
	slices.Sort(v.everListed)
	l.chainView.Store(v)
	l.covenant.Store(v.latest)
}

// DeskScope is whose disclosures a desk user answers for, decided over the
// whole covenant chain; it is the one place that decides it. party is the
// desk user's party, "" for a desk user of no party.
//
//   - A desk user of no party, when the covenant in force names a central
//     desk: every party that was ever in the covenant.
//   - A desk user of a party that any covenant version listed: that party's
//     own disclosures, including those it made before it left (it stays
//     their controller).
//   - Anyone else (no party without a central desk, or a party no version
//     listed, such as a typo in the tokens file): ErrNoScope.
func (l *Ledger) DeskScope(party string) (verifier.BundleScope, error) {
	v := l.chainView.Load()
	if v == nil {
		return verifier.BundleScope{}, ErrNoScope
	}
	if party == "" {
		if !v.latest.Covenant.CentralDesk {
			return verifier.BundleScope{}, ErrNoScope
		}
		return verifier.BundleScope{Parties: slices.Clone(v.everListed), CentralDesk: true}, nil
	}
	if _, ok := slices.BinarySearch(v.everListed, party); !ok {
		return verifier.BundleScope{}, ErrNoScope
	}
	return verifier.BundleScope{Parties: []string{party}}, nil
}
