//go:build js

package events

import (
	"crypto/ed25519"

	"github.com/hdevalence/ed25519consensus"
)

// verifySignature reports whether sig is pub's Ed25519 signature of msg,
// under the ZIP-215 rule (ed25519consensus, the rule's reference
// implementation). It never panics: wrong lengths are false.
func verifySignature(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519consensus.Verify(pub, msg, sig)
}

// verifySignatures checks every signature on its own: a parent's bundle
// holds a few dozen, where a batch equation saves nothing worth its code.
func verifySignatures(checks []sigCheck) []bool {
	ok := make([]bool, len(checks))
	for i, c := range checks {
		ok[i] = verifySignature(c.pub, c.msg, c.sig)
	}
	return ok
}
