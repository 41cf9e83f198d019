package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
)

func loadDemoMaterial(t *testing.T, name string) *demo.Material {
	t.Helper()
	m, err := demo.Ensure(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func defaultSimFlags(n int) *simulateFlags {
	return &simulateFlags{n: n, seed: 1, children: defaultSimChildren}
}

// TestSimulateRecordsNothingLateButOnPurpose fakes the clock at 00:30,
// 12:00 and 23:30 Europe/Amsterdam (on a weekday, a Monday and the two days
// the clocks change) and counts the recorded-late findings the ledger would
// give each event recorded then, or at the end of simulate's wait for
// receipts: exactly the number the generator made late on purpose. Every
// other event occurred in office hours in Amsterdam.
func TestSimulateRecordsNothingLateButOnPurpose(t *testing.T) {
	for _, name := range []string{"amersfoort", "waterweg"} {
		m := loadDemoMaterial(t, name)
		cov := m.Signed.Covenant
		for _, day := range []string{"2026-12-09", "2026-12-07", "2026-03-29", "2026-10-25", "2026-03-30", "2026-10-26"} {
			for _, hm := range []string{"00:30", "12:00", "23:30"} {
				now, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hm, synth.Amsterdam)
				if err != nil {
					t.Fatal(err)
				}
				gen, err := simGenerator(defaultSimFlags(1000), m, now)
				if err != nil {
					t.Fatal(err)
				}
				late, future := 0, 0
				for range 1000 {
					d, _ := gen.Next()
					lateNow := hasRule(cov.CheckRecording(d, now), events.RuleRecordedLate)
					lateAfterWait := hasRule(cov.CheckRecording(d, now.Add(2*time.Minute)), events.RuleRecordedLate)
					if lateNow || lateAfterWait {
						late++
						continue
					}
					if hasRule(cov.CheckRecording(d, now), events.RuleOccurredAfterRecording) || events.CheckOccurredInFuture(d, now, 0) != nil {
						future++
					}
					at := d.OccurredAt.In(synth.Amsterdam)
					mins := at.Hour()*60 + at.Minute()
					if mins < 8*60+30 || mins >= 17*60 {
						t.Errorf("%s %s %s: event at %s, outside office hours in Amsterdam", name, day, hm, at.Format(time.RFC3339))
					}
				}
				if late != gen.MadeLate() || gen.MadeLate() == 0 {
					t.Errorf("%s %s %s Amsterdam: %d recorded-late findings, %d made late on purpose", name, day, hm, late, gen.MadeLate())
				}
				if future > 0 {
					t.Errorf("%s %s %s: %d events occurred after the time of recording", name, day, hm, future)
				}
			}
		}
	}
}

func hasRule(fs []events.Finding, rule string) bool {
	return slices.ContainsFunc(fs, func(f events.Finding) bool { return f.Rule == rule })
}

// fittingRoles are the roles each kind of organisation may disclose with,
// written out here apart from the generator's table.
var fittingRoles = map[events.PartyKind][]string{
	events.KindGemeente:               {"consulent-jeugd", "leerplichtambtenaar"},
	events.KindSWV:                    {"consulent-passend-onderwijs", "orthopedagoog"},
	events.KindSchoolbestuur:          {"intern-begeleider", "zorgcoordinator", "mentor", "schooldirecteur"},
	events.KindUitvoeringsorganisatie: {"leerplichtambtenaar"},
	events.KindWijkteam:               {"wijkteammedewerker"},
	events.KindJeugdhulp:              {"jeugdhulpverlener", "orthopedagoog"},
	events.KindGGD:                    {"jeugdarts", "jeugdverpleegkundige"},
	events.KindWelzijn:                {"welzijnswerker"},
}

// TestSimulateBehavesLikeARegion: with no rule broken on purpose, a
// simulation's events break no covenant rule (consent goes with the legal
// basis that needs it, roles are known, no exception is missing); roles
// fit the organisation; consent is recorded exactly when the legal basis is
// consent; a school transfer goes from primary to secondary education; and
// every party of the covenant discloses in 1,000 events.
func TestSimulateBehavesLikeARegion(t *testing.T) {
	now := time.Date(2026, 12, 9, 14, 0, 0, 0, synth.Amsterdam)
	for _, name := range []string{"amersfoort", "waterweg"} {
		m := loadDemoMaterial(t, name)
		cov := m.Signed.Covenant
		gen, err := simGenerator(defaultSimFlags(1000), m, now)
		if err != nil {
			t.Fatal(err)
		}
		gen.FindingRate = 0
		active := map[string]int{}
		transfers := 0
		for i := range 1000 {
			d, _ := gen.Next()
			active[d.Discloser]++
			if fs := append(cov.Check(d), cov.CheckRecording(d, now)...); len(fs) > 0 {
				t.Errorf("%s event %d (%s by %s): findings %+v", name, i, d.Purpose, d.Discloser, fs)
			}
			p, _ := cov.Party(d.Discloser)
			if !slices.Contains(fittingRoles[p.Kind], d.Actor.Role) {
				t.Errorf("%s event %d: a %s (%s) discloses as %s", name, i, p.Kind, p.ID, d.Actor.Role)
			}
			consentBasis := d.LegalBasis.Ground == "a" || d.LegalBasis.Exception == "avg-9-2-a"
			if consentBasis != (d.Consent != nil) && !(d.Consent != nil && cov.Check(d) == nil && p.Kind == events.KindJeugdhulp) {
				t.Errorf("%s event %d: ground %q, exception %q, consent %v: consent does not go with the legal basis",
					name, i, d.LegalBasis.Ground, d.LegalBasis.Exception, d.Consent != nil)
			}
			if d.Purpose == "overstap-school" {
				transfers++
				if !strings.HasSuffix(d.Discloser, "-po") {
					t.Errorf("%s event %d: a transfer from %s, not a primary school board", name, i, d.Discloser)
				}
				for _, r := range d.Recipients {
					if !strings.HasSuffix(r, "-vo") {
						t.Errorf("%s event %d: a transfer to %s, not a secondary school board", name, i, r)
					}
				}
			}
		}
		if transfers == 0 {
			t.Errorf("%s: no school transfers in 1,000 events", name)
		}
		for _, p := range cov.Parties {
			if len(p.Keys) > 0 && active[p.ID] == 0 {
				t.Errorf("%s: party %s made no disclosure in 1,000 events", name, p.ID)
			}
		}
	}
}

// TestSimulatePrefix: with the same seed, the first N signed events of
// --events M are byte for byte those of --events N.
func TestSimulatePrefix(t *testing.T) {
	m := loadDemoMaterial(t, "waterweg")
	now := time.Date(2026, 12, 9, 14, 0, 0, 0, synth.Amsterdam)
	signed := func(n, take int) [][]byte {
		gen, err := simGenerator(&simulateFlags{n: n, seed: 7, children: defaultSimChildren}, m, now)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for range take {
			d, _ := gen.Next()
			k := m.Parties[d.Discloser]
			events.Seal(d, k)
			env, err := events.Sign(d, k)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
		return out
	}
	short, long := signed(100, 100), signed(1000, 100)
	for i := range short {
		if !bytes.Equal(short[i], long[i]) {
			t.Fatalf("event %d of --events 1000 differs from event %d of --events 100", i, i)
		}
	}
}

// TestSimulateREADMEChild keeps the README true: the example BSN 999953576
// is a child the simulation (seed 1, 1,000 events) makes on both demo
// covenants, and on Waterweg Gemeente Vlaardingen discloses about it.
func TestSimulateREADMEChild(t *testing.T) {
	for _, name := range []string{"amersfoort", "waterweg"} {
		m := loadDemoMaterial(t, name)
		gen, err := simGenerator(defaultSimFlags(1000), m, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]int{}
		for range 1000 {
			d, c := gen.Next()
			if c.BSN == "999953576" {
				by[d.Discloser]++
			}
		}
		if len(by) == 0 {
			t.Errorf("%s: no disclosure about 999953576", name)
		}
		if name == "waterweg" && by["gemeente-vlaardingen"] == 0 {
			t.Errorf("waterweg: no disclosure by gemeente-vlaardingen about 999953576 (by %v)", by)
		}
	}
}
