package report

// This file renders the Dutch report of an inzage bundle: one
// self-contained, printable HTML page (inline CSS, no scripts, no external
// assets) for a parent or a young person. It is rendered only from a
// VerifiedBundle, so it shows only what verified against the pinned keys.
//
// The page never shows a BSN (the bundle holds none) and never shows a
// pseudonym: whoever holds the pseudonym key can reverse one, so it is
// personal data that the reader does not need.

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

//go:embed inzage.html.tmpl
var inzageReportFS embed.FS

var inzageReportTemplate = template.Must(template.New("inzage.html.tmpl").ParseFS(inzageReportFS, "inzage.html.tmpl"))

var inzageMonths = [...]string{"januari", "februari", "maart", "april", "mei", "juni", "juli",
	"augustus", "september", "oktober", "november", "december"}

// inzageDate formats a date the Dutch way: "14 maart 2025".
func inzageDate(t time.Time) string {
	t = t.In(zoneNL)
	return fmt.Sprintf("%d %s %d", t.Day(), inzageMonths[t.Month()-1], t.Year())
}

// inzageDateTime formats a time the Dutch way: "14 maart 2025 om 09:26".
func inzageDateTime(t time.Time) string {
	t = t.In(zoneNL)
	return fmt.Sprintf("%s om %02d:%02d", inzageDate(t), t.Hour(), t.Minute())
}

// The view the template renders: every string is final Dutch text, so the
// template only lays it out.
type inzageView struct {
	CovenantName  string
	Administrator string
	Request       string
	Relation      string
	RequestedAt   string
	ReleasedAt    string
	CreatedAt     string
	CentralDesk   bool
	// ScopeParties are the organisations this answer covers; OtherParties
	// the covenant's other parties, which the answer does not cover (named
	// so that the parent can ask them, without saying whether they hold
	// anything).
	ScopeParties []string
	OtherParties []inzageParty
	// Desks are the privacy desks that answer for this answer's
	// organisations (the central desk, or each party's own), and FG the
	// covenant's FG, from the newest covenant version in the bundle; a
	// version without contacts shows "contactgegevens onbekend".
	Desks []inzageContact
	FG    inzageContact
	// BundleFile is the name of the bundle file that goes with the report,
	// as written (WithBundleFile).
	BundleFile string
	// AnyConsentBasis is true when consent is the legal basis of at least
	// one disclosure: then the right to withdraw consent applies.
	AnyConsentBasis bool
	// Glossary explains every legal or technical term the page uses.
	Glossary []glossaryEntry
	// YoungPerson is, for an answer to a parent or guardian about a young
	// person of 16 or over, what the answer entry says was decided (the
	// young person's consent, with its reference); empty otherwise.
	YoungPerson string

	Count       int
	Period      string
	ByDiscloser []inzageCount
	Special     int
	WithFinding int

	Disclosures []inzageDisclosure
	Withheld    []inzageWithheld
	Erased      []inzageErased
	Check       inzageCheck
}

// inzageParty is an organisation the answer does not cover, with the
// contact of its own desk.
type inzageParty struct {
	Name    string
	Contact inzageContact
}

// inzageContact is a contact as the report prints it; Known is false when
// the covenant names none.
type inzageContact struct {
	Known                             bool
	Name, Role, Email, Phone, Address string
}

func contactView(c *events.Contact) inzageContact {
	if c == nil {
		return inzageContact{}
	}
	return inzageContact{Known: true, Name: c.Name, Role: c.Role, Email: c.Email, Phone: c.Phone, Address: c.Address}
}

type inzageCount struct {
	Name  string
	Count int
}

type inzageDisclosure struct {
	Number        int
	Date          string
	From          string
	FromKind      string
	To            []string
	Categories    []inzageCategory
	Purpose       string
	Justification string
	Ground        string
	Exception     string
	Statute       string
	// Consent is what the disclosure says about consent; empty (and not
	// shown) when consent is not its legal basis and none was recorded.
	Consent string
	// RetainedUntil is the day the covenant version it was checked against
	// lets it be kept until; Retention says how long that is and by which
	// version; Expired is true when that day had passed when the bundle was
	// made.
	RetainedUntil string
	Retention     string
	Expired       bool
	Role          string
	Channel       string
	// WitnessedBy is when, at the latest, independent witnesses saw it
	// in the register; empty without a witness policy.
	WitnessedBy string
	RecordedAt  string
	Leaf        uint64
	Corrects    string
	Findings    []string
}

type inzageCategory struct {
	Label   string
	Special string
}

type inzageWithheld struct {
	RecordedAt string
	Ground     string
	Leaf       uint64
}

type inzageErased struct {
	ErasedAt string
	// Why says in Dutch why it was erased: the retention period, or a
	// request on a ground of AVG art. 17.
	Why        string
	Rule       string
	Leaf       uint64
	ErasedLeaf uint64
}

type inzageCheck struct {
	Origin      string
	Size        uint64
	Root        string
	CosignedAt  string
	LogKey      string
	CosignerKey string
	AdminKey    string
	Versions    string
	Command     string
	// Witnesses are the independent witnesses that cosigned the
	// checkpoint under the covenant's policy, with their times; empty when
	// none is required ("niet onafhankelijk bevestigd").
	Witnesses []inzageWitness
	// WitnessedBy is the latest of their times: everything in the bundle
	// was in the register by then.
	WitnessedBy string
	// AnswerLeaf and AnswerAt are the answer entry's leaf (as a string,
	// empty for a v1 bundle) and when it was logged.
	AnswerLeaf, AnswerAt string
	// Complete says a v3 bundle proved the answer complete: for the log
	// before leaf CompleteBefore, for the organisations CompleteFor, by
	// the identifier SearchedBy (and not by NotSearchedBy); Later counts
	// the child's entries logged after the answer was made. False for
	// v1 and v2 bundles: "volledigheid niet bewezen".
	Complete       bool
	CompleteBefore uint64
	CompleteFor    []string
	SearchedBy     string
	NotSearchedBy  string
	Later          int
	// ErasuresFrom is the leaf before which erasures are in no list (the
	// index was built over a log that had them); 0 when none.
	ErasuresFrom uint64
}

type inzageWitness struct {
	Name string
	At   string
}

// idTypeNL is an identifier type as the report names it.
func idTypeNL(t events.IDType) string {
	if t == events.IDTypeOnderwijsnummer {
		return "onderwijsnummer"
	}
	return "BSN"
}

// inzageRedact removes anything that looks like a national number from
// text that a discloser wrote (a justification, a consent reference, a
// role, an id the covenant has no label for): verifier.MaskFreeText, the one
// masking every rendering uses. No BSN belongs in an event, but a person
// typing a justification may put one there anyway, and the report must
// never show one.
func inzageRedact(s string) string { return verifier.MaskFreeText(s) }

// inzagePartyName is a party's name, or verifier.UnknownValueNL for an id that is
// not a party of covenant c.
func inzagePartyName(c *events.Covenant, id string) string {
	if _, ok := c.Party(id); !ok {
		return verifier.UnknownValueNL(id)
	}
	return c.PartyName(id)
}

// inzageCategoryLabel is a category's label, or verifier.UnknownValueNL for an id
// that is not in covenant c's vocabulary.
func inzageCategoryLabel(c *events.Covenant, id string) string {
	if _, ok := c.Category(id); !ok {
		return verifier.UnknownValueNL(id)
	}
	return c.CategoryLabel(id)
}

// WriteInzage renders the Dutch report of a verified bundle to w, a full
// answer under AVG art. 15: which organisations it covers (and, under a
// party's own desk, which of the covenant's it does not), a summary, every
// disclosure (date, from and to which organisation, which data, why, on
// which basis, consent where consent is that basis or was recorded, by
// which role, when the ledger recorded it, until when it is kept by the
// covenant version it was checked against, the covenant findings), the
// withheld and erased entries, the parent's rights (AVG art. 16, 17, 18,
// 21, and a complaint to the Autoriteit Persoonsgegevens), "Zo controleert
// u dit overzicht" with the checkpoint, the pinned keys' fingerprints, the
// command to check the bundle (named as WithBundleFile says) and what the
// proof does and does not show, and a word list. It is written at language
// level B1: inzage_b1_test.go holds every sentence to 20 words and every
// term to the word list.
func WriteInzage(w io.Writer, vb *verifier.VerifiedBundle, opts ...InzageOption) error {
	if vb == nil || vb.Bundle == nil || vb.Checkpoint == nil || len(vb.Covenants) == 0 {
		return fmt.Errorf("verifier: a report is rendered only from a verified bundle")
	}
	o := inzageOptions{bundleFile: DefaultBundleFile}
	for _, opt := range opts {
		opt(&o)
	}
	v := buildInzageView(vb)
	v.BundleFile = o.bundleFile
	v.Check.Command = "spoor verify " + o.bundleFile + " --vkey @log.vkey --cosigner-vkey @cosigner.vkey --admin @admin.pub"
	return render(w, inzageReportTemplate, v)
}

// DefaultBundleFile is the bundle's file name the report names when the
// caller does not say (WithBundleFile): the name 'spoor inzage release -o'
// is shown with in its help and the README.
const DefaultBundleFile = "bundle.json"

// InzageOption changes how WriteInzage renders the report.
type InzageOption func(*inzageOptions)

type inzageOptions struct{ bundleFile string }

// WithBundleFile names the bundle file that goes with the report, as the
// caller wrote it (only its base name is shown), so that the report tells
// the parent the very name of the file they were given. An empty name
// keeps DefaultBundleFile.
func WithBundleFile(name string) InzageOption {
	return func(o *inzageOptions) {
		if base := filepath.Base(name); name != "" && base != "." && base != string(filepath.Separator) {
			o.bundleFile = base
		}
	}
}

// render executes t on data and writes the page to w, only once it is
// whole: a failed render writes nothing.
func render(w io.Writer, t *template.Template, data any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("couldn't render the report: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	return nil
}

func buildInzageView(vb *verifier.VerifiedBundle) *inzageView {
	b := vb.Bundle
	latest := vb.Covenant()
	relation, _ := lookup(relationLabels, b.Request.Relation)
	v := &inzageView{
		CovenantName:  latest.Name,
		Administrator: latest.Administrator.Name,
		Request:       b.Request.ID,
		Relation:      relation,
		RequestedAt:   inzageDateTime(b.Request.RequestedAt),
		ReleasedAt:    inzageDateTime(b.Request.ReleasedAt),
		CreatedAt:     inzageDateTime(b.CreatedAt),
		CentralDesk:   b.Scope.CentralDesk,
	}
	covered := map[string]bool{}
	for _, p := range b.Scope.Parties {
		covered[p] = true
		v.ScopeParties = append(v.ScopeParties, latest.PartyName(p))
	}
	if latest.Contact != nil {
		v.FG = contactView(latest.Contact.FG)
	}
	if b.Scope.CentralDesk {
		var desk *events.Contact
		if latest.Contact != nil {
			desk = latest.Contact.Desk
		}
		v.Desks = append(v.Desks, contactView(desk))
	} else {
		for _, id := range b.Scope.Parties {
			p, _ := latest.Party(id)
			c := contactView(p.Contact)
			if c.Known || len(v.Desks) == 0 {
				v.Desks = append(v.Desks, c)
			}
		}
		for _, p := range latest.Parties {
			if !covered[p.ID] {
				v.OtherParties = append(v.OtherParties, inzageParty{Name: p.Name, Contact: contactView(p.Contact)})
			}
		}
	}
	v.Glossary = inzageGlossary
	if vb.Answer != nil && vb.Answer.YoungPerson != nil {
		v.YoungPerson = YoungPersonText(vb.Answer.YoungPerson, relation)
	}

	// Parents read a history: order by when it happened, then by log order.
	ds := slices.Clone(vb.Disclosures)
	slices.SortStableFunc(ds, func(x, y *verifier.VerifiedDisclosure) int {
		if c := x.Disclosure.OccurredAt.Compare(y.Disclosure.OccurredAt); c != 0 {
			return c
		}
		return cmp.Compare(x.Index, y.Index)
	})
	number := map[string]int{}
	for i, vd := range ds {
		number[vd.Disclosure.ID] = i + 1
	}
	perParty := map[string]int{}
	for i, vd := range ds {
		d, c := vd.Disclosure, vd.Covenant
		dv := inzageDisclosure{
			Number:        i + 1,
			Date:          inzageDateTime(d.OccurredAt),
			From:          inzageRedact(c.PartyName(d.Discloser)),
			Purpose:       inzageRedact(c.PurposeLabel(d.Purpose)),
			Justification: inzageRedact(d.Justification),
			Ground:        inzageRedact(c.GroundLabel(d.LegalBasis.Ground)),
			Channel:       channelLabels[d.Channel],
			RecordedAt:    inzageDateTime(vd.IntegratedAt),
			WitnessedBy:   witnessedByNL(vd.WitnessedBy),
			Leaf:          vd.Index,
		}
		if p, ok := c.Party(d.Discloser); ok {
			dv.FromKind = partyKindLabel(p.Kind)
		}
		for _, r := range d.Recipients {
			dv.To = append(dv.To, inzageRedact(inzagePartyName(c, r)))
		}
		special := false
		for _, id := range d.Categories {
			cat, ok := c.Category(id)
			if !ok {
				dv.Categories = append(dv.Categories, inzageCategory{Label: verifier.UnknownValueNL(id)})
				continue
			}
			dv.Categories = append(dv.Categories, inzageCategory{Label: cat.Label, Special: specialLabel(cat.Special)})
			special = special || cat.Special != events.SpecialNone
		}
		if d.LegalBasis.Exception != "" {
			dv.Exception = inzageRedact(c.ExceptionLabel(d.LegalBasis.Exception))
		}
		if d.LegalBasis.Statute != "" {
			dv.Statute = inzageRedact(c.StatuteLabel(d.LegalBasis.Statute))
		}
		// Consent is shown where it is the legal basis, and wherever one
		// was recorded; elsewhere "no consent" would suggest one was
		// needed.
		basis := consentIsBasis(c, d)
		v.AnyConsentBasis = v.AnyConsentBasis || basis
		switch {
		case d.Consent != nil:
			who := consentGiverLabels[d.Consent.GivenBy]
			if who == "" {
				who = string(d.Consent.GivenBy)
			}
			dv.Consent = fmt.Sprintf("Ja, gegeven door %s (kenmerk: %s)", who, inzageRedact(d.Consent.Reference))
		case basis:
			dv.Consent = "Er is geen toestemming vastgelegd."
		}
		days := c.RetentionDaysFor(d.Categories)
		due := vd.IntegratedAt.Add(time.Duration(days) * 24 * time.Hour)
		dv.RetainedUntil = inzageDate(due)
		dv.Expired = !b.CreatedAt.Before(due)
		dv.Retention = fmt.Sprintf("bewaartermijn %s na vastlegging, volgens versie %d van het convenant", retentionPeriodNL(days), c.Version)
		dv.Role = inzageRedact(c.RoleLabel(d.Actor.Role)) + ", namens " + dv.From
		if d.Corrects != "" {
			if n, ok := number[d.Corrects]; ok {
				dv.Corrects = fmt.Sprintf("Dit is een correctie van verstrekking %d hierboven.", n)
			} else {
				dv.Corrects = "Dit is een correctie van een eerdere vastlegging van dezelfde organisatie."
			}
		}
		for _, f := range vd.Findings {
			dv.Findings = append(dv.Findings, inzageRedact(inzageFindingNL(c, d, f)))
		}
		if special {
			v.Special++
		}
		if len(dv.Findings) > 0 {
			v.WithFinding++
		}
		perParty[dv.From]++
		v.Disclosures = append(v.Disclosures, dv)
	}
	v.Count = len(ds)
	if len(ds) > 0 {
		first, last := inzageDate(ds[0].Disclosure.OccurredAt), inzageDate(ds[len(ds)-1].Disclosure.OccurredAt)
		if first == last {
			v.Period = "op " + first
		} else {
			v.Period = "van " + first + " tot en met " + last
		}
	}
	for name, n := range perParty {
		v.ByDiscloser = append(v.ByDiscloser, inzageCount{name, n})
	}
	slices.SortFunc(v.ByDiscloser, func(x, y inzageCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})

	for _, w := range vb.Withheld {
		ground, _ := lookup(withholdLabels, w.Ground)
		v.Withheld = append(v.Withheld, inzageWithheld{RecordedAt: inzageDateTime(w.IntegratedAt), Ground: ground, Leaf: w.Index})
	}
	for _, e := range vb.Erased {
		why := "de bewaartermijn was voorbij"
		if ground, ok := strings.CutPrefix(e.RuleID, verifier.ErasureRulePrefix); ok {
			why = "op verzoek: " + ErasureGroundLabel(ground)
		}
		v.Erased = append(v.Erased, inzageErased{ErasedAt: inzageDateTime(e.ErasedAt), Why: why, Rule: e.RuleID, Leaf: e.Index, ErasedLeaf: e.ErasedIndex})
	}

	cp := vb.Checkpoint
	versions := "versie 1"
	if n := len(vb.Covenants); n > 1 {
		versions = "versies 1 tot en met " + strconv.Itoa(vb.Covenants[n-1].Signed.Covenant.Version)
	}
	v.Check = inzageCheck{
		Origin:      cp.Origin,
		Size:        cp.Size,
		Root:        base64.StdEncoding.EncodeToString(cp.Hash[:]),
		CosignedAt:  inzageDateTime(cp.CosignedAt),
		LogKey:      vb.LogKey,
		CosignerKey: vb.CosignerKey,
		AdminKey:    vb.AdminKey,
		Versions:    versions,
	}
	if a := vb.Answer; a != nil {
		v.Check.AnswerLeaf, v.Check.AnswerAt = strconv.FormatUint(a.Index, 10), inzageDateTime(a.IntegratedAt)
	}
	if c := vb.Completeness; c != nil && len(vb.Covenants) > 0 {
		latest := vb.Covenants[len(vb.Covenants)-1].Signed.Covenant
		v.Check.Complete, v.Check.CompleteBefore, v.Check.Later, v.Check.ErasuresFrom = true, c.TreeSize, len(c.Later), c.ErasuresFrom
		for _, p := range c.Parties {
			v.Check.CompleteFor = append(v.Check.CompleteFor, inzagePartyName(latest, p))
		}
		v.Check.SearchedBy, v.Check.NotSearchedBy = idTypeNL(c.IDType), idTypeNL(events.IDTypeOnderwijsnummer)
		if c.IDType == events.IDTypeOnderwijsnummer {
			v.Check.NotSearchedBy = idTypeNL(events.IDTypeBSN)
		}
	}
	if wc := vb.Witnesses; wc != nil {
		for _, cs := range wc.Cosigned {
			v.Check.Witnesses = append(v.Check.Witnesses, inzageWitness{Name: cs.Witness, At: inzageDateTime(cs.Time)})
		}
		v.Check.WitnessedBy = inzageDateTime(wc.LatestAt)
	}
	return v
}

// inzageFindingNL turns a finding into a Dutch sentence: the rule's Dutch
// name, and for a data category the category's label.
func inzageFindingNL(c *events.Covenant, d *events.Disclosure, f events.Finding) string {
	label := events.FindingLabelNL(f.Rule)
	var i int
	if _, err := fmt.Sscanf(f.Field, "categories[%d]", &i); err == nil && i >= 0 && i < len(d.Categories) {
		return label + ": " + inzageCategoryLabel(c, d.Categories[i])
	}
	if _, err := fmt.Sscanf(f.Field, "recipients[%d]", &i); err == nil && i >= 0 && i < len(d.Recipients) {
		return label + ": " + inzagePartyName(c, d.Recipients[i])
	}
	return label
}

// consentIsBasis reports whether consent is the legal basis of d: ground
// a of AVG art. 6(1), or explicit consent as the exception of AVG art.
// 9(2)(a), or a ground or exception that covenant c's consent rules say is
// consent.
func consentIsBasis(c *events.Covenant, d *events.Disclosure) bool {
	lb := d.LegalBasis
	cr := c.Rules.Consent
	return lb.Ground == "a" || slices.Contains(cr.RequiredForGrounds, lb.Ground) ||
		(lb.Exception != "" && (lb.Exception == "avg-9-2-a" || slices.Contains(cr.RequiredForExceptions, lb.Exception)))
}

// retentionPeriodNL says a retention period in days in Dutch: whole years
// as years ("5 jaar"), anything else in days.
func retentionPeriodNL(days int) string {
	switch {
	case days > 0 && days%365 == 0:
		return strconv.Itoa(days/365) + " jaar"
	case days == 1:
		return "1 dag"
	}
	return strconv.Itoa(days) + " dagen"
}

// witnessedByNL is the Dutch date and time of a witnessed-by bound, or ""
// when there is none.
func witnessedByNL(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return inzageDateTime(t)
}

// YoungPersonText is the Dutch sentence for a recorded young-person
// decision: why an answer about a young person of 16 or over went to the
// parent or guardian (relation, in Dutch) who asked. Only what the answer
// entry says is printed.
func YoungPersonText(y *verifier.AnswerYoungPerson, relation string) string {
	leaves := make([]string, len(y.Leaves))
	for i, n := range y.Leaves {
		leaves[i] = strconv.FormatUint(n, 10)
	}
	which := "vastlegging (regel " + leaves[0] + ")"
	if len(leaves) > 1 {
		which = fmt.Sprintf("%d vastleggingen (regels %s)", len(leaves), strings.Join(leaves, ", "))
	}
	return fmt.Sprintf("Volgens %s is uw kind 16 jaar of ouder. Vanaf 16 jaar vraagt de jongere zelf om inzage "+
		"(AVG artikel 8, UAVG artikel 5). U krijgt dit antwoord als %s, omdat de jongere daar toestemming voor gaf. "+
		"Een tweede medewerker van het privacyloket heeft die toestemming vastgelegd (kenmerk: %s).", which, relation, y.ConsentReference)
}
