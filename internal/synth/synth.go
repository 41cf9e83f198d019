// Package synth makes realistic synthetic disclosure traffic for a
// covenant: the simulator (spoor simulate), the benchmarks and the tests
// use it. Every number it makes is a synthetic BSN from the 9999 test
// range; nothing here is real data.
//
// A Generator is seeded, so the same seed gives the same children, the
// same events and the same ids: a rerun publishes the same bytes and the
// ledger recognises them. Event i depends only on the seed, the number of
// children and the day of Now, never on how many events are asked for, so
// the first N events of a longer run are those of a run of N.
//
// It behaves like a region: disclosures happen in office hours in
// Europe/Amsterdam on the day before Now (so that none is recorded late,
// whatever the hour the simulation runs, except those made late on
// purpose), staff roles fit the organisation, consent goes with the legal
// basis that needs it, a school transfer goes from primary to secondary
// education, and every party of the covenant discloses.
package synth

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	// The office hours are Amsterdam's wherever the simulation runs,
	// also on a machine without a time zone database.
	_ "time/tzdata"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
)

// Child is a synthetic data subject.
type Child struct {
	// BSN is a synthetic BSN from the 9999 test range (passes the elfproef).
	BSN       string
	Pseudonym string
	AgeBand   events.AgeBand
	// Home is the municipality (a gemeente party) the child lives in, the
	// one that discloses about it, or "" when the covenant has none.
	Home string
}

// Generator makes disclosures for one covenant.
type Generator struct {
	cov      *events.Covenant
	key      events.SubjectKey
	rng      *rand.Rand
	children []Child
	// FindingRate is the share of events that deliberately break a
	// covenant rule (0.05 by default), so the FG has something to find.
	FindingRate float64
	// Now is the time events are made around; zero means time.Now(). The
	// events occur in office hours of the day before Now's day in
	// Europe/Amsterdam, so the same seed on the same day makes the same
	// events.
	Now  time.Time
	seq  uint64
	seed uint64
	// madeLate counts the events made late on purpose.
	madeLate int
}

// Amsterdam is the time zone of the region's office hours.
var Amsterdam = mustLoadLocation("Europe/Amsterdam")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		// time/tzdata is linked in: this cannot fail.
		panic(fmt.Sprintf("synth: %v", err))
	}
	return loc
}

// Office hours, in Amsterdam time.
const (
	officeOpens  = 8*time.Hour + 30*time.Minute
	officeCloses = 17 * time.Hour
)

// MadeLate returns how many of the events made so far were made late on
// purpose (occurred more than the covenant's late_recording_hours before
// Now): the recorded-late findings the ledger should report, no more.
func (g *Generator) MadeLate() int { return g.madeLate }

// OfficeWindow returns the span in which events made around now occur:
// office hours on the day before now's day in Amsterdam. Recorded at any
// moment of now's day, an event in it is at most about 40 hours old, within
// the demo covenants' late_recording_hours (48 and 72). For a covenant with
// a shorter threshold the window starts later, so that an event recorded by
// the end of now's day (with two hours to spare) is not late; when no office
// hour is left, it is the last hour of the day before.
func OfficeWindow(now time.Time, lateHours int) (from, to time.Time) {
	n := now.In(Amsterdam)
	today := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, Amsterdam)
	// Clock times in the zone, not hours after midnight: the day the
	// clocks change has 23 or 25 hours.
	from = time.Date(n.Year(), n.Month(), n.Day()-1, int(officeOpens/time.Hour), int(officeOpens%time.Hour/time.Minute), 0, 0, Amsterdam)
	to = time.Date(n.Year(), n.Month(), n.Day()-1, int(officeCloses/time.Hour), int(officeCloses%time.Hour/time.Minute), 0, 0, Amsterdam)
	if lateHours > 0 {
		latest := today.AddDate(0, 0, 1).Add(-time.Duration(lateHours)*time.Hour + 2*time.Hour)
		if latest.After(from) {
			from = latest
		}
	}
	if !from.Before(to) {
		from, to = today.Add(-time.Hour), today
	}
	return from.UTC(), to.UTC()
}

// New makes a generator of events about children synthetic children.
func New(cov *events.Covenant, key events.SubjectKey, seed uint64, children int) (*Generator, error) {
	if children < 1 {
		children = 1
	}
	g := &Generator{cov: cov, key: key, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), FindingRate: 0.05, seed: seed}
	seen := map[string]bool{}
	for len(g.children) < children {
		bsn := TestBSN(g.rng)
		if seen[bsn] {
			continue
		}
		seen[bsn] = true
		p, err := events.Pseudonym(key, events.IDTypeBSN, bsn)
		if err != nil {
			return nil, fmt.Errorf("synthetic BSN: %w", err)
		}
		band := events.AgeBands[g.pick(3, 40, 35, 25)]
		g.children = append(g.children, Child{BSN: bsn, Pseudonym: p, AgeBand: band, Home: g.home(len(g.children))})
	}
	return g, nil
}

// home picks the municipality of the i-th child: the children are spread
// over the covenant's municipalities in turn, drawing nothing from the
// generator's stream and nothing from the pseudonym key (which is new in
// every demo folder), so the same seed puts the same children in the same
// municipalities everywhere.
func (g *Generator) home(i int) string {
	gemeenten := g.partiesOf(kinds(string(events.KindGemeente)), "")
	if len(gemeenten) == 0 {
		return ""
	}
	return gemeenten[i%len(gemeenten)]
}

// Children returns the synthetic children, in the order they were made.
func (g *Generator) Children() []Child { return g.children }

// TestBSN returns a random 9-digit number starting with 9999 that passes
// the elfproef: the range set aside for tests.
func TestBSN(rng *rand.Rand) string {
	for {
		n := fmt.Sprintf("9999%05d", rng.IntN(100000))
		if events.CheckNumber(events.IDTypeBSN, n) == nil {
			return n
		}
	}
}

// pick returns an index chosen with the given weights.
func (g *Generator) pick(n int, weights ...int) int {
	total := 0
	for _, w := range weights[:n] {
		total += w
	}
	r := g.rng.IntN(total)
	for i, w := range weights[:n] {
		if r < w {
			return i
		}
		r -= w
	}
	return n - 1
}

// scenario says which kinds of party typically disclose for a purpose, and
// to which kinds.
type scenario struct {
	from, to []events.PartyKind
	// statutes are the statute ids to cite, the first the covenant has;
	// a board of secondary education cites the VO one (wvo-...) instead of
	// a wpo-... one where the covenant has it.
	statutes []string
	channel  []string
}

var scenarios = map[string]scenario{
	"ondersteuning-op-school":    {from: kinds("schoolbestuur"), to: kinds("swv"), statutes: []string{"wpo-18a"}, channel: []string{"system", "mdo"}},
	"toelaatbaarheidsverklaring": {from: kinds("schoolbestuur"), to: kinds("swv"), statutes: []string{"wpo-18a"}, channel: []string{"system"}},
	"toewijzing-jeugdhulp":       {from: kinds("wijkteam", "gemeente", "jeugdhulp"), to: kinds("jeugdhulp", "wijkteam", "gemeente"), statutes: []string{"jeugdwet-7.3.11"}, channel: []string{"system", "email"}},
	"mdo-overleg":                {from: kinds("schoolbestuur", "wijkteam", "ggd", "swv", "jeugdhulp", "welzijn"), to: kinds("wijkteam", "swv", "ggd", "schoolbestuur"), channel: []string{"mdo"}},
	"verzuim-en-leerplicht":      {from: kinds("schoolbestuur", "gemeente", "uitvoeringsorganisatie"), to: kinds("gemeente", "uitvoeringsorganisatie", "schoolbestuur"), statutes: []string{"leerplichtwet-21"}, channel: []string{"system", "email", "phone"}},
	"thuiszittersaanpak":         {from: kinds("swv", "gemeente", "schoolbestuur", "uitvoeringsorganisatie"), to: kinds("gemeente", "swv", "wijkteam", "uitvoeringsorganisatie"), statutes: []string{"leerplichtwet-21"}, channel: []string{"mdo", "email"}},
	"overstap-school":            {from: kinds("schoolbestuur"), to: kinds("schoolbestuur"), statutes: []string{"wpo-42"}, channel: []string{"system"}},
	"signalering":                {from: kinds("ggd", "schoolbestuur", "wijkteam", "welzijn"), to: kinds("wijkteam", "ggd"), statutes: []string{"wet-verplichte-meldcode"}, channel: []string{"phone", "email"}},
}

// level says whether a party is a board or partnership of primary ("po") or
// secondary ("vo") education, by a part of its id ("-po", "-ppo", "-vo":
// the demo covenants' convention), or "" when it does not say.
func level(id string) string {
	for _, part := range strings.Split(id, "-") {
		switch part {
		case "po", "ppo":
			return "po"
		case "vo":
			return "vo"
		}
	}
	return ""
}

// rolesByKind are the staff roles that disclose for each kind of party;
// roles the covenant's vocabulary lacks are skipped.
var rolesByKind = map[events.PartyKind][]string{
	events.KindGemeente:               {"consulent-jeugd"},
	events.KindSWV:                    {"consulent-passend-onderwijs", "orthopedagoog"},
	events.KindSchoolbestuur:          {"intern-begeleider", "zorgcoordinator", "mentor", "schooldirecteur"},
	events.KindUitvoeringsorganisatie: {"leerplichtambtenaar"},
	events.KindWijkteam:               {"wijkteammedewerker"},
	events.KindJeugdhulp:              {"jeugdhulpverlener", "orthopedagoog"},
	events.KindGGD:                    {"jeugdarts", "jeugdverpleegkundige"},
	events.KindWelzijn:                {"welzijnswerker"},
}

// rolesFor returns the roles that fit the discloser and the purpose.
func rolesFor(p events.Party, purpose string) []string {
	switch {
	case p.Kind == events.KindGemeente && (purpose == "verzuim-en-leerplicht" || purpose == "thuiszittersaanpak"):
		return []string{"leerplichtambtenaar"}
	case p.Kind == events.KindSchoolbestuur && level(p.ID) == "po":
		return []string{"intern-begeleider", "schooldirecteur"}
	case p.Kind == events.KindSchoolbestuur && level(p.ID) == "vo":
		return []string{"zorgcoordinator", "mentor"}
	}
	return rolesByKind[p.Kind]
}

// nonConsentException is the AVG art. 9 exception a kind of party relies
// on for health data when it does not ask consent, in order of preference.
var nonConsentException = map[events.PartyKind][]string{
	events.KindSchoolbestuur: {"uavg-30", "avg-9-2-g"},
	events.KindSWV:           {"uavg-30", "avg-9-2-g"},
	events.KindJeugdhulp:     {"avg-9-2-h", "uavg-30"},
	events.KindWijkteam:      {"avg-9-2-h", "uavg-30"},
	events.KindGGD:           {"avg-9-2-h", "uavg-30"},
}

func kinds(ks ...string) []events.PartyKind {
	out := make([]events.PartyKind, len(ks))
	for i, k := range ks {
		out[i] = events.PartyKind(k)
	}
	return out
}

func (g *Generator) partiesOf(ks []events.PartyKind, not string) []string {
	var out []string
	for _, p := range g.cov.Parties {
		if p.ID != not && slices.Contains(ks, p.Kind) {
			out = append(out, p.ID)
		}
	}
	return out
}

func (g *Generator) anyParty(not string) string {
	for {
		p := g.cov.Parties[g.rng.IntN(len(g.cov.Parties))].ID
		if p != not {
			return p
		}
	}
}

// Next returns the next synthetic disclosure, not yet sealed (no salt, no
// discloser key): the caller seals and signs it with the discloser's key.
// The returned child is who it is about.
func (g *Generator) Next() (*events.Disclosure, Child) {
	g.seq++
	purposes := g.cov.Vocabulary.Purposes
	purpose := purposes[g.rng.IntN(len(purposes))].ID
	child := g.children[g.rng.IntN(len(g.children))]
	sc, ok := scenarios[purpose]
	var discloser string
	var recipients []string
	if ok {
		from := g.partiesOf(sc.from, "")
		if purpose == "overstap-school" {
			// A transfer goes from primary to secondary education.
			from = filterLevel(from, "po")
		}
		if len(from) > 0 {
			discloser = from[g.rng.IntN(len(from))]
		}
	}
	if discloser == "" {
		discloser = g.anyParty("")
	}
	if p, _ := g.cov.Party(discloser); p.Kind == events.KindGemeente && child.Home != "" {
		// A municipality discloses about the children who live in it.
		discloser = child.Home
	}
	if ok {
		to := g.partiesOf(sc.to, discloser)
		if purpose == "overstap-school" {
			to = filterLevel(to, "vo")
		} else if l := level(discloser); l != "" {
			// A school works with the partnership of its own level.
			to = slices.DeleteFunc(to, func(id string) bool { return level(id) != "" && level(id) != l })
		}
		g.rng.Shuffle(len(to), func(i, j int) { to[i], to[j] = to[j], to[i] })
		if len(to) > 0 {
			recipients = to[:1+g.pick(3, 70, 20, 10)%len(to)]
		}
	}
	if len(recipients) == 0 {
		recipients = []string{g.anyParty(discloser)}
	}
	party, _ := g.cov.Party(discloser)
	allowed := g.cov.Rules.Purposes[purpose]
	cats := slices.Clone(allowed)
	g.rng.Shuffle(len(cats), func(i, j int) { cats[i], cats[j] = cats[j], cats[i] })
	if len(cats) > 1 {
		cats = cats[:1+g.rng.IntN(min(3, len(cats)))]
	}
	// One exception can allow one kind of special category: a health and
	// a criminal category together would need two, so keep the first.
	var special events.Special
	cats = slices.DeleteFunc(cats, func(c string) bool {
		cat, _ := g.cov.Category(c)
		switch {
		case cat.Special == events.SpecialNone:
			return false
		case special == events.SpecialNone:
			special = cat.Special
			return false
		}
		return cat.Special != special
	})

	statute := ""
	if ok {
		for _, want := range sc.statutes {
			if want == "wpo-18a" && level(discloser) == "vo" {
				want = "wvo-passend-onderwijs"
			}
			if slices.ContainsFunc(g.cov.Vocabulary.Statutes, func(t events.Term) bool { return t.ID == want }) {
				statute = want
				break
			}
		}
	}
	// Consent is the legal basis where the covenant asks for it (youth
	// care without an exempting statute) and for a welfare organisation,
	// which has no statutory task to rely on; then the ground is a and a
	// health category's exception is explicit consent.
	cr := g.cov.Rules.Consent
	consentBased := (slices.Contains(cr.RequiredForDiscloserKinds, party.Kind) && !slices.Contains(cr.ExemptStatutes, statute)) ||
		(party.Kind == events.KindWelzijn && statute == "")

	breakRule := g.rng.Float64() < g.FindingRate
	brokenKind := 0
	if breakRule {
		brokenKind = g.rng.IntN(3)
		if brokenKind == 2 && !consentBased {
			// Leaving out consent breaks a rule only where it is needed.
			brokenKind = 0
		}
		if brokenKind == 0 {
			// A category the purpose does not need.
			for _, c := range g.cov.Vocabulary.Categories {
				if !slices.Contains(allowed, c.ID) && c.Special == events.SpecialNone {
					cats = append(cats, c.ID)
					break
				}
			}
		}
	}
	now := g.Now
	if now.IsZero() {
		now = time.Now()
	}
	from, to := OfficeWindow(now, g.cov.Rules.LateRecordingHours)
	occurred := from.Add(time.Duration(g.rng.Int64N(int64(to.Sub(from)/time.Second))) * time.Second)
	if breakRule && brokenKind == 1 {
		// Recorded late: occurred well before the covenant's threshold.
		occurred = occurred.Add(-time.Duration(g.cov.Rules.LateRecordingHours+24) * time.Hour)
		g.madeLate++
	}
	d := &events.Disclosure{
		Schema:             events.SchemaV1,
		Origin:             g.cov.Origin,
		ID:                 g.uuidV7(occurred),
		TraceID:            g.hex(16),
		SpanID:             g.hex(8),
		ProcessingActivity: discloser + "/" + purpose,
		OccurredAt:         occurred,
		Discloser:          discloser,
		Recipients:         recipients,
		Subject:            events.Subject{IDType: events.IDTypeBSN, KeyID: g.key.ID, Pseudonym: child.Pseudonym},
		SubjectAgeBand:     child.AgeBand,
		Categories:         cats,
		Purpose:            purpose,
		LegalBasis:         events.LegalBasis{Ground: "e", Statute: statute},
		Justification:      justification(purpose),
		Channel:            "system",
		Actor:              events.Actor{Role: g.roleFor(party, purpose), StaffID: fmt.Sprintf("medewerker-%04d", g.rng.IntN(500))},
		CaseRef:            fmt.Sprintf("zaak-%06d", g.rng.IntN(1000000)),
	}
	if ok && len(sc.channel) > 0 {
		d.Channel = sc.channel[g.rng.IntN(len(sc.channel))]
	}
	switch {
	case consentBased:
		d.LegalBasis.Ground = "a"
	case statute != "" && (party.Kind == events.KindSchoolbestuur || party.Kind == events.KindUitvoeringsorganisatie || statute == "leerplichtwet-21"):
		// A statutory duty: a school's transfer report, a truancy report.
		d.LegalBasis.Ground = "c"
	}
	if special != events.SpecialNone {
		d.LegalBasis.Exception = g.exceptionFor(party.Kind, special, consentBased)
	}
	// Consent where the legal basis is consent, given by whom the age band says.
	if (consentBased || g.consentNeeded(d)) && !(breakRule && brokenKind == 2) {
		d.Consent = &events.Consent{Reference: fmt.Sprintf("toestemming-%06d", g.rng.IntN(1000000)),
			GivenBy: g.cov.Rules.Consent.ByAgeBand[child.AgeBand]}
	}
	return d, child
}

// filterLevel keeps the parties of one education level; when none has a
// level the covenant does not say, and all are kept.
func filterLevel(ids []string, l string) []string {
	out := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return level(id) != l })
	if len(out) == 0 {
		return ids
	}
	return out
}

// exceptionFor picks the art. 9 or art. 10 exception a discloser of kind k
// relies on: explicit consent when the disclosure is consent-based, else
// the kind's own, else the first the covenant allows that is not consent.
func (g *Generator) exceptionFor(k events.PartyKind, special events.Special, consentBased bool) string {
	allowed := g.cov.Rules.SpecialCategoryExceptions[special]
	consent := g.cov.Rules.Consent.RequiredForExceptions
	if consentBased {
		for _, ex := range allowed {
			if slices.Contains(consent, ex) {
				return ex
			}
		}
	}
	if special == events.SpecialArt9 {
		for _, ex := range nonConsentException[k] {
			if slices.Contains(allowed, ex) {
				return ex
			}
		}
	}
	for _, ex := range allowed {
		if !slices.Contains(consent, ex) {
			return ex
		}
	}
	if len(allowed) > 0 {
		return allowed[0]
	}
	return ""
}

// roleFor picks a staff role that fits the organisation and the purpose,
// from the covenant's vocabulary.
func (g *Generator) roleFor(p events.Party, purpose string) string {
	var fit []string
	for _, r := range rolesFor(p, purpose) {
		if slices.ContainsFunc(g.cov.Vocabulary.Roles, func(t events.Term) bool { return t.ID == r }) {
			fit = append(fit, r)
		}
	}
	if len(fit) == 0 {
		return g.role()
	}
	return fit[g.rng.IntN(len(fit))]
}

func (g *Generator) consentNeeded(d *events.Disclosure) bool {
	r := g.cov.Rules.Consent
	if slices.Contains(r.RequiredForGrounds, d.LegalBasis.Ground) || slices.Contains(r.RequiredForExceptions, d.LegalBasis.Exception) {
		return true
	}
	p, _ := g.cov.Party(d.Discloser)
	return slices.Contains(r.RequiredForDiscloserKinds, p.Kind) && !slices.Contains(r.ExemptStatutes, d.LegalBasis.Statute)
}

func (g *Generator) role() string {
	roles := g.cov.Vocabulary.Roles
	if len(roles) == 0 {
		return "medewerker"
	}
	return roles[g.rng.IntN(len(roles))].ID
}

func (g *Generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	if b[0] == 0 {
		b[0] = 1
	}
	return fmt.Sprintf("%x", b)
}

// uuidV7 makes a UUIDv7 from the event time and the seeded generator, so a
// rerun with the same seed makes the same ids.
func (g *Generator) uuidV7(t time.Time) string {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(u[0:6], ts[2:8])
	binary.BigEndian.PutUint64(u[6:14], g.rng.Uint64())
	binary.BigEndian.PutUint16(u[14:16], uint16(g.rng.UintN(1<<16)))
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	return u.String()
}

func justification(purpose string) string {
	switch purpose {
	case "verzuim-en-leerplicht":
		return "Melding van ongeoorloofd verzuim zodat de leerplichtambtenaar kan handelen."
	case "toewijzing-jeugdhulp":
		return "Nodig om passende jeugdhulp toe te wijzen."
	case "toelaatbaarheidsverklaring":
		return "Aanvraag toelaatbaarheidsverklaring speciaal onderwijs."
	case "thuiszittersaanpak":
		return "Leerling zit thuis; zoeken naar een passende plek binnen drie maanden."
	case "mdo-overleg":
		return "Bespreking in het multidisciplinair overleg met instemming van ouders."
	default:
		return "Noodzakelijk voor het doel van het convenant."
	}
}
