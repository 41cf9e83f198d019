package events

import (
	"crypto/ed25519"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Every Ed25519 signature Spoor checks on an event (ingest, `spoor verify`,
// the FG's audit, a parent's offline check of an inzage bundle) goes through
// verifySignature, so all of them accept exactly the same signatures.
//
// The rule is crypto/ed25519's, bit for bit: cofactorless equation, S below
// the group order, R compared as bytes (so a non-canonical R fails), A
// decoded leniently (non-canonical and small-order keys are not refused by
// the decoder). That is the rule an independent verifier written with Go's
// standard library applies; a ZIP-215 (cofactored) rule would accept some
// signatures it rejects, and a parent's check and the ledger's would then
// disagree. events/testdata/ed25519-edges.json pins the edge cases, and
// FuzzVerifySignature compares the two implementations on crafted inputs.
//
// Only the speed differs: curve25519-voi with its crypto/ed25519 profile,
// and each party key expanded once (point decoded, negated and its
// multiples tabled), verifies in about half the time of crypto/ed25519 on
// the reference machine (40 µs against 83 µs), and signature checking is
// the largest per-event cost of ingest and audit. voi's batch verification
// is not used: it exists only for the cofactored rule.
var stdlibRule = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// maxExpandedKeys bounds the cache of expanded keys. Keys reach it only
// after the covenant resolved them as a party's key in force, so a region
// has far fewer; the bound only keeps memory finite if it had more. An
// expanded key is under 3 KiB (two tables of eight points).
const maxExpandedKeys = 4096

var expandedKeys struct {
	m sync.Map // [ed25519.PublicKeySize]byte -> *voi.ExpandedPublicKey
	n atomic.Int64
}

// verifySignature reports whether sig is pub's Ed25519 signature of msg,
// under crypto/ed25519's rule. It never panics: wrong lengths are false.
func verifySignature(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if k := expandedKey(pub); k != nil {
		return voi.VerifyExpandedWithOptions(k, msg, sig, stdlibRule)
	}
	// A key that does not decode as a point (crypto/ed25519 rejects every
	// signature by it), or one more key than the cache holds: the standard
	// library decides, as it would have.
	return ed25519.Verify(pub, msg, sig)
}

// expandedKey returns pub's expanded form from the cache, expanding and
// caching it on first use. It returns nil if pub is not a point, or if it
// is not cached and the cache is full: expanding a key costs more than the
// one check it would then serve.
func expandedKey(pub ed25519.PublicKey) *voi.ExpandedPublicKey {
	var id [ed25519.PublicKeySize]byte
	copy(id[:], pub)
	if k, ok := expandedKeys.m.Load(id); ok {
		return k.(*voi.ExpandedPublicKey)
	}
	if expandedKeys.n.Load() >= maxExpandedKeys {
		return nil
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	if v, loaded := expandedKeys.m.LoadOrStore(id, k); loaded {
		return v.(*voi.ExpandedPublicKey)
	}
	expandedKeys.n.Add(1)
	return k
}
