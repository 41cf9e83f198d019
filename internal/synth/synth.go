// Package synth makes realistic synthetic disclosure traffic for a
// covenant: the simulator (spoor simulate), the benchmarks and the tests
// use it. Every number it makes is a synthetic BSN from the 9999 test
// range; nothing here is real data.
//
// A Generator is seeded, so the same seed gives the same children, the
// same events and the same ids: a rerun publishes the same bytes and the
// ledger recognises them.
package synth

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spoor-ledger/spoor/events"
)

// Child is a synthetic data subject.
type Child struct {
	// BSN is a synthetic BSN from the 9999 test range (passes the elfproef).
	BSN       string
	Pseudonym string
	AgeBand   events.AgeBand
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
	// Now is the time events are made around; zero means time.Now().
	Now  time.Time
	seq  uint64
	seed uint64
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
		g.children = append(g.children, Child{BSN: bsn, Pseudonym: p, AgeBand: band})
	}
	return g, nil
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
	statute  string // prefix of a statute id to cite
	channel  []string
}

var scenarios = map[string]scenario{
	"ondersteuning-op-school":    {from: kinds("schoolbestuur"), to: kinds("swv"), statute: "wpo", channel: []string{"system", "mdo"}},
	"toelaatbaarheidsverklaring": {from: kinds("schoolbestuur"), to: kinds("swv"), statute: "wpo", channel: []string{"system"}},
	"toewijzing-jeugdhulp":       {from: kinds("wijkteam", "gemeente"), to: kinds("jeugdhulp", "wijkteam"), statute: "jeugdwet", channel: []string{"system", "email"}},
	"mdo-overleg":                {from: kinds("schoolbestuur", "wijkteam", "ggd", "swv"), to: kinds("wijkteam", "swv", "ggd", "schoolbestuur"), statute: "", channel: []string{"mdo"}},
	"verzuim-en-leerplicht":      {from: kinds("schoolbestuur", "gemeente"), to: kinds("gemeente", "schoolbestuur"), statute: "leerplichtwet", channel: []string{"system", "email", "phone"}},
	"thuiszittersaanpak":         {from: kinds("swv", "gemeente", "schoolbestuur"), to: kinds("gemeente", "swv", "wijkteam"), statute: "leerplichtwet", channel: []string{"mdo", "email"}},
	"overstap-school":            {from: kinds("schoolbestuur"), to: kinds("schoolbestuur"), statute: "wpo", channel: []string{"system"}},
	"signalering":                {from: kinds("ggd", "schoolbestuur", "wijkteam"), to: kinds("wijkteam", "ggd"), statute: "", channel: []string{"phone", "email"}},
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
	sc, ok := scenarios[purpose]
	var discloser string
	var recipients []string
	if ok {
		if from := g.partiesOf(sc.from, ""); len(from) > 0 {
			discloser = from[g.rng.IntN(len(from))]
		}
	}
	if discloser == "" {
		discloser = g.anyParty("")
	}
	if ok {
		to := g.partiesOf(sc.to, discloser)
		g.rng.Shuffle(len(to), func(i, j int) { to[i], to[j] = to[j], to[i] })
		if len(to) > 0 {
			recipients = to[:1+g.pick(3, 70, 20, 10)%len(to)]
		}
	}
	if len(recipients) == 0 {
		recipients = []string{g.anyParty(discloser)}
	}
	child := g.children[g.rng.IntN(len(g.children))]
	allowed := g.cov.Rules.Purposes[purpose]
	cats := slices.Clone(allowed)
	g.rng.Shuffle(len(cats), func(i, j int) { cats[i], cats[j] = cats[j], cats[i] })
	if len(cats) > 1 {
		cats = cats[:1+g.rng.IntN(min(3, len(cats)))]
	}
	breakRule := g.rng.Float64() < g.FindingRate
	brokenKind := 0
	if breakRule {
		brokenKind = g.rng.IntN(3)
		if brokenKind == 0 {
			// A category the purpose does not need.
			for _, c := range g.cov.Vocabulary.Categories {
				if !slices.Contains(allowed, c.ID) {
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
	occurred := now.Add(-time.Duration(g.rng.IntN(48*60)) * time.Minute).UTC().Truncate(time.Second)
	if breakRule && brokenKind == 1 {
		// Recorded late: occurred well before the covenant's threshold.
		occurred = occurred.Add(-time.Duration(g.cov.Rules.LateRecordingHours+24) * time.Hour)
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
		LegalBasis:         events.LegalBasis{Ground: "e"},
		Justification:      justification(purpose),
		Channel:            "system",
		Actor:              events.Actor{Role: g.role(), StaffID: fmt.Sprintf("medewerker-%04d", g.rng.IntN(500))},
		CaseRef:            fmt.Sprintf("zaak-%06d", g.rng.IntN(1000000)),
	}
	if ok && len(sc.channel) > 0 {
		d.Channel = sc.channel[g.rng.IntN(len(sc.channel))]
	}
	if p, ok := g.cov.Party(discloser); ok && p.Kind == "schoolbestuur" && purpose != "verzuim-en-leerplicht" {
		d.LegalBasis.Ground = "c"
	}
	if ok && sc.statute != "" {
		for _, s := range g.cov.Vocabulary.Statutes {
			if strings.HasPrefix(s.ID, sc.statute) {
				d.LegalBasis.Statute = s.ID
				break
			}
		}
	}
	// A special category needs an exception the covenant allows.
	for _, c := range cats {
		cat, _ := g.cov.Category(c)
		if cat.Special != "" {
			if ex := g.cov.Rules.SpecialCategoryExceptions[cat.Special]; len(ex) > 0 {
				d.LegalBasis.Exception = ex[len(ex)-1]
			}
		}
	}
	// Consent where the covenant asks for it, given by whom the age band says.
	if g.consentNeeded(d) && !(breakRule && brokenKind == 2) {
		d.Consent = &events.Consent{Reference: fmt.Sprintf("toestemming-%06d", g.rng.IntN(1000000)),
			GivenBy: g.cov.Rules.Consent.ByAgeBand[child.AgeBand]}
	}
	return d, child
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
