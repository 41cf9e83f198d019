package verifier

// Every rendering of stored events (the parent's report, the FG's audit in
// HTML and JSON, and any page added later) shows a discloser's free text
// and unknown ids through the helpers in this file, and only through them.

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spoor-ledger/spoor/events"
)

// maskedNumber replaces a masked number in free text.
const maskedNumber = "[nummer weggelaten]"

// MaskFreeText returns text a discloser wrote (a justification, a case
// reference, a consent reference, a staff id) with every nine-digit number
// replaced by "[nummer weggelaten]": also one written in groups
// (1234.56.782, 1234 56 782) and also one that fails the elfproef (an
// onderwijsnummer does). The finding possible-bsn flags the numbers that
// pass it (events.PossibleBSN); masking takes them all, since a reader
// cannot tell a case number from an onderwijsnummer either. The stored,
// signed envelope still holds the number (see docs/dpia.md).
func MaskFreeText(s string) string {
	start, end, ok := events.NineDigitSpan(s, 0)
	if !ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	from := 0
	for ok {
		b.WriteString(s[from:start])
		b.WriteString(maskedNumber)
		from = end
		start, end, ok = events.NineDigitSpan(s, from)
	}
	b.WriteString(s[from:])
	return b.String()
}

// UnknownValueNL is how a rendering shows an id the covenant does not know
// (a recipient that is no party, a category or purpose outside the
// vocabulary): "onbekende waarde (n tekens)", never the value itself, which
// the discloser typed and may hold anything.
func UnknownValueNL(s string) string {
	return fmt.Sprintf("onbekende waarde (%d tekens)", utf8.RuneCountInString(s))
}

// BundlePossibleBSN returns the leaf indices of the disclosures in an
// inzage bundle (as the ledger builds it, not yet verified) whose free text
// holds a possible BSN (events.PossibleBSNFields). The desk user who
// releases the answer is warned: the parent's report masks the number, but
// the bundle carries the signed envelope, which still holds it.
func BundlePossibleBSN(bundle []byte) ([]uint64, error) {
	b, err := ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range b.Entries {
		env, err := events.ParseEnvelope(e.Envelope)
		if err != nil {
			continue
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			continue
		}
		if len(events.PossibleBSNFields(d)) > 0 {
			out = append(out, e.Index)
		}
	}
	return out, nil
}
