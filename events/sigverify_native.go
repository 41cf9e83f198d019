//go:build !js

package events

import (
	"crypto/ed25519"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The speed comes from curve25519-voi: each party key is expanded once
// (point decoded, negated and its multiples tabled), which halves the cost
// of a check against crypto/ed25519 (40 µs against 83 µs).
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

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
// under the ZIP-215 rule. It never panics: wrong lengths are false.
func verifySignature(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if k := expandedKey(pub); k != nil {
		return voi.VerifyExpandedWithOptions(k, msg, sig, zip215)
	}
	// A key that does not decode as a point (every signature by it
	// fails), or one more key than the cache holds.
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, zip215)
}

// verifySignatures checks every signature and reports each verdict, which
// is exactly verifySignature's for that signature. A batch whose
// signatures are all valid is checked with one multi-scalar equation
// (random coefficients from crypto/rand); if that fails, each is checked
// on its own to find the bad ones.
func verifySignatures(checks []sigCheck) []bool {
	ok := make([]bool, len(checks))
	if len(checks) < minBatch {
		for i, c := range checks {
			ok[i] = verifySignature(c.pub, c.msg, c.sig)
		}
		return ok
	}
	v := voi.NewBatchVerifierWithCapacity(len(checks))
	for _, c := range checks {
		if len(c.pub) != ed25519.PublicKeySize || len(c.sig) != ed25519.SignatureSize {
			// voi refuses these too; a fixed dummy keeps the indices.
			v.AddWithOptions(make(voi.PublicKey, ed25519.PublicKeySize), nil, make([]byte, ed25519.SignatureSize), zip215)
			continue
		}
		if k := expandedKey(c.pub); k != nil {
			v.AddExpandedWithOptions(k, c.msg, c.sig, zip215)
		} else {
			v.AddWithOptions(voi.PublicKey(c.pub), c.msg, c.sig, zip215)
		}
	}
	_, valid := v.Verify(nil)
	for i, c := range checks {
		ok[i] = valid[i] && len(c.pub) == ed25519.PublicKeySize && len(c.sig) == ed25519.SignatureSize
	}
	return ok
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
