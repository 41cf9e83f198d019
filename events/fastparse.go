package events

// This file holds the fast path of Open: direct, reflection-free parsers for
// the one canonical byte form of the envelope and of the disclosure payload,
// and hand-written field checks for Validate.
//
// Each fast function answers only "yes, and here is the result" or "not
// sure". It says yes only for bytes that are exactly canonical, where the
// strict path (encoding/json, re-encoding and comparing) would accept them and
// return the same values; for everything else, including every input that
// is wrong, it says "not sure" and the caller runs the strict path, which
// produces the error. So errors and reason codes are the strict path's by
// construction, and the fast path needs to be right only about what it
// accepts. The differential tests (fastparse_test.go) hold the two paths to
// that.

import (
	"bytes"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"
)

// The fixed bytes between the fields of a canonical envelope.
const (
	envPrefix     = `{"payloadType":"`
	envAfterType  = `","payload":"`
	envAfterBody  = `","signatures":[{"keyid":"`
	envAfterKeyID = `","sig":"`
	envSuffix     = `"}]}`
)

// strictBase64 is the decoder parseEnvelopeStrict uses, made once.
var strictBase64 = base64.StdEncoding.Strict()

// parseEnvelopeFast parses b if it is a canonical envelope whose payloadType
// and keyid need no JSON escapes. ok false means "not sure": run
// parseEnvelopeStrict.
func parseEnvelopeFast(b []byte) (env *Envelope, ok bool) {
	if len(b) > MaxEnvelopeSize {
		return nil, false
	}
	rest, ok := cutLiteral(b, envPrefix)
	if !ok {
		return nil, false
	}
	var payloadType string
	if p, found := cutLiteral(rest, PayloadType+envAfterType); found {
		// The usual case: no allocation for the type.
		payloadType, rest = PayloadType, p
	} else {
		raw, p, found := cutPlainString(rest)
		if !found || len(raw) == 0 {
			return nil, false
		}
		if rest, ok = cutLiteral(p, envAfterType[1:]); !ok {
			return nil, false
		}
		payloadType = string(raw)
	}
	body64, rest, ok := cutBase64(rest)
	if !ok {
		return nil, false
	}
	if rest, ok = cutLiteral(rest, envAfterBody[1:]); !ok {
		return nil, false
	}
	keyID, rest, ok := cutPlainString(rest)
	if !ok {
		return nil, false
	}
	if rest, ok = cutLiteral(rest, envAfterKeyID[1:]); !ok {
		return nil, false
	}
	sig64, rest, ok := cutBase64(rest)
	// 88 characters is exactly what 64 bytes take; any other length is
	// refused by the strict path.
	if !ok || len(sig64) != 88 {
		return nil, false
	}
	if rest, ok = cutLiteral(rest, envSuffix[1:]); !ok || len(rest) != 0 {
		return nil, false
	}
	// One buffer for payload and signature. The base64 text has no CR or LF
	// (cutBase64 refuses them), so a strict decode that succeeds means the
	// text is the one encoding of the bytes.
	bodyMax := strictBase64.DecodedLen(len(body64))
	buf := make([]byte, bodyMax+strictBase64.DecodedLen(len(sig64)))
	n, err := strictBase64.Decode(buf[:bodyMax], body64)
	if err != nil {
		return nil, false
	}
	m, err := strictBase64.Decode(buf[bodyMax:], sig64)
	if err != nil || m != 64 {
		return nil, false
	}
	return &Envelope{
		PayloadType: payloadType,
		Payload:     buf[:n:n],
		KeyID:       string(keyID),
		Sig:         buf[bodyMax : bodyMax+m : bodyMax+m],
		Raw:         b,
	}, true
}

// cutLiteral removes lit from the front of b.
func cutLiteral(b []byte, lit string) ([]byte, bool) {
	if len(b) < len(lit) || string(b[:len(lit)]) != lit {
		return b, false
	}
	return b[len(lit):], true
}

// cutPlainString reads a JSON string's contents up to and including its
// closing quote (the opening one is already consumed) if they are the same
// text decoded and re-encoded: no escapes, no control characters, valid
// UTF-8, no U+2028 or U+2029 (which the encoder escapes).
func cutPlainString(b []byte) (s, rest []byte, ok bool) {
	ascii := true
	for i, c := range b {
		switch {
		case c == '"':
			s = b[:i]
			if !ascii && !plainUTF8(s) {
				return nil, nil, false
			}
			return s, b[i+1:], true
		case c < 0x20 || c == '\\':
			return nil, nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, nil, false
}

// plainUTF8 reports whether s is valid UTF-8 without U+2028 and U+2029.
func plainUTF8(s []byte) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// cutBase64 reads a JSON string's contents up to and including its closing
// quote for the strict base64 decoder, which refuses every byte outside the
// alphabet and '=' except CR and LF: it skips those, so they must not pass
// here (raw in a JSON string they are not even valid JSON). Three SIMD scans
// are much faster than checking the alphabet byte by byte.
func cutBase64(b []byte) (s, rest []byte, ok bool) {
	end := bytes.IndexByte(b, '"')
	if end < 0 {
		return nil, nil, false
	}
	s = b[:end]
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return nil, nil, false
	}
	return s, b[end+1:], true
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

// canonReader walks a payload in its canonical form. It stops at the first
// byte that is not what the canonical form has there (ok becomes false and
// stays false); every method is then a no-op.
type canonReader struct {
	// src is the whole payload as one string: a decoded string without
	// escapes is a substring of it, so most fields cost no allocation.
	src string
	i   int
	ok  bool
}

// lit consumes the literal s.
func (r *canonReader) lit(s string) {
	if !r.ok {
		return
	}
	if !strings.HasPrefix(r.src[r.i:], s) {
		r.ok = false
		return
	}
	r.i += len(s)
}

// peek reports whether the literal s comes next.
func (r *canonReader) peek(s string) bool {
	return r.ok && strings.HasPrefix(r.src[r.i:], s)
}

// str reads a JSON string in the encoder's canonical form and returns its
// value as encoding/json would decode it.
func (r *canonReader) str() string {
	if !r.ok {
		return ""
	}
	s := r.src
	if r.i >= len(s) || s[r.i] != '"' {
		r.ok = false
		return ""
	}
	start := r.i + 1
	for j := start; j < len(s); {
		c := s[j]
		switch {
		case c == '"':
			r.i = j + 1
			return s[start:j]
		case c == '\\':
			return r.escapedStr(start, j)
		case c < 0x20:
			r.ok = false
			return ""
		case c < utf8.RuneSelf:
			j++
		default:
			size, ok := plainRune(s[j:])
			if !ok {
				r.ok = false
				return ""
			}
			j += size
		}
	}
	r.ok = false
	return ""
}

// plainRune reads one multi-byte rune that the encoder writes as itself.
func plainRune(s string) (size int, ok bool) {
	r, size := utf8.DecodeRuneInString(s)
	if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
		return 0, false
	}
	return size, true
}

// escapedStr continues str from s[j] == '\\', building the value in a new
// string. Only the escapes the encoder writes are accepted.
func (r *canonReader) escapedStr(start, j int) string {
	s := r.src
	var b strings.Builder
	// Sized for what is known, not for the rest of the payload: a list of
	// thousands of short escaped strings must not allocate the payload's
	// size for each of them.
	b.Grow(j - start + 32)
	b.WriteString(s[start:j])
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			r.i = j + 1
			return b.String()
		case c == '\\':
			if j+1 >= len(s) {
				r.ok = false
				return ""
			}
			switch s[j+1] {
			case '"', '\\':
				b.WriteByte(s[j+1])
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				v, ok := canonicalUEscape(s[j+2:])
				if !ok {
					r.ok = false
					return ""
				}
				b.WriteRune(v)
				j += 4
			default:
				r.ok = false
				return ""
			}
			j += 2
		case c < 0x20:
			r.ok = false
			return ""
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			j++
		default:
			size, ok := plainRune(s[j:])
			if !ok {
				r.ok = false
				return ""
			}
			b.WriteString(s[j : j+size])
			j += size
		}
	}
	r.ok = false
	return ""
}

// canonicalUEscape reads the four hex digits after `\u` if the encoder
// would write that escape: a control character without a short form, in
// lower-case hex, or U+2028 or U+2029.
func canonicalUEscape(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	switch s[:4] {
	case "2028":
		return '\u2028', true
	case "2029":
		return '\u2029', true
	}
	if s[0] != '0' || s[1] != '0' || (s[2] != '0' && s[2] != '1') {
		return 0, false
	}
	lo, ok := lowerHexDigit(s[3])
	if !ok {
		return 0, false
	}
	v := rune(s[2]-'0')<<4 | rune(lo)
	switch v {
	case '\b', '\t', '\n', '\f', '\r':
		return 0, false // written as \b, \t, \n, \f, \r
	}
	return v, true
}

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// optStr reads `,"name":"value"` if the member is present. An omitempty
// member is canonical only with a non-empty value.
func (r *canonReader) optStr(member string) string {
	if !r.peek(member) {
		return ""
	}
	r.lit(member)
	v := r.str()
	if v == "" {
		r.ok = false
	}
	return v
}

// strList reads a non-empty JSON array of strings. An empty array or null is
// left to the strict path (it decodes, but never validates).
func (r *canonReader) strList() []string {
	r.lit("[")
	var stack [16]string
	list := stack[:0]
	for r.ok {
		list = append(list, r.str())
		if r.peek(",") {
			r.i++
			continue
		}
		r.lit("]")
		break
	}
	if !r.ok {
		return nil
	}
	out := make([]string, len(list))
	copy(out, list)
	return out
}

// time reads occurred_at in the form the encoder writes it:
// YYYY-MM-DDTHH:MM:SS, a fraction of 1 to 9 digits without trailing zeros
// when there is one, and Z. It builds the value the way time's RFC 3339
// parser does (time.Date in UTC), so the two are identical.
func (r *canonReader) time() time.Time {
	if !r.ok {
		return time.Time{}
	}
	s := r.src[r.i:]
	end := strings.IndexByte(s[min(1, len(s)):], '"') + 1
	if len(s) == 0 || s[0] != '"' || end < 1 {
		r.ok = false
		return time.Time{}
	}
	t, ok := parseCanonicalTime(s[1:end])
	if !ok {
		r.ok = false
		return time.Time{}
	}
	r.i += end + 1
	return t
}

// parseCanonicalTime parses s if it is exactly what time.RFC3339Nano
// formatting of a UTC time gives.
func parseCanonicalTime(s string) (time.Time, bool) {
	const base = len("2006-01-02T15:04:05")
	if len(s) < base+1 || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	ok := true
	num := func(f string, lo, hi int) int {
		x := 0
		for i := 0; i < len(f); i++ {
			if f[i] < '0' || f[i] > '9' {
				ok = false
				return 0
			}
			x = x*10 + int(f[i]-'0')
		}
		if x < lo || x > hi {
			ok = false
		}
		return x
	}
	year := num(s[0:4], 0, 9999)
	month := num(s[5:7], 1, 12)
	if !ok {
		return time.Time{}, false
	}
	day := num(s[8:10], 1, daysIn(time.Month(month), year))
	hour := num(s[11:13], 0, 23)
	minute := num(s[14:16], 0, 59)
	sec := num(s[17:19], 0, 59)
	nsec := 0
	if frac := s[base : len(s)-1]; frac != "" {
		digits := frac[1:]
		if frac[0] != '.' || len(digits) < 1 || len(digits) > 9 || digits[len(digits)-1] == '0' {
			return time.Time{}, false
		}
		nsec = num(digits, 0, 999999999)
		for range 9 - len(digits) {
			nsec *= 10
		}
	}
	if !ok {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn is the number of days of month m in year y (proleptic Gregorian).
func daysIn(m time.Month, y int) int {
	if m == time.February {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 30 + int((m+m/8)%2)
}

// decodeDisclosureFast decodes payload if it is exactly in the canonical
// form. ok false means "not sure": run the strict decoder.
func decodeDisclosureFast(payload []byte) (d *Disclosure, ok bool) {
	r := &canonReader{src: string(payload), ok: true}
	d = &Disclosure{}
	r.lit(`{"schema":`)
	d.Schema = r.str()
	r.lit(`,"origin":`)
	d.Origin = r.str()
	r.lit(`,"id":`)
	d.ID = r.str()
	r.lit(`,"trace_id":`)
	d.TraceID = r.str()
	r.lit(`,"span_id":`)
	d.SpanID = r.str()
	r.lit(`,"processing_activity":`)
	d.ProcessingActivity = r.str()
	r.lit(`,"occurred_at":`)
	d.OccurredAt = r.time()
	r.lit(`,"discloser":`)
	d.Discloser = r.str()
	r.lit(`,"recipients":`)
	d.Recipients = r.strList()
	r.lit(`,"subject":{"id_type":`)
	d.Subject.IDType = IDType(r.str())
	r.lit(`,"key_id":`)
	d.Subject.KeyID = r.str()
	r.lit(`,"pseudonym":`)
	d.Subject.Pseudonym = r.str()
	d.Subject.VRFOutput = r.optStr(`,"vrf_output":`)
	r.lit(`},"subject_age_band":`)
	d.SubjectAgeBand = AgeBand(r.str())
	r.lit(`,"categories":`)
	d.Categories = r.strList()
	r.lit(`,"purpose":`)
	d.Purpose = r.str()
	r.lit(`,"legal_basis":{"ground":`)
	d.LegalBasis.Ground = r.str()
	d.LegalBasis.Exception = r.optStr(`,"exception":`)
	d.LegalBasis.Statute = r.optStr(`,"statute":`)
	r.lit(`}`)
	if r.peek(`,"consent":`) {
		// A present consent object is written in full, empty strings too
		// (only a nil *Consent is omitted).
		r.lit(`,"consent":{"reference":`)
		c := &Consent{Reference: r.str()}
		r.lit(`,"given_by":`)
		c.GivenBy = ConsentGiver(r.str())
		r.lit(`}`)
		d.Consent = c
	}
	r.lit(`,"justification":`)
	d.Justification = r.str()
	r.lit(`,"channel":`)
	d.Channel = r.str()
	r.lit(`,"actor":{"role":`)
	d.Actor.Role = r.str()
	r.lit(`,"staff_id":`)
	d.Actor.StaffID = r.str()
	r.lit(`}`)
	d.CaseRef = r.optStr(`,"case_ref":`)
	d.Corrects = r.optStr(`,"corrects":`)
	r.lit(`,"salt":`)
	d.Salt = r.str()
	r.lit(`}`)
	if !r.ok || r.i != len(r.src) {
		return nil, false
	}
	return d, true
}

// valid reports whether Validate would find no problem, without building
// any error or allocating. A false answer is not trusted: Validate then runs
// the full checks, which name every problem (and accept what they accept).
func (d *Disclosure) valid() bool {
	switch {
	case d.Schema == SchemaV1 && d.Subject.VRFOutput == "":
	case d.Schema == SchemaV2 && isLowerHex(d.Subject.VRFOutput, 128):
	default:
		return false
	}
	if !validText(d.Origin, true) || strings.ContainsAny(d.Origin, " \t\n+") ||
		!ValidEventID(d.ID) ||
		!isLowerHex(d.TraceID, 32) || allZero(d.TraceID) ||
		!isLowerHex(d.SpanID, 16) || allZero(d.SpanID) ||
		!validText(d.ProcessingActivity, true) ||
		d.OccurredAt.IsZero() || d.OccurredAt.Location() != time.UTC || d.OccurredAt.Year() < 2000 ||
		!ValidPartyID(d.Discloser) {
		return false
	}
	if len(d.Recipients) == 0 || len(d.Recipients) > 50 {
		return false
	}
	for i, p := range d.Recipients {
		if !ValidPartyID(p) || p == d.Discloser || repeats(d.Recipients, i) {
			return false
		}
	}
	switch d.Subject.IDType {
	case IDTypeBSN, IDTypeOnderwijsnummer:
	default:
		return false
	}
	if !isKeyName(d.Subject.KeyID) || !isLowerHex(d.Subject.Pseudonym, 64) || !validAgeBand(d.SubjectAgeBand) {
		return false
	}
	if len(d.Categories) == 0 || len(d.Categories) > 30 {
		return false
	}
	for i, c := range d.Categories {
		if !isVocabID(c) || repeats(d.Categories, i) {
			return false
		}
	}
	lb := d.LegalBasis
	if !isVocabID(d.Purpose) ||
		len(lb.Ground) != 1 || lb.Ground[0] < 'a' || lb.Ground[0] > 'f' ||
		(lb.Exception != "" && !isVocabID(lb.Exception)) ||
		(lb.Statute != "" && !isVocabID(lb.Statute)) {
		return false
	}
	if c := d.Consent; c != nil {
		if !validText(c.Reference, true) {
			return false
		}
		switch c.GivenBy {
		case ConsentParents, ConsentChildAndParents, ConsentYoungPerson:
		default:
			return false
		}
	}
	if !validText(d.Justification, true) || !validChannel(d.Channel) ||
		!validText(d.Actor.Role, true) || !validText(d.Actor.StaffID, true) ||
		!validText(d.CaseRef, false) {
		return false
	}
	if d.Corrects != "" && (!ValidEventID(d.Corrects) || d.Corrects == d.ID) {
		return false
	}
	return isCanonicalSalt(d.Salt)
}

// validText is Validate's rule for a text field, as a yes or no.
func validText(v string, required bool) bool {
	return !(required && strings.TrimSpace(v) == "") && len(v) <= maxTextLen && utf8.ValidString(v)
}

// repeats reports whether list[i] occurs earlier in list.
func repeats(list []string, i int) bool {
	for _, e := range list[:i] {
		if e == list[i] {
			return true
		}
	}
	return false
}

func validAgeBand(a AgeBand) bool {
	for _, b := range AgeBands {
		if a == b {
			return true
		}
	}
	return false
}

func validChannel(c string) bool {
	for _, ch := range Channels {
		if c == ch {
			return true
		}
	}
	return false
}

// isCanonicalSalt reports whether s is SaltSize bytes in strict padded
// base64 with nothing else in it: 22 characters of the alphabet whose last
// 4 bits are zero, then "==". (The strict decoder also skips CR and LF;
// such a salt is left to Validate's full check.)
func isCanonicalSalt(s string) bool {
	if len(s) != 24 || s[22] != '=' || s[23] != '=' {
		return false
	}
	for i := 0; i < 22; i++ {
		if !isBase64Char(s[i]) {
			return false
		}
	}
	// The last character carries 2 data bits and 4 padding bits, which
	// must be zero: its index in the alphabet is a multiple of 16, so it is
	// one of A, Q, g and w.
	switch s[21] {
	case 'A', 'Q', 'g', 'w':
		return true
	}
	return false
}

// isLowerHex reports whether s is n lower-case hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if _, ok := lowerHexDigit(s[i]); !ok {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// isIDForm checks the shape shared by party ids, vocabulary ids and key
// names: 1 to 63 bytes, a first byte for which first is true and further
// bytes for which rest is true.
func isIDForm(s string, first, rest func(byte) bool) bool {
	if len(s) == 0 || len(s) > 63 || !first(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest(s[i]) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func isAlnum(c byte) bool      { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

// isPartyID is partyIDRE: ^[a-z0-9][a-z0-9-]{0,62}$.
func isPartyID(s string) bool {
	return isIDForm(s, isLowerAlnum, func(c byte) bool { return isLowerAlnum(c) || c == '-' })
}

// isVocabID is vocabIDRE: ^[a-z0-9][a-z0-9.-]{0,62}$.
func isVocabID(s string) bool {
	return isIDForm(s, isLowerAlnum, func(c byte) bool { return isLowerAlnum(c) || c == '-' || c == '.' })
}

// isKeyName is keyIDRE: ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$.
func isKeyName(s string) bool {
	return isIDForm(s, isAlnum, func(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' })
}

// isUUIDv7 is ValidEventID without parsing: the canonical lower-case
// 8-4-4-4-12 form, version nibble 7, and an RFC 9562 variant (the first hex
// digit of the fourth group is 8, 9, a or b).
func isUUIDv7(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if _, ok := lowerHexDigit(s[i]); !ok {
				return false
			}
		}
	}
	if s[14] != '7' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b':
		return true
	}
	return false
}
