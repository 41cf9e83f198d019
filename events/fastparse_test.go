package events_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// These tests hold the fast path of Open (fastparse.go) to the strict path it
// stands in for: on every input both give the same envelope, the same
// disclosure, and the same error with the same reason code. They also check
// that the fast path is really taken for canonical input, so a fast path that
// always declined could not pass for a correct one.

// errText is an error's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reasonOf(err error) events.Reason {
	var re *events.RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// agree checks every step of Open on b both ways and fails the test where
// the two differ. It reports whether Open accepted b.
func agree(t testing.TB, b []byte, origin string, keys events.KeyResolver) bool {
	t.Helper()
	d1, e1, err1 := events.Open(b, origin, keys)
	d2, e2, err2 := events.OpenReference(b, origin, keys)
	if errText(err1) != errText(err2) || reasonOf(err1) != reasonOf(err2) {
		t.Fatalf("Open and the reference disagree on %q:\nfast:      %v\nreference: %v", b, err1, err2)
	}
	if !reflect.DeepEqual(d1, d2) || !reflect.DeepEqual(e1, e2) {
		t.Fatalf("Open and the reference return different values for %q:\nfast:      %+v\nreference: %+v", b, d1, d2)
	}

	p1, perr1 := events.ParseEnvelope(b)
	p2, perr2 := events.ParseEnvelopeStrict(b)
	if errText(perr1) != errText(perr2) || !reflect.DeepEqual(p1, p2) {
		t.Fatalf("ParseEnvelope disagrees with the strict parser on %q: %v / %v", b, perr1, perr2)
	}
	if fast, ok := events.ParseEnvelopeFast(b); ok && (perr2 != nil || !reflect.DeepEqual(fast, p2)) {
		t.Fatalf("the fast envelope parser accepts %q, the strict one says %v", b, perr2)
	}
	if perr2 == nil {
		agreeOnPayload(t, p2.Payload)
	}
	return err1 == nil
}

// agreeOnPayload checks DecodeDisclosure and Validate both ways on payload.
func agreeOnPayload(t testing.TB, payload []byte) {
	t.Helper()
	d1, err1 := events.DecodeDisclosure(payload)
	d2, err2 := events.DecodeDisclosureStrict(payload)
	if errText(err1) != errText(err2) || errors.Is(err1, events.ErrNonCanonical) != errors.Is(err2, events.ErrNonCanonical) {
		t.Fatalf("DecodeDisclosure disagrees with the strict decoder on %q:\nfast:      %v\nreference: %v", payload, err1, err2)
	}
	if !reflect.DeepEqual(d1, d2) {
		t.Fatalf("DecodeDisclosure returns another disclosure than the strict decoder for %q:\nfast:      %+v\nreference: %+v", payload, d1, d2)
	}
	if fast, ok := events.DecodeDisclosureFast(payload); ok && (err2 != nil || !reflect.DeepEqual(fast, d2)) {
		t.Fatalf("the fast decoder accepts %q, the strict one says %v", payload, err2)
	}
	if err2 == nil {
		agreeOnValidate(t, d2)
	}
}

// agreeOnValidate checks Validate's fast yes/no against its full check.
func agreeOnValidate(t testing.TB, d *events.Disclosure) {
	t.Helper()
	full := events.ValidateAll(d)
	fast := events.ValidFast(d)
	// The one case where the fast check may say no to a valid disclosure:
	// the strict base64 decoder skips CR and LF in a salt. A "no" is never
	// trusted, so that costs only time; a "yes" must always be right.
	if !fast && full == nil && strings.ContainsAny(d.Salt, "\r\n") {
		fast = true
	}
	if fast != (full == nil) {
		t.Fatalf("the fast validity check says %v, the full check says %v, for %+v", fast, full, d)
	}
	if got := d.Validate(); errText(got) != errText(full) {
		t.Fatalf("Validate says %v, the full check %v", got, full)
	}
}

// mustBeFast fails unless the fast path alone accepts the canonical envelope
// b and its payload.
func mustBeFast(t testing.TB, b []byte) {
	t.Helper()
	env, ok := events.ParseEnvelopeFast(b)
	if !ok {
		t.Fatalf("the fast parser declines a canonical envelope: %q", b)
	}
	if _, ok := events.DecodeDisclosureFast(env.Payload); !ok {
		t.Fatalf("the fast decoder declines a canonical payload: %q", env.Payload)
	}
}

func TestFastPathGoldenVectors(t *testing.T) {
	keys := goldenResolver(t)
	for _, name := range vectorNames(t) {
		t.Run(name, func(t *testing.T) {
			v := computeVector(t, name)
			mustBeFast(t, v.Envelope)
			if !agree(t, v.Envelope, goldenOrigin, keys) {
				t.Fatal("Open rejects the golden vector")
			}
			if !events.ValidFast(v.Disclosure) {
				t.Error("the fast validity check refuses the golden disclosure")
			}
		})
	}
}

func TestFastPathRejectCases(t *testing.T) {
	keys := goldenResolver(t)
	for _, c := range rejectCases(t) {
		t.Run(c.name, func(t *testing.T) {
			origin, r := goldenOrigin, keys
			if c.origin != "" {
				origin = c.origin
			}
			if c.keys != nil {
				r = c.keys
			}
			if agree(t, c.input, origin, r) {
				t.Fatal("both paths accept a bad input")
			}
		})
	}
}

// trickyTexts are free-text values whose canonical JSON uses every escape
// the encoder writes and every character it leaves alone.
var trickyTexts = []string{
	"plain", "ouders & school <mdo>", `quote " and backslash \ and slash /`,
	"tab\tnewline\ncr\rbackspace\bformfeed\f", "nul \x00 unit separator \x1f escape \x1b del \x7f",
	"line separator \u2028 paragraph separator \u2029", "é ë ß 日本 🙂", "replacement \ufffd char",
	"Jeugdwet art. 7.3.11\n\n-- MDO", strings.Repeat("x", 2000), "  leading and trailing  ",
}

// TestFastPathCanonicalVariants signs disclosures whose fields exercise the
// canonical form's escapes, optional members and time forms; the fast path
// must take every one of them and agree with the strict path.
func TestFastPathCanonicalVariants(t *testing.T) {
	v := computeVector(t, "full")
	keys := goldenResolver(t)
	var edits []func(d *events.Disclosure)
	for _, s := range trickyTexts {
		edits = append(edits,
			func(d *events.Disclosure) { d.Justification = s },
			func(d *events.Disclosure) { d.CaseRef = s },
			func(d *events.Disclosure) { d.Actor.StaffID = s },
			func(d *events.Disclosure) { d.Consent.Reference = s },
			func(d *events.Disclosure) { d.ProcessingActivity = s },
		)
	}
	for _, ns := range []int{0, 1, 10, 100, 120000001, 999999999, 123456789, 100000000, 5} {
		edits = append(edits, func(d *events.Disclosure) {
			d.OccurredAt = time.Date(2025, 3, 18, 15, 4, 5, ns, time.UTC)
		})
	}
	for _, at := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 2, 28, 0, 0, 0, 0, time.UTC),
	} {
		edits = append(edits, func(d *events.Disclosure) { d.OccurredAt = at })
	}
	edits = append(edits,
		func(d *events.Disclosure) { d.Consent = nil },
		func(d *events.Disclosure) { d.Consent = &events.Consent{} },
		func(d *events.Disclosure) { d.CaseRef, d.Corrects = "", "" },
		func(d *events.Disclosure) { d.LegalBasis.Exception, d.LegalBasis.Statute = "", "" },
		func(d *events.Disclosure) { d.LegalBasis.Exception = "" },
		func(d *events.Disclosure) { d.LegalBasis.Statute = "" },
		func(d *events.Disclosure) { d.Recipients = append(d.Recipients, "a", "b-c", "a") },
		func(d *events.Disclosure) { d.Categories = append(d.Categories, strings.Repeat("c", 64)) },
		func(d *events.Disclosure) {
			for i := range 60 {
				d.Recipients = append(d.Recipients, "partij-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
			}
		},
		func(d *events.Disclosure) { d.Origin = "another.example/ledger" },
		func(d *events.Disclosure) { d.Origin = "bad origin+" },
		func(d *events.Disclosure) { d.ID = strings.ToUpper(d.ID) },
		func(d *events.Disclosure) { d.Corrects = d.ID },
		func(d *events.Disclosure) { d.Salt = "AAAA\nAAAAAAAAAAAAAAAAAA==" },
		func(d *events.Disclosure) { d.Salt = "AAAAAAAAAAAAAAAAAAAAAB==" },
		func(d *events.Disclosure) { d.Subject.IDType = "paspoort" },
		func(d *events.Disclosure) { d.Channel = "fax" },
		func(d *events.Disclosure) { d.SubjectAgeBand = "" },
		func(d *events.Disclosure) { d.Justification = " \t\n\u00a0\u2028" },
		func(d *events.Disclosure) { d.Actor.Role = "bad \xff utf-8" },
	)
	for i, edit := range edits {
		d := *v.Disclosure
		d.Recipients = slices.Clone(d.Recipients)
		d.Categories = slices.Clone(d.Categories)
		c := *d.Consent
		d.Consent = &c
		edit(&d)
		payload, err := d.MarshalCanonical()
		if err != nil {
			t.Fatal(err)
		}
		env := events.SignEnvelope(events.PayloadType, payload, v.Key.Private)
		agree(t, env, goldenOrigin, keys)
		if !bytes.Contains(payload, []byte("\\ufffd")) {
			// Invalid UTF-8 is written as \ufffd and cannot decode to
			// itself; every other canonical payload takes the fast path.
			mustBeFast(t, env)
		}
		if reflect.DeepEqual(&d, v.Disclosure) {
			t.Errorf("edit %d changed nothing", i)
		}
	}
}

// nonCanonicalPayloads are small edits of a canonical payload that the
// encoder would never write; the fast path must leave them all to the strict
// path (which rejects or, rarely, accepts them: either way both agree).
var payloadEdits = [][2]string{
	{"Aanvraag", `\u0041anvraag`}, {"Aanvraag", `Aanvraag\/`}, {`"schema"`, `"Schema"`},
	{`"schema"`, `"sch\u0065ma"`}, {"Aanvraag", "\\u00e9"}, {"Aanvraag", `\u000a`},
	{"Aanvraag", `\u000A`}, {"Aanvraag", `\u001F`}, {"Aanvraag", `\u001f`}, {"Aanvraag", `\ufffd`},
	{"Aanvraag", "\xff"}, {"Aanvraag", "\xe2\x80\xa8"}, {"Aanvraag", `\u2028`}, {"Aanvraag", `\U2028`},
	{"Aanvraag", "\x01"}, {"Aanvraag", `\x`}, {"Aanvraag", `\`}, {"Aanvraag", `\u00`},
	{"Z\"", ".0Z\""}, {"Z\"", ".10Z\""}, {"Z\"", ".1Z\""}, {"Z\"", ".1234567891Z\""}, {"Z\"", "z\""},
	{"Z\"", "+00:00\""}, {"T09", "t09"}, {"T09", " 09"}, {"2025-03-14", "2025-02-29"},
	{"2025-03-14", "2024-02-29"}, {"2025-03-14", "2025-13-14"}, {"2025-03-14", "2025-04-31"},
	{"T09:26:53", "T24:00:00"}, {"T09:26:53", "T23:59:60"}, {"T09:26:53", "T9:26:53"}, {"2025-03-14", "+025-03-14"},
	{`"recipients":[`, `"recipients":[],"x":[`}, {`"recipients":["gemeente-amersfoort"]`, `"recipients":[]`},
	{`"recipients":["gemeente-amersfoort"]`, `"recipients":null`}, {`"recipients":["gemeente-amersfoort"]`, `"recipients":["gemeente-amersfoort",]`},
	{`"recipients":["gemeente-amersfoort"]`, `"recipients":["gemeente-amersfoort","gemeente-amersfoort"]`},
	{`,"salt":`, `,"case_ref":"","salt":`}, {`,"salt":`, `,"corrects":"","salt":`}, {`,"salt":`, `,"consent":null,"salt":`},
	{`,"justification":`, `,"consent":{"reference":"","given_by":""},"justification":`},
	{`,"justification":`, `,"consent":{"given_by":"parents","reference":"x"},"justification":`},
	{`"ground":"e"`, `"ground":"e","exception":""`}, {`"ground":"e"`, `"ground":"e","exception":"avg-9.2.g"`},
	{`"statute":"wpo-18a"`, `"statute":""`}, {`"statute":"wpo-18a"`, `"statute":"wpo-18a","exception":"avg-9.2.g"`},
	{`"statute":"wpo-18a"}`, `"statute":"wpo-18a"},"consent":{"reference":"r","given_by":"parents"}`},
	{`}`, `} `}, {`":"`, `": "`},
	{`"occurred_at":"`, `"occurred_at":null,"x":"`}, {`"occurred_at":"2025-03-14T09:26:53Z"`, `"occurred_at":null`},
	{`"schema":"spoor.disclosure/v1"`, `"schema":"spoor.disclosure/v1","schema":"spoor.disclosure/v1"`},
}

func TestFastPathNonCanonicalPayloads(t *testing.T) {
	v := computeVector(t, "basic")
	keys := goldenResolver(t)
	for _, e := range payloadEdits {
		if !bytes.Contains(v.Payload, []byte(e[0])) {
			t.Fatalf("basic payload has no %q", e[0])
		}
		for _, p := range [][]byte{
			bytes.Replace(v.Payload, []byte(e[0]), []byte(e[1]), 1),
			bytes.ReplaceAll(v.Payload, []byte(e[0]), []byte(e[1])),
		} {
			agree(t, events.SignEnvelope(events.PayloadType, p, v.Key.Private), goldenOrigin, keys)
		}
	}
	// A trailing newline, trailing data, and the payload cut short anywhere.
	agreeOnPayload(t, append(slices.Clone(v.Payload), '\n'))
	agreeOnPayload(t, append(slices.Clone(v.Payload), '}'))
	for i := range v.Payload {
		agreeOnPayload(t, v.Payload[:i])
	}
}

func TestFastPathNonCanonicalEnvelopes(t *testing.T) {
	v := computeVector(t, "basic")
	keys := goldenResolver(t)
	env := string(v.Envelope)
	for _, e := range [][2]string{
		{`"payloadType":"`, `"PayloadType":"`}, {`"keyid":"`, `"keyid":"\u0041`}, {`"keyid":"`, `"keyid":"é`},
		{`"keyid":"`, "\"keyid\":\"\xff"}, {`"keyid":"`, "\"keyid\":\"\xe2\x80\xa9"}, {`"keyid":"`, "\"keyid\":\"\t"},
		{`"sig":"`, `"sig":"A`}, {`"sig":"`, "\"sig\":\"\n"}, {`"sig":"`, "\"sig\":\"\r"}, {`"payload":"`, "\"payload\":\"\r\n"},
		{`"payload":"`, `"payload":"\/`}, {`==`, `=`}, {`"}]}`, `"}]} `}, {`"}]}`, `"}],"x":1}`}, {`"}]}`, `"}]`},
		{events.PayloadType, "application/vnd.in-toto+json"}, {events.PayloadType, "application/ë+json"},
		{events.PayloadType, ""}, {`"payload":"`, `"payload":"=`},
	} {
		if !strings.Contains(env, e[0]) {
			t.Fatalf("basic envelope has no %q", e[0])
		}
		agree(t, []byte(strings.Replace(env, e[0], e[1], 1)), goldenOrigin, keys)
	}
	for i := range len(env) {
		agree(t, []byte(env[:i]), goldenOrigin, keys)
	}
	// The empty payload is canonical base64 and must agree too.
	agree(t, events.SignEnvelope(events.PayloadType, nil, v.Key.Private), goldenOrigin, keys)
}

// mutationBits are what random mutations insert: JSON structure, escapes,
// bytes the encoder escapes or must not, and pieces of times.
var mutationBits = []string{
	`"`, `\`, `\\`, `\"`, `\n`, `\u0000`, `\u001f`, `\u0041`, `\u2028`, `\ufffd`, `\/`, "\n", "\x00", "\x7f",
	"\xff", "\xc3", "é", "\u2028", ",", ":", "{", "}", "[", "]", "null", `""`, "0", "9", ".", ".5", "Z", "z",
	"+00:00", "-", " ", "=", "==", "A", "a", "/", "+", `,"x":"y"`,
}

// mutate applies one to three random edits to b.
func mutate(rng *rand.Rand, b []byte) []byte {
	out := slices.Clone(b)
	for range 1 + rng.IntN(3) {
		if len(out) == 0 {
			out = append(out, mutationBits[rng.IntN(len(mutationBits))]...)
			continue
		}
		i := rng.IntN(len(out))
		switch rng.IntN(5) {
		case 0: // insert
			out = slices.Insert(out, i, []byte(mutationBits[rng.IntN(len(mutationBits))])...)
		case 1: // replace one byte
			out[i] = mutationBits[rng.IntN(len(mutationBits))][0]
		case 2: // delete a short range
			out = slices.Delete(out, i, min(len(out), i+1+rng.IntN(4)))
		case 3: // duplicate a short range
			j := min(len(out), i+1+rng.IntN(24))
			out = slices.Insert(out, j, slices.Clone(out[i:j])...)
		case 4: // flip the case of a letter, or a bit of anything else
			out[i] ^= 0x20
		}
	}
	return out
}

// TestFastPathMutations is a fixed-seed run of what FuzzOpenDifferential
// does, so every `go test` compares the paths on a few thousand near-misses.
func TestFastPathMutations(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 200
	}
	keys := goldenResolver(t)
	rng := rand.New(rand.NewPCG(7, 11))
	var vectors []*goldenVector
	for _, name := range vectorNames(t) {
		vectors = append(vectors, computeVector(t, name))
	}
	accepted := 0
	for i := range n {
		v := vectors[i%len(vectors)]
		if i%2 == 0 {
			p := mutate(rng, v.Payload)
			if agree(t, events.SignEnvelope(events.PayloadType, p, v.Key.Private), goldenOrigin, keys) {
				accepted++
			}
		} else {
			agree(t, mutate(rng, v.Envelope), goldenOrigin, keys)
		}
	}
	// Some mutations keep the payload canonical and valid (a letter in the
	// justification): the fast path must have accepted those.
	t.Logf("%d of %d mutated inputs were accepted by both paths", accepted, n)
	if accepted == 0 {
		t.Error("no mutation was accepted: the comparison never reached a success")
	}
}

// FuzzOpenDifferential mutates valid envelopes and payloads and checks that
// Open and its strict reference agree exactly. With resign set, b is a
// payload that is signed with the vector's key before opening, so the
// fuzzer explores the payload parser and validation past the signature.
func FuzzOpenDifferential(f *testing.F) {
	vectors := map[string]*goldenVector{}
	for _, name := range vectorNames(f) {
		v := computeVector(f, name)
		vectors[name] = v
		f.Add(v.Envelope, false)
		f.Add(v.Payload, true)
	}
	for _, c := range rejectCases(f) {
		f.Add(c.input, false)
	}
	for _, e := range payloadEdits {
		f.Add(bytes.Replace(vectors["basic"].Payload, []byte(e[0]), []byte(e[1]), 1), true)
	}
	keys := goldenResolver(f)
	signer := vectors["full"].Key
	f.Fuzz(func(t *testing.T, b []byte, resign bool) {
		if resign {
			b = events.SignEnvelope(events.PayloadType, b, signer.Private)
		}
		agree(t, b, goldenOrigin, keys)
	})
}

// FuzzIDChecks compares each hand-written id check with the regular
// expression (or the uuid parse) it replaces.
func FuzzIDChecks(f *testing.F) {
	for _, s := range []string{
		"", "a", "-a", "a-", "gemeente-amersfoort", "A", "a.b", "a_b", "jeugdwet-7.3.11", strings.Repeat("a", 63),
		strings.Repeat("a", 64), "é", "a\n", "0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0196A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
		"0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b", "0196a1b2-c3d4-7e5f-ca9b-0c1d2e3f4a5b", "{0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}",
		"urn:uuid:0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0196a1b2c3d47e5f8a9b0c1d2e3f4a5b", strings.Repeat("0", 32),
		strings.Repeat("f", 64), strings.Repeat("F", 16), "c", "g", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAB==",
		"AAAAAAAAAAAAAAAAAAAAAQ==", "+/+/+/+/+/+/+/+/+/+/+w==", "AAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAA=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, got := range events.IDChecks(s) {
			if got[0] != got[1] {
				t.Errorf("%s(%q): hand-written check says %v, the reference %v", name, s, got[0], got[1])
			}
		}
	})
}

// TestParseCanonicalTime compares the fast time parser with formatting: it
// accepts a string exactly when time.Parse does and formats it back
// unchanged, and then returns the same instant.
func TestParseCanonicalTime(t *testing.T) {
	for _, s := range []string{
		"2025-03-14T09:26:53Z", "2025-03-14T09:26:53.1Z", "2025-03-14T09:26:53.10Z", "2025-03-14T09:26:53.000000001Z",
		"2025-03-14T09:26:53.999999999Z", "2025-03-14T09:26:53.0000000001Z", "2025-03-14T09:26:53.Z",
		"2024-02-29T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2025-04-31T00:00:00Z", "2025-00-01T00:00:00Z",
		"2025-01-00T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T23:60:00Z", "2025-01-01T23:59:60Z",
		"2025-01-01t00:00:00Z", "2025-01-01T00:00:00z", "2025-01-01T00:00:00+00:00", "2025-01-01 00:00:00Z",
		"2025-1-01T00:00:00Z", "+025-01-01T00:00:00Z", "2025-01-01T00:00:00", "", "Z", "2025-01-01T00:00:0aZ",
		"2025-01-01T00:00:00,5Z", "2025-01-01T00:00:00.-5Z", "2025-01-01T00:00:00.+5Z",
	} {
		fast, ok := events.ParseCanonicalTime(s)
		ref, err := time.Parse(time.RFC3339, s)
		refOK := err == nil && ref.Format(time.RFC3339Nano) == s
		if ok != refOK {
			t.Errorf("%q: fast parser says %v, time.Parse and Format say %v (%v)", s, ok, refOK, err)
			continue
		}
		if ok && !reflect.DeepEqual(fast, ref) {
			t.Errorf("%q: fast parser gives %#v, time.Parse %#v", s, fast, ref)
		}
	}
}

// TestVerifyChecksKeyID covers Verify's allocation-free fingerprint compare
// and its pooled PAE: the right key passes, any other keyid spelling or a
// changed payload fails, over and over with the same buffers.
func TestVerifyChecksKeyID(t *testing.T) {
	v := computeVector(t, "full")
	pub := v.Key.Public()
	for range 3 {
		env, err := events.ParseEnvelope(v.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Verify(pub); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		for _, kid := range []string{"", strings.ToUpper(env.KeyID), env.KeyID[:63], env.KeyID + "0", events.KeyID(make([]byte, 32))} {
			bad := *env
			bad.KeyID = kid
			if err := bad.Verify(pub); reasonOf(err) != events.ReasonBadSignature || !strings.Contains(err.Error(), "keyid") {
				t.Errorf("Verify with keyid %q: %v", kid, err)
			}
		}
		changed := *env
		changed.Payload = bytes.Replace(env.Payload, []byte("12-15"), []byte("16-plus"), 1)
		if err := changed.Verify(pub); reasonOf(err) != events.ReasonBadSignature {
			t.Errorf("Verify of a changed payload: %v", err)
		}
	}
}

// TestValidateNamesFirstOccurrence pins the messages for repeated list
// entries, which name the first occurrence (found with a map, so an
// oversized list costs linear time).
func TestValidateNamesFirstOccurrence(t *testing.T) {
	d := *computeVector(t, "basic").Disclosure
	d.Recipients = []string{"a", "b", "a", "c", "b", "a"}
	d.Categories = []string{"x", "x", "y", "y", "x"}
	err := d.Validate()
	for _, want := range []string{
		"recipients[2]: repeats recipients[0]", "recipients[4]: repeats recipients[1]", "recipients[5]: repeats recipients[0]",
		"categories[1]: repeats categories[0]", "categories[3]: repeats categories[2]", "categories[4]: repeats categories[0]",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to contain %q", err, want)
		}
	}
	if got := strings.Count(err.Error(), "repeats"); got != 6 {
		t.Errorf("%d repeats reported, want 6: %v", got, err)
	}
}

// TestOpenConcurrently opens the golden vectors from several goroutines at
// once, so the race detector sees Verify's shared PAE buffer pool in use.
func TestOpenConcurrently(t *testing.T) {
	keys := goldenResolver(t)
	var envs [][]byte
	for _, name := range vectorNames(t) {
		envs = append(envs, computeVector(t, name).Envelope)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for i := range 20 {
				if _, _, err := events.Open(envs[(g+i)%len(envs)], goldenOrigin, keys); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
