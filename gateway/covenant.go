package gateway

import (
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/events"
)

// LoadCovenantChain parses the signed covenant versions, oldest first, and
// checks them as a chain whose version 1 names and is signed by the pinned
// administrator key (events.NewChain, Chain.Append). The gateway checks
// disclosures against the chain's latest version. Following new versions
// from the ledger is a later step; until then a new version is given to
// the gateway by restarting it with the longer chain.
func LoadCovenantChain(signed [][]byte, pinnedAdmin string) (*events.Chain, error) {
	if pinnedAdmin == "" {
		return nil, errors.New("the gateway needs the pinned administrator key to trust a covenant")
	}
	if len(signed) == 0 {
		return nil, errors.New("no covenant given")
	}
	var ch *events.Chain
	for i, b := range signed {
		sc, err := events.ParseSignedCovenant(b)
		if err != nil {
			return nil, fmt.Errorf("covenant file %d: %w", i+1, err)
		}
		if i == 0 {
			if ch, err = events.NewChain(sc, pinnedAdmin); err != nil {
				return nil, fmt.Errorf("covenant file 1: %w", err)
			}
			continue
		}
		if err := ch.Append(sc); err != nil {
			return nil, fmt.Errorf("covenant file %d: %w", i+1, err)
		}
	}
	return ch, nil
}
