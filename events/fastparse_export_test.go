package events

import (
	"regexp"

	"github.com/google/uuid"
)

// The fast path's pieces and its strict reference, for the differential
// tests in fastparse_test.go (package events_test).

// OpenReference is Open by the strict parsers and the full validation only.
func OpenReference(b []byte, origin string, keys KeyResolver) (*Disclosure, *Envelope, error) {
	return open(b, origin, keys, true)
}

var (
	ParseEnvelopeFast      = parseEnvelopeFast
	ParseEnvelopeStrict    = parseEnvelopeStrict
	DecodeDisclosureFast   = decodeDisclosureFast
	DecodeDisclosureStrict = decodeDisclosureStrict
	ParseCanonicalTime     = parseCanonicalTime
	// VerifySignature is the signature check every Open uses.
	VerifySignature = verifySignature
)

// VerifySignatures is the batch check OpenMany uses, on parallel slices.
func VerifySignatures(pubs, msgs, sigs [][]byte) []bool {
	checks := make([]sigCheck, len(pubs))
	for i := range pubs {
		checks[i] = sigCheck{pub: pubs[i], msg: msgs[i], sig: sigs[i]}
	}
	return verifySignatures(checks)
}

// ValidFast is the allocation-free yes/no of Validate.
func ValidFast(d *Disclosure) bool { return d.valid() }

// ValidateAll is Validate's full check.
func ValidateAll(d *Disclosure) error { return d.validateAll() }

// IDChecks runs each hand-written id check next to the regular expression
// (or the uuid parse) it replaces, returning both answers per check.
func IDChecks(s string) map[string][2]bool {
	return map[string][2]bool{
		"party":   {isPartyID(s), partyIDRE.MatchString(s)},
		"vocab":   {isVocabID(s), vocabIDRE.MatchString(s)},
		"keyname": {isKeyName(s), keyIDRE.MatchString(s)},
		"hex64":   {isLowerHex(s, 64), hex64RE.MatchString(s)},
		"trace":   {isLowerHex(s, 32), traceIDRE.MatchString(s)},
		"span":    {isLowerHex(s, 16), spanIDRE.MatchString(s)},
		"ground":  {len(s) == 1 && s[0] >= 'a' && s[0] <= 'f', groundRE.MatchString(s)},
		"uuidv7":  {isUUIDv7(s), uuidV7Reference(s)},
		"salt":    {isCanonicalSalt(s), saltReference.MatchString(s)},
	}
}

// uuidV7Reference is ValidEventID as it was written before the fast path.
func uuidV7Reference(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s && u.Version() == 7 && u.Variant() == uuid.RFC4122
}

// saltReference is what isCanonicalSalt claims to accept: 16 bytes in
// padded base64 with zero padding bits, and nothing else.
var saltReference = regexp.MustCompile(`^[A-Za-z0-9+/]{21}[AQgw]==$`)
