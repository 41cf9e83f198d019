package events

import "crypto/ed25519"

// Every Ed25519 signature Spoor checks on an event (ingest, `spoor verify`,
// the FG's audit, a parent's offline check of an inzage bundle) goes through
// verifySignature or verifySignatures, so all of them accept exactly the
// same signatures.
//
// The rule is ZIP-215's: the cofactored equation [8][S]B = [8]R + [8][k]A,
// S below the group order, A and R decoded even where their encoding is not
// canonical, small-order A and R allowed. ZIP-215 was written so that every
// verifier, and single and batch verification, reach the same verdict on
// every input; that is what makes batch verification (verifySignatures)
// safe to use in ingest while `spoor verify` checks one signature at a
// time. Batches of 64 cost about 22 µs per signature on the reference
// machine, against 37 µs one by one, and signature checking is the largest
// per-event cost of ingest.
//
// Every signature crypto/ed25519 accepts (the cofactorless equation, which
// implies the cofactored one) is accepted here too, so no event a
// standard verifier accepts is ever refused, and events logged under the
// earlier, stricter rule stay valid. The converse fails only for
// signatures a key holder crafts on purpose with a small-order component in
// R or A (or a non-canonical encoding): still its signature (ZIP-215 is as
// unforgeable as RFC 8032), but one that crypto/ed25519 would reject.
// events/testdata/ed25519-edges.json pins those cases, with the verdicts of
// both rules, and FuzzVerifySignature compares this code with
// github.com/hdevalence/ed25519consensus, the reference ZIP-215
// implementation in Go.
//
//
// Natively (sigverify_native.go) the checks run on curve25519-voi, for its
// speed; in the browser's WebAssembly build (sigverify_js.go) on
// hdevalence/ed25519consensus, which builds on filippo.io/edwards25519,
// already in that build for the VRF, and keeps the page small. Both
// implement ZIP-215, and FuzzVerifySignature holds them to the same verdicts.

// sigCheck is one signature to check in a batch.
type sigCheck struct {
	pub      ed25519.PublicKey
	msg, sig []byte
}

// minBatch is the smallest batch verified as one: below it the batch
// equation saves less than its set-up costs.
const minBatch = 4
