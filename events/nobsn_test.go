package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/durable"
)

// TestNoBSNLeavesThePackage runs everything this package writes for a
// subject (pseudonyms, subjects, envelopes, key files, every error message of
// a mistyped or misplaced number) and checks that none of it contains the
// number. A BSN is read, checked and hashed, and goes no further.
func TestNoBSNLeavesThePackage(t *testing.T) {
	d0, k := sealedBasic(t)
	keys := testResolver{k.Party: {{pub: k.Public(), from: validFrom, until: validUntil}}}
	subjectKey, err := events.GenerateSubjectKey("kv-test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	for _, bsn := range []string{"999990019", "999990032", "999990044", "999990111", "111222333"} {
		t.Run(bsn, func(t *testing.T) {
			var out []string // everything the package produced from this BSN
			add := func(what string, v any) {
				switch v := v.(type) {
				case nil:
				case error:
					out = append(out, what+": "+v.Error())
				case []byte:
					out = append(out, what+": "+string(v))
				default:
					out = append(out, fmt.Sprintf("%s: %+v", what, v))
				}
			}

			p, err := events.Pseudonym(subjectKey, events.IDTypeBSN, bsn)
			if err != nil {
				t.Fatal(err)
			}
			add("pseudonym", p)
			subject, err := events.SubjectFor(subjectKey, events.IDTypeBSN, bsn)
			if err != nil {
				t.Fatal(err)
			}
			add("subject", subject)

			d := *d0
			d.Subject = subject
			env, err := events.Sign(&d, k)
			if err != nil {
				t.Fatal(err)
			}
			add("envelope", env)
			payload, _ := d.MarshalCanonical()
			add("payload", payload)
			opened, parsed, err := events.Open(env, goldenOrigin, keys)
			if err != nil {
				t.Fatal(err)
			}
			add("opened", *opened)
			add("parsed", parsed.Payload)

			// Mistyped numbers close to the BSN, and the BSN given with the
			// wrong type: every error, from every function that takes a number.
			variants := []string{
				bsn, bsn[:8], bsn + "0", bsn[:8] + "x", bsn[:4] + " " + bsn[4:8], bsn[:4] + "." + bsn[4:],
				" " + bsn, bsn + "\n", bsn[1:] + bsn[:1], bsn[:7] + bsn[8:] + bsn[7:8],
			}
			for i := 0; i < 9; i++ {
				n := []byte(bsn)
				n[i] = '0' + (n[i]-'0'+1)%10
				variants = append(variants, string(n))
			}
			for _, n := range variants {
				for _, typ := range []events.IDType{events.IDTypeBSN, events.IDTypeOnderwijsnummer, "sofinummer"} {
					err := events.CheckNumber(typ, n)
					if n == bsn && typ == events.IDTypeBSN {
						if err != nil {
							t.Fatal(err)
						}
						continue
					}
					if !errors.Is(err, events.ErrInvalidNumber) {
						t.Errorf("CheckNumber(%s, variant %d) = %v, want ErrInvalidNumber", typ, len(out), err)
					}
					add("CheckNumber", err)
					_, err = events.Pseudonym(subjectKey, typ, n)
					add("Pseudonym", err)
					_, err = events.SubjectFor(subjectKey, typ, n)
					add("SubjectFor", err)
					if strings.Contains(fmt.Sprint(err), n) && len(n) >= 8 {
						t.Errorf("an error repeats the number it rejects: %v", err)
					}
				}
			}
			_, err = events.Pseudonym(events.SubjectKey{ID: "kv-short", Secret: []byte("short")}, events.IDTypeBSN, bsn)
			add("Pseudonym with a bad key", err)

			// A BSN put where it does not belong, as a careless integration
			// might: Validate and Sign must reject it without repeating it.
			misplaced := []func(d *events.Disclosure){
				func(d *events.Disclosure) { d.Subject.Pseudonym = bsn },
				func(d *events.Disclosure) { d.Subject.KeyID = "bsn " + bsn },
				func(d *events.Disclosure) { d.Recipients = []string{bsn, bsn} },
				func(d *events.Disclosure) { d.Categories = []string{"bsn-" + bsn, "bsn-" + bsn} },
				func(d *events.Disclosure) { d.Purpose = "BSN " + bsn },
				func(d *events.Disclosure) { d.ID = bsn },
				func(d *events.Disclosure) { d.TraceID = bsn },
				func(d *events.Disclosure) { d.Corrects = bsn },
				func(d *events.Disclosure) { d.Discloser = "x " + bsn },
				func(d *events.Disclosure) { d.CaseRef = strings.Repeat(bsn, 300) },
				func(d *events.Disclosure) { d.Actor.StaffID = strings.Repeat(bsn, 300) },
				func(d *events.Disclosure) {
					d.Consent = &events.Consent{Reference: bsn, GivenBy: events.ConsentGiver(bsn)}
				},
				func(d *events.Disclosure) { d.Channel = bsn },
				func(d *events.Disclosure) { d.LegalBasis.Exception = "BSN " + bsn },
				func(d *events.Disclosure) { d.Salt = bsn },
			}
			for i, edit := range misplaced {
				d := *d0
				edit(&d)
				err := d.Validate()
				if err == nil {
					t.Errorf("misplaced BSN %d: Validate accepts it", i)
				}
				add("Validate", err)
				_, err = events.Sign(&d, k)
				add("Sign", err)
				var ves events.ValidationErrors
				if errors.As(err, &ves) {
					for _, ve := range ves {
						add("ValidationError", *ve)
					}
				}
			}

			// The same mistakes in a payload that reaches the ledger: Open's
			// errors go to logs and the rejections stream.
			canon, _ := d0.MarshalCanonical()
			replace := func(old, repl string) []byte {
				return []byte(strings.Replace(string(canon), old, repl, 1))
			}
			pseudo := `"pseudonym":"` + d0.Subject.Pseudonym + `"`
			for i, payload := range [][]byte{
				replace(pseudo, `"pseudonym":`+bsn),
				replace(pseudo, `"pseudonym":"`+bsn+`"`),
				replace(pseudo, `"pseudonym":["`+bsn+`"]`),
				replace(pseudo, pseudo+`,"bsn":"`+bsn+`"`),
				replace(`"occurred_at":"2025-03-14T09:26:53Z"`, `"occurred_at":"`+bsn+`"`),
				replace(`"occurred_at":"2025-03-14T09:26:53Z"`, `"occurred_at":"2025-03-14T09:26:53 `+bsn+`"`),
				replace(`"recipients":["gemeente-amersfoort"]`, `"recipients":["`+bsn+`","`+bsn+`"]`),
				replace(`"categories":["onderwijsgegevens"`, `"categories":["`+bsn+`","`+bsn+`"`),
				replace(`"case_ref`, `"case_ref`), // unchanged: a valid payload
				replace(`"justification":"`, `"justification":"BSN `+bsn+`, `),
				replace(`"id":"`+d0.ID+`"`, `"id":"`+bsn+`"`),
				replace(`"purpose":"toelaatbaarheidsverklaring"`, `"purpose":`+bsn),
				replace(`"subject":{`, `"subject":{"bsn":`+bsn+`,`),
				[]byte(`{"bsn":` + bsn + `}`),
				[]byte(bsn),
				[]byte(`"` + bsn + `"`),
				[]byte(`[` + bsn + `]`),
			} {
				env := events.SignEnvelope(events.PayloadType, payload, k.Private)
				_, _, err := events.Open(env, goldenOrigin, keys)
				if i != 8 && i != 9 && err == nil {
					t.Errorf("payload %d with a misplaced BSN opens", i)
				}
				add(fmt.Sprintf("Open(payload %d)", i), err)
				_, err = events.DecodeDisclosure(payload)
				add("DecodeDisclosure", err)
				_, err = events.DecodeDisclosureJSON(payload)
				add("DecodeDisclosureJSON", err)
			}
			// A BSN in place of a whole envelope.
			for _, b := range []string{bsn, `"` + bsn + `"`, `{"payloadType":` + bsn + `}`, `{"` + bsn + `":1}`, `{"signatures":[{"keyid":` + bsn + `}]}`} {
				_, _, err := events.Open([]byte(b), goldenOrigin, keys)
				add("Open(envelope)", err)
			}

			// Key files written for this run.
			pk, err := events.GeneratePartyKey("school-" + fmt.Sprint(len(bsn)))
			if err != nil {
				t.Fatal(err)
			}
			pkb, _ := json.Marshal(pk)
			skb, _ := json.Marshal(subjectKey)
			for name, b := range map[string][]byte{"party-" + bsn[:3] + ".key": pkb, "subject-" + bsn[:3] + ".key": skb} {
				path := filepath.Join(dir, name)
				if err := durable.WriteNewFile(path, b, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
					t.Fatal(err)
				}
				add("WriteNewFile again", durable.WriteNewFile(path, b, 0o600))
			}

			for _, s := range out {
				if strings.Contains(s, bsn) {
					t.Errorf("output contains the BSN:\n%.400s", s)
				}
			}
			if len(out) < 100 {
				t.Errorf("only %d outputs checked", len(out))
			}
		})
	}

	// Every file the package wrote.
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, bsn := range []string{"999990019", "999990032", "999990044", "999990111", "111222333"} {
			if strings.Contains(string(b), bsn) {
				t.Errorf("%s contains a BSN", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
