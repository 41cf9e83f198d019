package events_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spoor-ledger/spoor/events"
)

// sealedBasic returns a fresh copy of the basic golden disclosure, sealed and
// valid, for tests to edit.
func sealedBasic(tb testing.TB) (*events.Disclosure, *events.PartyKey) {
	tb.Helper()
	v := computeVector(tb, "basic")
	d, err := events.DecodeDisclosureJSON(v.Input.Disclosure)
	if err != nil {
		tb.Fatal(err)
	}
	events.Seal(d, v.Key)
	return d, v.Key
}

func validationFields(err error) []string {
	var ves events.ValidationErrors
	if !errors.As(err, &ves) {
		return nil
	}
	fields := make([]string, len(ves))
	for i, ve := range ves {
		fields[i] = ve.Field
	}
	return fields
}

// TestValidateReportsEveryProblem: one call names every broken field, in
// field order, and errors.As finds both the list and each entry.
func TestValidateReportsEveryProblem(t *testing.T) {
	d, _ := sealedBasic(t)
	d.Schema = "spoor.disclosure/v0"
	d.ID = "01958FA4-3C2E-7A31-9B4D-2F6E8C1A5D70"
	d.TraceID = ""
	d.Recipients = nil
	d.Subject.Pseudonym = strings.ToUpper(d.Subject.Pseudonym)
	d.Channel = "fax"
	d.Salt = "c2FsdA" // unpadded, and 4 bytes
	err := d.Validate()
	want := []string{"schema", "id", "trace_id", "recipients", "subject.pseudonym", "channel", "salt"}
	if got := validationFields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v (error: %v)", got, want, err)
	}
	var first *events.ValidationError
	if !errors.As(err, &first) || first.Field != "schema" {
		t.Errorf("errors.As(*ValidationError) gave %v, want the schema error", first)
	}
	for _, f := range want {
		if !strings.Contains(err.Error(), f+": ") {
			t.Errorf("message %q does not name %s", err, f)
		}
	}
	if !strings.HasPrefix(err.Error(), "invalid disclosure: ") {
		t.Errorf("message %q", err)
	}
	var ves events.ValidationErrors
	errors.As(err, &ves)
	for _, ve := range ves {
		if !errors.Is(err, ve) {
			t.Errorf("errors.Is does not find %v in the list", ve)
		}
	}
}

// TestValidateFieldRules changes one thing at a time in a valid disclosure
// and checks that exactly the expected fields are reported.
func TestValidateFieldRules(t *testing.T) {
	long := strings.Repeat("x", 2001)
	cases := []struct {
		name   string
		edit   func(d *events.Disclosure)
		fields []string // nil: valid
	}{
		{"golden is valid", func(d *events.Disclosure) {}, nil},
		{"text of exactly 2000 bytes", func(d *events.Disclosure) { d.Justification = strings.Repeat("ë", 1000) }, nil},
		{"50 recipients", func(d *events.Disclosure) {
			d.Recipients = nil
			for i := range 50 {
				d.Recipients = append(d.Recipients, fmt.Sprintf("partij-%d", i))
			}
		}, nil},
		{"all optional fields", func(d *events.Disclosure) {
			d.Consent = &events.Consent{Reference: "dossier 12", GivenBy: events.ConsentParents}
			d.CaseRef = "casus-1"
			d.Corrects = "01958fa4-0000-7000-8000-000000000000"
			d.LegalBasis.Exception = "uavg-30"
		}, nil},
		{"schema", func(d *events.Disclosure) { d.Schema = "" }, []string{"schema"}},
		{"origin empty", func(d *events.Disclosure) { d.Origin = " " }, []string{"origin", "origin"}},
		{"origin with +", func(d *events.Disclosure) { d.Origin = "a+b" }, []string{"origin"}},
		{"origin with newline", func(d *events.Disclosure) { d.Origin = "a\nb" }, []string{"origin"}},
		{"span id upper case", func(d *events.Disclosure) { d.SpanID = strings.ToUpper(d.SpanID) }, []string{"span_id"}},
		{"span id all zero", func(d *events.Disclosure) { d.SpanID = strings.Repeat("0", 16) }, []string{"span_id"}},
		{"processing activity blank", func(d *events.Disclosure) { d.ProcessingActivity = " \t" }, []string{"processing_activity"}},
		{"processing activity too long", func(d *events.Disclosure) { d.ProcessingActivity = long }, []string{"processing_activity"}},
		{"occurred_at zero", func(d *events.Disclosure) { d.OccurredAt = time.Time{} }, []string{"occurred_at"}},
		{"occurred_at before 2000", func(d *events.Disclosure) { d.OccurredAt = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }, []string{"occurred_at"}},
		{"occurred_at in another zone", func(d *events.Disclosure) { d.OccurredAt = d.OccurredAt.In(time.FixedZone("CET", 3600)) }, []string{"occurred_at"}},
		{"discloser upper case", func(d *events.Disclosure) { d.Discloser = "SWV-De-Eem" }, []string{"discloser"}},
		{"51 recipients", func(d *events.Disclosure) {
			for i := range 50 {
				d.Recipients = append(d.Recipients, fmt.Sprintf("partij-%d", i))
			}
		}, []string{"recipients"}},
		{"recipient repeated", func(d *events.Disclosure) { d.Recipients = append(d.Recipients, d.Recipients[0]) }, []string{"recipients[1]"}},
		{"recipient not a party id", func(d *events.Disclosure) { d.Recipients[0] = "Gemeente Amersfoort" }, []string{"recipients[0]"}},
		{"id type", func(d *events.Disclosure) { d.Subject.IDType = "sofinummer" }, []string{"subject.id_type"}},
		{"pseudonym key id", func(d *events.Disclosure) { d.Subject.KeyID = "" }, []string{"subject.key_id"}},
		{"pseudonym too short", func(d *events.Disclosure) { d.Subject.Pseudonym = d.Subject.Pseudonym[2:] }, []string{"subject.pseudonym"}},
		{"age band", func(d *events.Disclosure) { d.SubjectAgeBand = "4-12" }, []string{"subject_age_band"}},
		{"no categories", func(d *events.Disclosure) { d.Categories = nil }, []string{"categories"}},
		{"31 categories", func(d *events.Disclosure) {
			for i := range 29 {
				d.Categories = append(d.Categories, fmt.Sprintf("cat-%d", i))
			}
		}, []string{"categories"}},
		{"category repeated", func(d *events.Disclosure) { d.Categories[1] = d.Categories[0] }, []string{"categories[1]"}},
		{"category not a vocabulary id", func(d *events.Disclosure) { d.Categories[0] = "Gezondheid" }, []string{"categories[0]"}},
		{"purpose", func(d *events.Disclosure) { d.Purpose = "" }, []string{"purpose"}},
		{"ground", func(d *events.Disclosure) { d.LegalBasis.Ground = "g" }, []string{"legal_basis.ground"}},
		{"exception", func(d *events.Disclosure) { d.LegalBasis.Exception = "Art. 9" }, []string{"legal_basis.exception"}},
		{"statute", func(d *events.Disclosure) { d.LegalBasis.Statute = "wet op het primair onderwijs" }, []string{"legal_basis.statute"}},
		{"consent incomplete", func(d *events.Disclosure) { d.Consent = &events.Consent{GivenBy: "ouders"} }, []string{"consent.reference", "consent.given_by"}},
		{"justification", func(d *events.Disclosure) { d.Justification = "" }, []string{"justification"}},
		{"channel", func(d *events.Disclosure) { d.Channel = "fax" }, []string{"channel"}},
		{"actor", func(d *events.Disclosure) { d.Actor = events.Actor{} }, []string{"actor.role", "actor.staff_id"}},
		{"case_ref too long", func(d *events.Disclosure) { d.CaseRef = long }, []string{"case_ref"}},
		{"corrects not an id", func(d *events.Disclosure) { d.Corrects = "event-1" }, []string{"corrects"}},
		{"corrects itself", func(d *events.Disclosure) { d.Corrects = d.ID }, []string{"corrects"}},
		{"salt missing", func(d *events.Disclosure) { d.Salt = "" }, []string{"salt"}},
		{"salt of 15 bytes", func(d *events.Disclosure) { d.Salt = "AAAAAAAAAAAAAAAAAAAA" }, []string{"salt"}},
		{"salt URL-safe", func(d *events.Disclosure) { d.Salt = "-_-_-_-_-_-_-_-_-_-_-w==" }, []string{"salt"}},
		{"justification not UTF-8", func(d *events.Disclosure) { d.Justification = "priv\xe9" }, []string{"justification"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := sealedBasic(t)
			c.edit(d)
			err := d.Validate()
			if got := validationFields(err); !slices.Equal(got, c.fields) {
				t.Errorf("fields %v, want %v (error: %v)", got, c.fields, err)
			}
			if err != nil && validationFields(err) == nil {
				t.Errorf("Validate returned %T, not ValidationErrors", err)
			}
		})
	}
}

// topLevelKeys lists the keys of a JSON object in the order they appear.
func topLevelKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestCanonicalFieldOrder pins the payload's field order, which other
// implementations must follow (docs/wire-format.md lists it).
func TestCanonicalFieldOrder(t *testing.T) {
	full := computeVector(t, "full")
	want := []string{"schema", "origin", "id", "trace_id", "span_id", "processing_activity", "occurred_at",
		"discloser", "recipients", "subject", "subject_age_band", "categories", "purpose", "legal_basis",
		"consent", "justification", "channel", "actor", "case_ref", "corrects", "salt"}
	if got := topLevelKeys(t, full.Payload); !slices.Equal(got, want) {
		t.Errorf("field order %v\nwant %v", got, want)
	}
	basic := computeVector(t, "basic")
	wantBasic := slices.DeleteFunc(slices.Clone(want), func(k string) bool {
		return k == "consent" || k == "case_ref" || k == "corrects"
	})
	if got := topLevelKeys(t, basic.Payload); !slices.Equal(got, wantBasic) {
		t.Errorf("field order %v\nwant %v", got, wantBasic)
	}
	for _, inner := range []string{
		`"subject":{"id_type":"bsn","key_id":"kv-2025-1","pseudonym":"`,
		`"legal_basis":{"ground":"a","exception":"avg-9.2.a","statute":"jeugdwet-7.3.11"}`,
		`"consent":{"reference":"`, `","given_by":"child-and-parents"}`,
		`"actor":{"role":"jeugdarts","staff_id":"ggd-3c91"}`,
	} {
		if !bytes.Contains(full.Payload, []byte(inner)) {
			t.Errorf("full payload does not contain %s", inner)
		}
	}
}

// TestCanonicalStrings pins how the canonical form writes text, the rules
// docs/wire-format.md states, and that each such payload opens again.
func TestCanonicalStrings(t *testing.T) {
	d0, k := sealedBasic(t)
	keys := testResolver{k.Party: {{pub: k.Public(), from: validFrom, until: validUntil}}}
	cases := []struct{ text, json string }{
		{"<b> & </b>", `"<b> & </b>"`},
		{"é ë Zoë", "\"\u00e9 \u00eb Zo\u00eb\""},
		{`aanhalingsteken " en \ backslash`, `"aanhalingsteken \" en \\ backslash"`},
		{"regel 1\nregel 2\r\tx", `"regel 1\nregel 2\r\tx"`},
		{"\b\f", `"\b\f"`},
		{"x\x00\x01\x1fy", `"x\u0000\u0001\u001fy"`},
		{"del\x7f", "\"del\x7f\""},
		{"lijn\u2028para\u2029", `"lijn\u2028para\u2029"`},
		{"a/b", `"a/b"`},
		{"emoji 🙂", `"emoji 🙂"`},
	}
	for _, c := range cases {
		d := *d0
		d.Justification = c.text
		env, err := events.Sign(&d, k)
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		parsed, err := events.ParseEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"justification":` + c.json + `,`; !bytes.Contains(parsed.Payload, []byte(want)) {
			t.Errorf("%q: payload does not contain %s", c.text, want)
		}
		got, _, err := events.Open(env, goldenOrigin, keys)
		if err != nil {
			t.Errorf("%q: Open: %v", c.text, err)
		} else if got.Justification != c.text {
			t.Errorf("%q: opened as %q", c.text, got.Justification)
		}
	}
}

func TestCanonicalTimes(t *testing.T) {
	d0, k := sealedBasic(t)
	for _, c := range []struct {
		t    time.Time
		json string
	}{
		{time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC), `"2025-03-14T09:26:53Z"`},
		{time.Date(2025, 3, 14, 9, 26, 53, 120_000_000, time.UTC), `"2025-03-14T09:26:53.12Z"`},
		{time.Date(2025, 3, 14, 9, 26, 53, 1, time.UTC), `"2025-03-14T09:26:53.000000001Z"`},
		{time.Date(2025, 12, 31, 23, 59, 59, 999_999_999, time.UTC), `"2025-12-31T23:59:59.999999999Z"`},
	} {
		d := *d0
		d.OccurredAt = c.t
		p, err := d.MarshalCanonical()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(p, []byte(`"occurred_at":`+c.json+`,`)) {
			t.Errorf("%v: payload does not contain %s", c.t, c.json)
		}
		back, err := events.DecodeDisclosure(p)
		if err != nil {
			t.Fatalf("%v: %v", c.t, err)
		}
		if !back.OccurredAt.Equal(c.t) || back.OccurredAt.Location() != time.UTC {
			t.Errorf("%v: decoded as %v", c.t, back.OccurredAt)
		}
		if _, err := events.Sign(&d, k); err != nil {
			t.Errorf("%v: Sign: %v", c.t, err)
		}
	}
}

// TestDecodeDisclosureJSON: the loose reader takes any layout a person or
// another system writes, with the same strictness about content.
func TestDecodeDisclosureJSON(t *testing.T) {
	v := computeVector(t, "full")
	var indented bytes.Buffer
	if err := json.Indent(&indented, v.Payload, "", "\t"); err != nil {
		t.Fatal(err)
	}
	d, err := events.DecodeDisclosureJSON(indented.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := d.MarshalCanonical(); !bytes.Equal(p, v.Payload) {
		t.Errorf("indented input re-encodes differently: %s", firstDifference(p, v.Payload))
	}
	if _, err := events.DecodeDisclosure(indented.Bytes()); !errors.Is(err, events.ErrNonCanonical) {
		t.Errorf("DecodeDisclosure(indented) = %v, want ErrNonCanonical", err)
	}
	for _, c := range []struct{ name, in, fragment string }{
		{"empty", "", "empty input"},
		{"unknown field", `{"schema":"spoor.disclosure/v1","bsn":"x"}`, `unknown field "bsn"`},
		{"trailing data", `{"schema":"spoor.disclosure/v1"} {}`, "data after the JSON object"},
		{"wrong type", `{"recipients":{}}`, "field recipients: wrong type"},
		{"bad time", `{"occurred_at":"14-03-2025"}`, "not RFC 3339"},
		{"truncated", `{"schema":"spoor.dis`, "disclosure payload"},
	} {
		if _, err := events.DecodeDisclosureJSON([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.fragment) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.fragment)
		}
	}
}

// FuzzDecodeDisclosure feeds arbitrary payloads to DecodeDisclosure.
// Properties: it never panics; whatever it accepts re-encodes to exactly the
// input, the loose reader agrees with it, and, when it is also valid, an
// envelope signed over it opens.
func FuzzDecodeDisclosure(f *testing.F) {
	for _, name := range vectorNames(f) {
		f.Add(computeVector(f, name).Payload)
	}
	for _, c := range rejectCases(f) {
		if env, err := events.ParseEnvelope(c.input); err == nil {
			f.Add(env.Payload)
		}
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := events.DecodeDisclosure(payload)
		if err != nil {
			if _, lerr := events.DecodeDisclosureJSON(payload); lerr == nil && !errors.Is(err, events.ErrNonCanonical) {
				t.Fatalf("the loose reader accepts it, but the strict one fails with %v rather than ErrNonCanonical", err)
			}
			return
		}
		canon, err := d.MarshalCanonical()
		if err != nil || !bytes.Equal(canon, payload) {
			t.Fatalf("accepted payload re-encodes differently (%v)", err)
		}
		loose, err := events.DecodeDisclosureJSON(payload)
		if err != nil {
			t.Fatalf("the loose reader rejects a canonical payload: %v", err)
		}
		if again, _ := loose.MarshalCanonical(); !bytes.Equal(again, payload) {
			t.Fatal("the loose reader decodes a canonical payload differently")
		}
		if d.Validate() != nil {
			return
		}
		env := events.SignEnvelope(events.PayloadType, payload, priv)
		if len(env) > events.MaxEnvelopeSize {
			return
		}
		keys := testResolver{d.Discloser: {{pub: pub}}}
		opened, _, err := events.Open(env, d.Origin, keys)
		if err != nil {
			t.Fatalf("a canonical, valid payload does not open: %v", err)
		}
		if again, _ := opened.MarshalCanonical(); !bytes.Equal(again, payload) {
			t.Fatal("opened disclosure re-encodes differently")
		}
	})
}

// FuzzSignOpen puts arbitrary text in the free-text fields. Property: every
// envelope Sign produces opens again, with the same text; the sender never
// gets an envelope the ledger would reject.
func FuzzSignOpen(f *testing.F) {
	f.Add("MDO & <overleg>", "casus-1", "jeugdarts", "ggd-3c91", "dossier é", int64(0))
	f.Add("priv\xe9", "", "a\u2028b", "x\x00y", "", int64(123_456_789))
	f.Add(strings.Repeat("ë", 1000), "\t", " ", "\"", "\\", int64(-1))
	d0, k := sealedBasic(f)
	keys := testResolver{k.Party: {{pub: k.Public()}}}
	f.Fuzz(func(t *testing.T, justification, caseRef, role, staffID, consentRef string, nanos int64) {
		d := *d0
		d.Justification, d.CaseRef, d.Actor.Role, d.Actor.StaffID = justification, caseRef, role, staffID
		if consentRef != "" {
			d.Consent = &events.Consent{Reference: consentRef, GivenBy: events.ConsentParents}
		}
		d.OccurredAt = d.OccurredAt.Add(time.Duration(nanos))
		env, err := events.Sign(&d, k)
		if err != nil {
			return
		}
		for _, s := range []string{justification, caseRef, role, staffID, consentRef} {
			if !utf8.ValidString(s) {
				t.Fatalf("Sign accepted text that is not UTF-8: %q", s)
			}
		}
		got, _, err := events.Open(env, d.Origin, keys)
		if err != nil {
			t.Fatalf("Sign produced an envelope that Open rejects: %v", err)
		}
		if got.Justification != justification || got.CaseRef != caseRef || got.Actor.Role != role ||
			got.Actor.StaffID != staffID || !got.OccurredAt.Equal(d.OccurredAt) {
			t.Fatal("opened disclosure differs from the signed one")
		}
	})
}
