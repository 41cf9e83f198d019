package verifier

import (
	"bytes"
	"crypto/sha256"
	"sync"

	"github.com/spoor-ledger/spoor/events"
)

// BundleCache remembers the work that verifying many bundles of one log
// repeats; WithCache hands it to VerifyBundle. The ledger, which checks
// every bundle it builds before it hands it out, keeps one:
//
//   - the newest checkpoint opened: every bundle built until the next
//     commit is against it, and opening it costs two signature checks;
//   - the covenant chains verified: parsing and checking a chain costs
//     milliseconds (YAML and a signature per version), and a log's chain
//     only grows.
//
// Each is keyed by every byte its verdict depends on, so a hit is the same
// verdict on the same input. The zero value is ready for use; a BundleCache
// is safe for concurrent use and must not be copied after first use.
type BundleCache struct {
	mu sync.Mutex
	// The last checkpoint opened, the note and keys it was opened with.
	cpNote []byte
	cpKeys *LogKeys
	cp     Checkpoint
	// chains holds verified covenant chains (each version as the chain
	// holds it), keyed by chainKey.
	chains map[[32]byte][]*events.SignedCovenant
}

// maxCachedChains bounds BundleCache.chains: a log's chain, and a few of
// its earlier lengths.
const maxCachedChains = 16

// openCheckpoint opens a signed checkpoint note with keys, or returns a
// copy of the one opened for the same note and keys before. A nil cache
// opens it every time.
func (c *BundleCache) openCheckpoint(noteBytes []byte, keys *LogKeys) (*Checkpoint, error) {
	if c == nil {
		return OpenCheckpoint(noteBytes, keys)
	}
	c.mu.Lock()
	if c.cpKeys == keys && bytes.Equal(c.cpNote, noteBytes) {
		cp := c.cp
		c.mu.Unlock()
		return &cp, nil
	}
	c.mu.Unlock()
	cp, err := OpenCheckpoint(noteBytes, keys)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cpNote, c.cpKeys, c.cp = bytes.Clone(noteBytes), keys, *cp
	c.mu.Unlock()
	return cp, nil
}

// chainKey is the cache key of a bundle's covenant chain: the pinned
// administrator key, the origin and the SHA-256 of every signed version in
// order, which is every byte the chain's verdict depends on.
func chainKey(covs []BundleEntry, origin, admin string) [32]byte {
	h := sha256.New()
	h.Write([]byte(admin))
	h.Write([]byte{0})
	h.Write([]byte(origin))
	h.Write([]byte{0})
	for _, e := range covs {
		body := sha256.Sum256(e.Envelope)
		h.Write(body[:])
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// chain returns the chain verified before under key, or nil.
func (c *BundleCache) chain(key [32]byte) []*events.SignedCovenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chains[key]
}

// addChain remembers a chain that verified in full.
func (c *BundleCache) addChain(key [32]byte, versions []*events.SignedCovenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chains == nil || len(c.chains) >= maxCachedChains {
		c.chains = map[[32]byte][]*events.SignedCovenant{}
	}
	c.chains[key] = versions
}

// covenantSteps verifies a bundle's covenant versions one at a time with
// events.NewChain and Append, or, when the cache verified the same chain
// before, replays that verdict version by version without parsing or
// checking signatures again. Either way VerifyBundle's leaf checks around
// each step are made.
type covenantSteps struct {
	replay []*events.SignedCovenant
	chain  *events.Chain
	n      int // versions verified so far
}

// parse returns version i as signed.
func (s *covenantSteps) parse(i int, envelope []byte) (*events.SignedCovenant, error) {
	if s.replay != nil {
		return s.replay[i], nil
	}
	return events.ParseSignedCovenant(envelope)
}

// first starts the chain with version 1, pinned to admin.
func (s *covenantSteps) first(sc *events.SignedCovenant, admin string) error {
	if s.replay == nil {
		chain, err := events.NewChain(sc, admin)
		if err != nil {
			return err
		}
		s.chain = chain
	}
	s.n = 1
	return nil
}

// next appends the version after the last one verified.
func (s *covenantSteps) next(sc *events.SignedCovenant) error {
	if s.replay == nil {
		if err := s.chain.Append(sc); err != nil {
			return err
		}
	}
	s.n++
	return nil
}

// latest returns the newest version verified, as the chain holds it.
func (s *covenantSteps) latest() *events.SignedCovenant {
	if s.replay != nil {
		return s.replay[s.n-1]
	}
	return s.chain.Latest()
}
