package answer

import (
	"errors"
	"slices"

	"github.com/spoor-ledger/spoor/verifier"
)

// ErrNoScope means a desk user answers for no party: a desk user without a
// party on a covenant that names no central desk, or one whose party is in
// no covenant version. Every desk route refuses such a user (fail closed):
// an unknown scope must never widen to "everything".
var ErrNoScope = errors.New("ledger: this desk user answers for no party of the covenant")

// DeskScope is whose disclosures a desk user answers for, decided over the
// whole covenant chain (ledger.ChainView); it is the one place that decides
// it. party is the desk user's party, "" for a desk user of no party.
//
//   - A desk user of no party, when the covenant in force names a central
//     desk: every party that was ever in the covenant.
//   - A desk user of a party that any covenant version listed: that party's
//     own disclosures, including those it made before it left (it stays
//     their controller).
//   - Anyone else (no party without a central desk, or a party no version
//     listed, such as a typo in the tokens file): ErrNoScope.
func (s *Service) DeskScope(party string) (verifier.BundleScope, error) {
	v := s.l.ChainView()
	if v == nil {
		return verifier.BundleScope{}, ErrNoScope
	}
	if party == "" {
		if !v.Latest.Covenant.CentralDesk {
			return verifier.BundleScope{}, ErrNoScope
		}
		return verifier.BundleScope{Parties: slices.Clone(v.EverListed), CentralDesk: true}, nil
	}
	if _, ok := slices.BinarySearch(v.EverListed, party); !ok {
		return verifier.BundleScope{}, ErrNoScope
	}
	return verifier.BundleScope{Parties: []string{party}}, nil
}
