package events

// A discloser's free text (justification, case_ref, consent reference,
// staff id) is written by a person, who may type a BSN into it. Spoor never
// stores a BSN on purpose, but it cannot refuse such an event: about 1 in
// 11 random nine-digit numbers pass the elfproef, so a case number or a
// phone number would be refused as often. It records a finding instead
// (RulePossibleBSN), so that the FG sees it, and every rendering masks nine
// digits in free text (verifier.MaskFreeText). The signed envelope keeps
// the number: it cannot be changed without breaking the signature.

// NineDigitSpan finds the first number in s at or after from that has
// exactly nine digits: digits with at most one '.', ' ' or '-' between two
// of them (123456782, 1234.56.782, 12 34 56 782), not part of a longer run
// of digits. It returns the span [start, end) and whether one was found.
// It does not allocate; it is what both the finding and the masking use.
func NineDigitSpan(s string, from int) (start, end int, ok bool) {
	i := from
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		start, digits := i, 0
		end = i
		for i < len(s) {
			if isDigit(s[i]) {
				digits++
				i++
				end = i
				continue
			}
			if isNumberSeparator(s[i]) && i+1 < len(s) && isDigit(s[i+1]) {
				i++
				continue
			}
			break
		}
		if digits == 9 {
			return start, end, true
		}
	}
	return 0, 0, false
}

// PossibleBSN reports whether s holds a nine-digit number (NineDigitSpan)
// that passes the elfproef, as a BSN does.
func PossibleBSN(s string) bool {
	for from := 0; ; {
		start, end, ok := NineDigitSpan(s, from)
		if !ok {
			return false
		}
		if passesElfproef(s[start:end]) {
			return true
		}
		from = end
	}
}

// passesElfproef checks the nine digits in span (separators skipped): 9*d1 +
// 8*d2 + ... + 2*d8 - 1*d9 is divisible by 11, and the number is not 0.
func passesElfproef(span string) bool {
	sum, w, nonzero := 0, 9, false
	for i := 0; i < len(span); i++ {
		c := span[i]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		nonzero = nonzero || d != 0
		if w == 1 {
			sum -= d
		} else {
			sum += w * d
		}
		w--
	}
	return nonzero && sum%11 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNumberSeparator(c byte) bool { return c == '.' || c == ' ' || c == '-' }

// PossibleBSNFields names the free-text fields of d (justification,
// case_ref, actor.staff_id, consent.reference) that hold a possible BSN
// (PossibleBSN), in that order; nil when none does.
func PossibleBSNFields(d *Disclosure) []string {
	var out []string
	if PossibleBSN(d.Justification) {
		out = append(out, "justification")
	}
	if PossibleBSN(d.CaseRef) {
		out = append(out, "case_ref")
	}
	if PossibleBSN(d.Actor.StaffID) {
		out = append(out, "actor.staff_id")
	}
	if d.Consent != nil && PossibleBSN(d.Consent.Reference) {
		out = append(out, "consent.reference")
	}
	return out
}

// checkPossibleBSN adds a RulePossibleBSN finding for each free-text field
// of d that holds a possible BSN. The message names the field, never the
// number.
func checkPossibleBSN(d *Disclosure, add func(rule, field, format string, args ...any)) {
	for _, f := range PossibleBSNFields(d) {
		add(RulePossibleBSN, f, "%s holds a nine-digit number that passes the elfproef (possibly a BSN); the number is not repeated here", f)
	}
}
