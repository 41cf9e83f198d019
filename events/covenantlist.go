package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CovenantVersions is the body of the ledger's public GET /v1/covenants:
// every covenant version the log holds, oldest first, each as the signed
// bytes that were logged. A covenant is a public document; serving it lets
// a gateway (or anyone who pins the administrator key) follow new versions
// without a restart: it appends each newer version to its Chain, which
// checks the signature and the chain fields, so the ledger is trusted for
// nothing but availability.
type CovenantVersions struct {
	Versions []LoggedCovenant `json:"versions"`
}

// LoggedCovenant is one covenant version in the log.
type LoggedCovenant struct {
	// Version is the covenant's version, as its YAML says.
	Version int `json:"version"`
	// LeafIndex is the leaf of the log that holds it.
	LeafIndex uint64 `json:"leaf_index"`
	// Signed is the signed covenant file (ParseSignedCovenant), standard
	// base64 in JSON.
	Signed []byte `json:"signed"`
}

// MaxCovenantVersionsBody bounds a CovenantVersions body a client reads:
// a thousand versions of the largest covenant would not fit, a decade of
// monthly ones does.
const MaxCovenantVersionsBody = 64 << 20

// ExtendChain appends to ch every version of vs newer than ch's latest,
// oldest first, and returns how many it appended. A version that does not
// follow (ErrCovenantChain, ErrCovenantSignature) stops it: the versions
// before it stay appended, and the error says which one failed.
func ExtendChain(ch *Chain, vs *CovenantVersions) (int, error) {
	n := 0
	for _, v := range vs.Versions {
		if v.Version <= ch.Latest().Covenant.Version {
			continue
		}
		sc, err := ParseSignedCovenant(v.Signed)
		if err != nil {
			return n, fmt.Errorf("covenant version %d at leaf %d: %w", v.Version, v.LeafIndex, err)
		}
		if sc.Covenant.Version != v.Version {
			return n, fmt.Errorf("the entry listed as version %d holds version %d: %w", v.Version, sc.Covenant.Version, ErrCovenantChain)
		}
		if err := ch.Append(sc); err != nil {
			return n, fmt.Errorf("covenant version %d at leaf %d: %w", v.Version, v.LeafIndex, err)
		}
		n++
	}
	return n, nil
}

// ParseCovenantVersions decodes a CovenantVersions body.
func ParseCovenantVersions(b []byte) (*CovenantVersions, error) {
	var vs CovenantVersions
	if err := json.Unmarshal(b, &vs); err != nil {
		return nil, fmt.Errorf("covenant versions: %w", err)
	}
	if len(vs.Versions) == 0 {
		return nil, errors.New("covenant versions: the list is empty")
	}
	return &vs, nil
}
