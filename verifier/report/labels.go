package report

// This file is the one table of the Dutch words the reports show to people
// for Spoor's own ids: the audit's checks, the statuses of erasure
// proposals and their grounds, the grounds for withholding an entry, the
// requester's
// relation, the channels and consent givers of a disclosure, the kinds of
// party, and the wording of a special category. labels_test.go fails when
// an id lacks its word.
//
// The audit's check names are in labels_audit.go, apart only so that a
// build for the browser (js/wasm, spoor verify-page) leaves out the audit
// engine and its HTTP client: the parent's page needs the inzage words only.
//
// Two kinds of Dutch words come from elsewhere, so that they have one home
// too: what a covenant names (its parties, categories, purposes, grounds,
// exceptions, statutes and roles) comes from the covenant itself
// (events.Covenant's label methods), and the names of the covenant's rules
// (findings) come from events.FindingLabelNL, beside the rules they name,
// because the FG's audit JSON (made by the verifier, which this package
// imports) carries them too.

import (
	"errors"
	"fmt"
	"time"

	// Parents and the FG open the reports on any machine, also without a
	// zone database; times are shown in Dutch time.
	_ "time/tzdata"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// zoneNL is the zone the reports show times in.
var zoneNL = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		// time/tzdata is embedded, so this does not happen; UTC is a
		// correct if less friendly fallback.
		return time.UTC
	}
	return loc
}()

// erasureStatusLabels names the statuses of an erasure proposal
// (verifier.ErasureStatuses).
var erasureStatusLabels = map[string]string{
	verifier.ErasureProposed:  "wacht op tweede medewerker",
	verifier.ErasureConfirmed: "bevestigd en verwijderd",
	verifier.ErasureWithdrawn: "ingetrokken",
	verifier.ErasureExpired:   "verlopen",
	verifier.ErasureOvertaken: "al verwijderd door bewaartermijn",
}

// erasureGroundLabels says in plain Dutch why a disclosure may be erased on
// request (verifier.ErasureGrounds): the six grounds of AVG art. 17(1). The
// ids stay in the public tombstone; these words are for the people who read
// the FG's report and the desk's lists.
var erasureGroundLabels = map[string]string{
	"avg-17-1-a": "de gegevens zijn niet meer nodig voor het doel (AVG art. 17 lid 1 a)",
	"avg-17-1-b": "de toestemming is ingetrokken en er is geen andere grond (AVG art. 17 lid 1 b)",
	"avg-17-1-c": "er is bezwaar gemaakt en er is geen zwaarder belang om door te gaan (AVG art. 17 lid 1 c)",
	"avg-17-1-d": "de gegevens zijn onrechtmatig verwerkt (AVG art. 17 lid 1 d)",
	"avg-17-1-e": "een wettelijke plicht zegt dat de gegevens weg moeten (AVG art. 17 lid 1 e)",
	"avg-17-1-f": "de gegevens zijn van een kind verzameld voor een online dienst (AVG art. 17 lid 1 f)",
}

// ErasureGroundLabel is the Dutch description of an erasure ground
// (verifier.ErasureGrounds), for the people who read the desk's and the
// FG's lists; an unknown ground reads as itself, since a raw id is better
// than a blank.
func ErasureGroundLabel(ground string) string { return labelOrID(erasureGroundLabels, ground) }

// relationLabels describes a requester's relation to the child
// (verifier.Relations).
var relationLabels = map[string]string{
	verifier.RelationParent:      "ouder met gezag",
	verifier.RelationGuardian:    "voogd",
	verifier.RelationYoungPerson: "de jongere zelf",
}

// withholdLabels describes the grounds for withholding an entry from an
// access answer (verifier.WithholdGrounds).
var withholdLabels = map[string]string{
	verifier.WithholdAVG23:  "AVG art. 23 (beperking van het inzagerecht, bijvoorbeeld ter bescherming van de betrokkene of van anderen)",
	verifier.WithholdUAVG41: "UAVG art. 41 (uitzondering op het inzagerecht, bijvoorbeeld ter bescherming van de rechten en vrijheden van anderen)",
}

// ErasureStatusLabel returns the Dutch words for an erasure proposal's
// status (verifier.ErasureStatuses), as the FG's console and the desk
// show it.
func ErasureStatusLabel(status string) string { return labelOrID(erasureStatusLabels, status) }

// RelationLabel is the Dutch description of a requester's relation to the
// child (verifier.RelationParent, ...), for the desk's pages.
func RelationLabel(relation string) string { return labelOrID(relationLabels, relation) }

// WithholdGroundLabel is the Dutch description of a ground for withholding
// an entry from an access answer (verifier.WithholdGrounds).
func WithholdGroundLabel(ground string) string { return labelOrID(withholdLabels, ground) }

// channelLabels says how a disclosure was made (events.Channels).
var channelLabels = map[string]string{
	"mdo":       "in een multidisciplinair overleg (MDO)",
	"system":    "via een informatiesysteem",
	"email":     "per e-mail",
	"phone":     "telefonisch",
	"letter":    "per brief",
	"in-person": "persoonlijk",
}

// consentGiverLabels says who gave consent.
var consentGiverLabels = map[events.ConsentGiver]string{
	events.ConsentParents:         "de ouders",
	events.ConsentChildAndParents: "het kind en de ouders",
	events.ConsentYoungPerson:     "de jongere zelf",
}

// partyKindLabels names the kinds of party (events.PartyKinds).
var partyKindLabels = map[events.PartyKind]string{
	events.KindGemeente:               "Gemeente",
	events.KindSWV:                    "Samenwerkingsverband passend onderwijs",
	events.KindSchoolbestuur:          "Schoolbestuur",
	events.KindUitvoeringsorganisatie: "Uitvoeringsorganisatie",
	events.KindWijkteam:               "Wijkteam",
	events.KindJeugdhulp:              "Jeugdhulpaanbieder",
	events.KindGGD:                    "GGD / jeugdgezondheidszorg",
	events.KindWelzijn:                "Welzijnsorganisatie",
}

// specialLabels marks a special category of personal data, in both the
// parent's and the FG's report.
var specialLabels = map[events.Special]string{
	events.SpecialArt9:  "bijzonder persoonsgegeven (AVG art. 9)",
	events.SpecialArt10: "strafrechtelijk persoonsgegeven (AVG art. 10)",
}

// lookup returns the label of id in table and whether there is one.
func lookup[K comparable](table map[K]string, id K) (string, bool) {
	l, ok := table[id]
	return l, ok
}

// labelOrID returns the label of id in table, or id itself when there is
// none: a raw id is better than a blank in the FG's report.
func labelOrID[K ~string](table map[K]string, id K) string {
	if l, ok := table[id]; ok {
		return l
	}
	return string(id)
}

// specialLabel is how a report marks a special category; "" for none.
func specialLabel(s events.Special) string { return specialLabels[s] }

// partyKindLabel is the Dutch name of a kind of party.
func partyKindLabel(k events.PartyKind) string { return labelOrID(partyKindLabels, k) }

// bundleProblemLabels says in plain Dutch (B1) what a failed check of an
// inzage bundle means for the reader, one sentence per class of failure
// (the sentinels of verifier.VerifyBundle), in the order they are tried:
// ErrPinnedKeys first, since without the keys nothing else was checked.
// The parent's page (spoor verify-page) shows these; the English message
// of the check stays beside them for the helpdesk.
var bundleProblemLabels = []struct {
	class error
	nl    string
}{
	{verifier.ErrPinnedKeys, "Deze controlepagina mist een sleutel van het register of van de beheerder. Vraag een nieuwe pagina aan."},
	{verifier.ErrBundleMalformed, "Het bestand is geen inzagebestand, of het is beschadigd of ingekort."},
	{verifier.ErrBundleKeys, "Het bestand noemt andere sleutels dan de sleutels op deze pagina. Het komt van een ander register, of iemand heeft het veranderd."},
	{verifier.ErrCheckpoint, "De handtekening van het register onder het bestand klopt niet met de sleutels op deze pagina."},
	{verifier.ErrWitnesses, "Er hebben niet genoeg onafhankelijke getuigen bevestigd wat het register zegt."},
	{verifier.ErrCovenant, "Een versie van het convenant klopt niet: de beheerder heeft haar niet ondertekend, of het is niet de versie die toen gold."},
	{verifier.ErrSignature, "De handtekening van een organisatie onder een verstrekking klopt niet, of haar sleutel gold toen niet."},
	{verifier.ErrOtherSubject, "Het bestand bevat een verstrekking over een ander kind."},
	{verifier.ErrAnswer, "Wat het bestand over uw verzoek zegt, is niet wat het register heeft vastgelegd."},
	{verifier.ErrIncomplete, "Het bestand bewijst niet dat het volledig is. Er ontbreekt een vastlegging over uw kind, of een bewijs daarvan."},
	{verifier.ErrInclusion, "Een vastlegging staat niet in het register zoals het bestand zegt. Iemand heeft het bestand veranderd."},
	{verifier.ErrLeafMismatch, "Een vastlegging past niet bij wat het bestand laat zien. Iemand heeft het bestand veranderd."},
}

// BundleProblemNL says in plain Dutch what a problem of
// verifier.VerifyBundle means, and which entry of the register it is
// about when there is one. An error of none of the known classes reads as
// a general failure, never as a pass.
func BundleProblemNL(err error) string {
	text := "Het bestand kon niet worden gecontroleerd."
	for _, l := range bundleProblemLabels {
		if errors.Is(err, l.class) {
			text = l.nl
			break
		}
	}
	var be *verifier.BundleError
	if errors.As(err, &be) && be.HasLeaf {
		text += fmt.Sprintf(" Het gaat om vastlegging nummer %d in het register.", be.Leaf)
	}
	return text
}

// ageBandLabels are the Dutch names of the age bands a disclosure records.
var ageBandLabels = map[events.AgeBand]string{
	events.AgeUnder12: "jonger dan 12 jaar",
	events.Age12To15:  "12 tot en met 15 jaar",
	events.Age16Plus:  "16 jaar of ouder",
}

// AgeBandLabel returns the Dutch name of an age band, or the id itself
// when it has none.
func AgeBandLabel(b events.AgeBand) string { return labelOrID(ageBandLabels, b) }

// entryTypeLabels are the Dutch names of the log's entry types.
var entryTypeLabels = map[verifier.EntryType]string{
	verifier.EntryDisclosure: "verstrekking",
	verifier.EntryCovenant:   "convenantversie",
	verifier.EntryTombstone:  "wissing (grafsteen)",
	verifier.EntryAnswer:     "antwoord op een inzageverzoek",
	verifier.EntryIndexHead:  "kop van de index per kind",
}

// EntryTypeLabel returns the Dutch name of an entry type; a type this
// version does not know is named as such.
func EntryTypeLabel(t verifier.EntryType) string {
	if l, ok := entryTypeLabels[t]; ok {
		return l
	}
	return fmt.Sprintf("onbekende soort vermelding (%d)", t)
}
