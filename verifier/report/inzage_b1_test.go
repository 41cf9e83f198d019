package report

// The parent's report is written at language level B1: no sentence a
// parent reads is longer than 20 words, and every legal or technical term
// it uses is explained in its word list ("Woordenlijst"). These tests
// render the report in every shape its template has (consent, findings,
// witnesses, a young person, a party's own desk, an empty answer, each
// withholding and erasure ground, an expired retention) and read the page
// as a parent does.

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// maxSentenceWords is B1's limit on a sentence, in words.
const maxSentenceWords = 20

var (
	// What a parent does not read as prose: the page's head (title, CSS),
	// commands and file names (code, pre) and keys, hashes and the log's
	// name (class "mono").
	reHead  = regexp.MustCompile(`(?s)<head>.*?</head>`)
	rePre   = regexp.MustCompile(`(?s)<pre>.*?</pre>`)
	reCode  = regexp.MustCompile(`(?s)<code>.*?</code>`)
	reMono  = regexp.MustCompile(`(?s)<dd class="mono">.*?</dd>`)
	reBlock = regexp.MustCompile(`(?i)</?(p|li|dt|dd|td|th|h1|h2|h3|footer|br|ul|dl|div|section|article|tr|table|main|title)\b[^>]*>`)
	reTag   = regexp.MustCompile(`<[^>]*>`)
)

// readableBlocks returns the text of page as a parent reads it, one
// string per block (paragraph, list item, table cell, term, line).
func readableBlocks(page string) []string {
	for _, re := range []*regexp.Regexp{reHead, rePre, reCode, reMono} {
		page = re.ReplaceAllString(page, " ")
	}
	page = reBlock.ReplaceAllString(page, "\n")
	page = html.UnescapeString(reTag.ReplaceAllString(page, ""))
	var blocks []string
	for _, line := range strings.Split(page, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			blocks = append(blocks, line)
		}
	}
	return blocks
}

// sentences splits a block into sentences: a word ending in '.', '!' or
// '?' (before any closing bracket or quote) ends one, except the
// abbreviation "art." of a legal reference.
func sentences(block string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range strings.Fields(block) {
		cur = append(cur, w)
		end := strings.TrimRight(w, `)"'”’`)
		if strings.EqualFold(end, "art.") || !strings.HasSuffix(end, ".") && !strings.HasSuffix(end, "!") && !strings.HasSuffix(end, "?") {
			continue
		}
		out = append(out, cur)
		cur = nil
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// wordCount counts the words of a sentence: tokens with a letter in them,
// so that the numbers of dates, leaves and articles do not count.
func wordCount(sentence []string) int {
	n := 0
	for _, w := range sentence {
		if strings.IndexFunc(w, unicode.IsLetter) >= 0 {
			n++
		}
	}
	return n
}

// longSentences lists every sentence of page longer than maxSentenceWords.
func longSentences(page string) []string {
	var long []string
	for _, b := range readableBlocks(page) {
		for _, s := range sentences(b) {
			if wordCount(s) > maxSentenceWords {
				long = append(long, strings.Join(s, " "))
			}
		}
	}
	return long
}

// jargon is every legal or technical term the report may use (in any
// form: plural, inflected, in a compound) and the word-list entry that
// must explain it. The list is kept here, apart from glossary.go, so that
// a term the page starts using without an entry fails.
var jargon = []struct {
	re    *regexp.Regexp
	entry string
}{
	{regexp.MustCompile(`\bAVG\b`), "AVG"},
	{regexp.MustCompile(`\bUAVG\b`), "UAVG"},
	{regexp.MustCompile(`\bBSN\b|(?i)burgerservicenummer`), "BSN"},
	{regexp.MustCompile(`\bFG\b|(?i)functionaris gegevensbescherming`), "FG"},
	{regexp.MustCompile(`\bMDO\b|(?i)multidisciplinair`), "MDO"},
	{regexp.MustCompile(`(?i)checkpoint`), "checkpoint"},
	{regexp.MustCompile(`(?i)root hash|controlegetal|\bhash`), "controlegetal (root hash)"},
	{regexp.MustCompile(`(?i)inclusiebewijs`), "inclusiebewijs"},
	{regexp.MustCompile(`(?i)pseudoniem`), "pseudoniem"},
	{regexp.MustCompile(`(?i)register`), "register"},
	{regexp.MustCompile(`(?i)\bconvenant(en|s)?\b`), "convenant"},
	{regexp.MustCompile(`(?i)convenantbeheer`), "convenantbeheer"},
	{regexp.MustCompile(`(?i)vingerafdruk`), "vingerafdruk"},
	{regexp.MustCompile(`(?i)sleutel`), "sleutel"},
	{regexp.MustCompile(`(?i)betrokkene`), "betrokkene"},
	{regexp.MustCompile(`(?i)bewaartermijn`), "bewaartermijn"},
	{regexp.MustCompile(`(?i)getuige`), "getuige"},
	{regexp.MustCompile(`Autoriteit Persoonsgegevens`), "Autoriteit Persoonsgegevens"},
	{regexp.MustCompile(`(?i)bijzondere? (persoons)?gegevens?\b`), "bijzonder persoonsgegeven"},
	{regexp.MustCompile(`(?i)strafrechtelijke? (persoons)?gegevens?\b`), "strafrechtelijk persoonsgegeven"},
	{regexp.MustCompile(`(?i)verstrekking`), "verstrekking"},
	{regexp.MustCompile(`(?i)vastlegging`), "vastlegging"},
	{regexp.MustCompile(`(?i)privacyloket`), "privacyloket"},
	{regexp.MustCompile(`(?i)inzageverzoek`), "inzageverzoek"},
	{regexp.MustCompile(`(?i)inzagerecht`), "inzagerecht"},
	{regexp.MustCompile(`(?i)handtekening|ondertekend|getekend`), "digitale handtekening"},
	{regexp.MustCompile(`(?i)\bbundel`), "bundel"},
	{regexp.MustCompile(`(?i)\bkenmerk`), "kenmerk"},
	{regexp.MustCompile(`(?i)\bregels?\b`), "regel"},
	{regexp.MustCompile(`(?i)\bgezag\b`), "gezag"},
	{regexp.MustCompile(`(?i)\bvoogd\b`), "voogd"},
	{regexp.MustCompile(`(?i)publieke taak`), "publieke taak"},
	{regexp.MustCompile(`(?i)onderwijsnummer`), "onderwijsnummer"},
}

var (
	reGlossary     = regexp.MustCompile(`(?s)<h2 id="woordenlijst">Woordenlijst</h2>\s*<dl class="glossary">(.*?)</dl>`)
	reGlossaryTerm = regexp.MustCompile(`<dt>(.*?)</dt>`)
)

// unexplainedTerms lists the jargon entries the page uses outside its
// word list and does not explain in it.
func unexplainedTerms(page string) []string {
	m := reGlossary.FindStringSubmatchIndex(page)
	if m == nil {
		return []string{"(the page has no Woordenlijst)"}
	}
	explained := map[string]bool{}
	for _, t := range reGlossaryTerm.FindAllStringSubmatch(page[m[2]:m[3]], -1) {
		explained[html.UnescapeString(t[1])] = true
	}
	text := strings.Join(readableBlocks(page[:m[0]]+page[m[1]:]), "\n")
	var missing []string
	for _, j := range jargon {
		if j.re.MatchString(text) && !explained[j.entry] {
			missing = append(missing, j.entry+" (used as "+j.re.FindString(text)+")")
		}
	}
	return missing
}

// TestB1Checks: the two checks find what they are for, so that a report
// that passes them does so on its merits.
func TestB1Checks(t *testing.T) {
	long := "<p>Dit is een zin met eenentwintig woorden die veel te lang is voor een ouder die snel wil lezen wat er staat hier.</p>"
	if got := longSentences(long); len(got) != 1 {
		t.Errorf("a sentence of 21 words: %d long sentences found, want 1", len(got))
	}
	ok := "<p>Dit zijn twintig woorden in een zin die net kort genoeg is voor een ouder die snel wil lezen hier.</p>" +
		"<p>Volgens AVG art. 9 lid 2 is dit kort. Een tweede zin.</p><pre>" + strings.Repeat("code ", 40) + "</pre>" +
		`<dd class="mono">` + strings.Repeat("sleutel ", 40) + "</dd><p>Regel 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26.</p>"
	if got := longSentences(ok); len(got) != 0 {
		t.Errorf("short sentences, code and keys: long sentences found: %q", got)
	}
	page := `<p>Het checkpoint van het register.</p><h2 id="woordenlijst">Woordenlijst</h2>` + "\n" +
		`<dl class="glossary"><dt>register</dt><dd>Een logboek.</dd></dl>`
	if got := unexplainedTerms(page); len(got) != 1 || !strings.HasPrefix(got[0], "checkpoint") {
		t.Errorf("a page using \"checkpoint\" without explaining it: unexplained %q, want checkpoint only", got)
	}
	if got := unexplainedTerms("<p>Het register.</p>"); len(got) != 1 {
		t.Errorf("a page without a word list: %q", got)
	}
}

// reportShapes renders the golden bundle in every shape the template has.
func reportShapes(t *testing.T) map[string]string {
	t.Helper()
	render := func(change func(vb *verifier.VerifiedBundle)) string {
		vb := goldenBundle(t)
		change(vb)
		var buf bytes.Buffer
		if err := WriteInzage(&buf, vb); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	shapes := map[string]string{
		"golden": render(func(*verifier.VerifiedBundle) {}),
		"consent, findings, corrections": render(func(vb *verifier.VerifiedBundle) {
			ds := vb.Disclosures
			ds[0].Findings = []events.Finding{{Rule: events.FindingRules()[0], Field: "categories[0]"}, {Rule: events.FindingRules()[1], Field: "recipients[0]"}}
			for _, r := range events.FindingRules() {
				ds[1].Findings = append(ds[1].Findings, events.Finding{Rule: r})
			}
			ds[1].Disclosure.Consent = &events.Consent{GivenBy: events.ConsentChildAndParents, Reference: "TOESTEMMING-7"}
			ds[1].Disclosure.Corrects = ds[0].Disclosure.ID
			ds[2].Disclosure.Corrects = "elders"
			ds[2].Disclosure.LegalBasis.Ground = "a"
		}),
		"witnesses, young person, a party's own desk": render(func(vb *verifier.VerifiedBundle) {
			at := vb.Checkpoint.CosignedAt
			vb.Witnesses = &verifier.WitnessCheck{Cosigned: []verifier.WitnessCosignature{{Witness: "fg-a.example", Time: at}, {Witness: "fg-b.example", Time: at}}, LatestAt: at}
			for _, vd := range vb.Disclosures {
				vd.WitnessedBy = at
			}
			vb.Answer = &verifier.VerifiedAnswer{Index: 40, IntegratedAt: at, YoungPerson: &verifier.AnswerYoungPerson{
				Decision: verifier.YoungPersonConsented, ConsentReference: "DOSSIER-1", Leaves: []uint64{3, 5, 8}}}
			vb.Bundle.Scope = verifier.BundleScope{Parties: vb.Bundle.Scope.Parties[:1]}
		}),
		"complete, later entries": render(func(vb *verifier.VerifiedBundle) {
			vb.Answer = &verifier.VerifiedAnswer{Index: 40, IntegratedAt: vb.Checkpoint.CosignedAt}
			vb.Completeness = &verifier.Completeness{HeadIndex: 41, TreeSize: 39, Parties: vb.Bundle.Scope.Parties,
				IDType: events.IDTypeBSN, KeyIDs: []string{"k1"}, Later: []uint64{39}, ErasuresFrom: 12}
		}),
		"no disclosures, an old bundle": render(func(vb *verifier.VerifiedBundle) {
			vb.Disclosures, vb.Answer = nil, nil
		}),
		"retention over": render(func(vb *verifier.VerifiedBundle) {
			vb.Bundle.CreatedAt = vb.Bundle.CreatedAt.Add(100 * 365 * 24 * time.Hour)
		}),
	}
	for _, g := range verifier.WithholdGrounds() {
		shapes["withheld "+g] = render(func(vb *verifier.VerifiedBundle) { vb.Withheld[0].Ground = g })
	}
	for _, g := range verifier.ErasureGrounds() {
		shapes["erased "+g] = render(func(vb *verifier.VerifiedBundle) { vb.Erased[0].RuleID = verifier.ErasureRulePrefix + g })
	}
	return shapes
}

// TestInzageIsB1: in every shape of the report, no sentence a parent reads
// is longer than 20 words, and every term of the jargon list the page uses
// is explained in its word list.
func TestInzageIsB1(t *testing.T) {
	for name, page := range reportShapes(t) {
		for _, s := range longSentences(page) {
			t.Errorf("%s: a sentence of more than %d words: %q", name, maxSentenceWords, s)
		}
		for _, term := range unexplainedTerms(page) {
			t.Errorf("%s: %s is not explained in the Woordenlijst", name, term)
		}
	}
}

// TestInzageSaysWhatIsComplete: a v3 bundle's report says for which part
// of the register, which organisations and which identifier the answer is
// proven complete, and what was not searched; a report of an older bundle
// says "Volledigheid niet bewezen".
func TestInzageSaysWhatIsComplete(t *testing.T) {
	shapes := reportShapes(t)
	complete := shapes["complete, later entries"]
	for _, want := range []string{"Het bewijs geldt voor alle regels vóór regel 39", "Gezocht is op het BSN van uw kind",
		"Vastleggingen op het onderwijsnummer van uw kind. Daarop is niet gezocht", "kwamen er nog 1 vastleggingen", "Gemeente Amersfoort</li>", "vóór regel 12 al waren verwijderd"} {
		if !strings.Contains(complete, want) {
			t.Errorf("the report of a complete answer does not say %q", want)
		}
	}
	if strings.Contains(complete, "Volledigheid niet bewezen") {
		t.Error("the report of a complete answer says it is not proven")
	}
	for _, name := range []string{"golden", "no disclosures, an old bundle"} {
		if !strings.Contains(shapes[name], "Volledigheid niet bewezen") || strings.Contains(shapes[name], "Het bewijs geldt voor alle regels") {
			t.Errorf("%s: the report of a bundle without index proofs does not say \"Volledigheid niet bewezen\"", name)
		}
	}
}
