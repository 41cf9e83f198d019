package report

// This file is the parent's report's word list ("Woordenlijst"): every
// legal or technical term the page uses, explained in plain Dutch (B1).
// inzage_b1_test.go fails when the page uses a term of its list of jargon
// that has no entry here, or when a sentence here is too long.

// glossaryEntry is one term of the word list and what it means.
type glossaryEntry struct {
	Term    string
	Meaning string
}

// inzageGlossary is the word list, in alphabetical order, as the page
// shows it.
var inzageGlossary = []glossaryEntry{
	{"AVG", "Algemene verordening gegevensbescherming. Dat is de Europese wet over privacy."},
	{"Autoriteit Persoonsgegevens", "De toezichthouder voor privacy in Nederland. U kunt daar een klacht indienen."},
	{"betrokkene", "De persoon over wie de gegevens gaan. In dit overzicht is dat uw kind."},
	{"bewaartermijn", "Hoe lang een vastlegging bewaard mag blijven. Daarna wordt zij verwijderd. Het convenant bepaalt de termijn."},
	{"bijzonder persoonsgegeven", "Een extra gevoelig gegeven, bijvoorbeeld over gezondheid. De wet beschermt zulke gegevens extra (AVG artikel 9)."},
	{"BSN", "Burgerservicenummer: het persoonlijke nummer van uw kind bij de overheid."},
	{"bundel", "Het bestand dat bij dit overzicht hoort. Daarin staan alle vastleggingen, met hun handtekeningen en bewijzen."},
	{"checkpoint", "Een ondertekende verklaring van het register. Die zegt hoeveel regels het register heeft en wat het controlegetal is."},
	{"controlegetal (root hash)", "Een getal dat uit alle regels van het register wordt berekend. Verandert er één regel, dan verandert dit getal ook."},
	{"convenant", "De afspraken tussen de organisaties over het delen van gegevens over kinderen. Het zegt ook hoe lang gegevens bewaard blijven."},
	{"convenantbeheer", "De organisatie die het convenant beheert en elke versie ervan ondertekent."},
	{"digitale handtekening", "Een code die alleen de eigenaar van een sleutel kan maken. Zo ziet u wie iets heeft vastgelegd."},
	{"FG", "Functionaris gegevensbescherming. Dat is de interne toezichthouder op privacy van een organisatie."},
	{"getuige", "Een onafhankelijke organisatie die bevestigt wat er op een moment in het register stond."},
	{"gezag", "Het recht en de plicht om voor een kind te zorgen en voor het kind te beslissen. Meestal hebben de ouders samen het gezag."},
	{"inclusiebewijs", "Een wiskundig bewijs dat een vastlegging in het register staat, op een bepaalde regel."},
	{"inzagerecht", "Het recht om te weten welke gegevens een organisatie over uw kind heeft. En met wie zij die deelde (AVG artikel 15)."},
	{"inzageverzoek", "Uw vraag welke gegevens over uw kind zijn gedeeld. U gebruikt daarmee uw inzagerecht."},
	{"kenmerk", "Het nummer van uw verzoek of van een document. Noem het als u contact opneemt."},
	{"MDO", "Multidisciplinair overleg: een overleg van mensen van verschillende organisaties over een kind."},
	{"privacyloket", "De plek die inzageverzoeken beantwoordt, voor één of meer organisaties."},
	{"onderwijsnummer", "Het nummer van een leerling op school. Het is gelijk aan het BSN als de leerling dat heeft."},
	{"pseudoniem", "Een code die in plaats van het BSN in het register staat. Alleen het privacyloket kan die code maken."},
	{"publieke taak", "Een taak die een organisatie volgens de wet heeft, zoals een gemeente die jeugdhulp regelt."},
	{"register", "Het logboek waarin elke verstrekking wordt vastgelegd. Niemand kan daar ongemerkt iets uit weghalen of in veranderen."},
	{"regel", "Eén vastlegging in het register. Elke regel heeft een volgnummer."},
	{"sleutel", "Een geheim getal waarmee een organisatie digitaal ondertekent. Met het openbare deel ervan controleert u die handtekening."},
	{"strafrechtelijk persoonsgegeven", "Een gegeven over een strafbaar feit of een straf. De wet beschermt zulke gegevens extra (AVG artikel 10)."},
	{"UAVG", "Uitvoeringswet AVG. Dat is de Nederlandse wet die bij de AVG hoort."},
	{"vastlegging", "Een melding in het register, bijvoorbeeld van een verstrekking."},
	{"verstrekking", "Eén keer dat een organisatie gegevens over uw kind met een andere organisatie deelde."},
	{"vingerafdruk", "Een korte code die bij precies één sleutel hoort. Zo kunt u twee sleutels snel vergelijken."},
	{"voogd", "Iemand die het gezag over een kind heeft, maar geen ouder is. Een rechter wijst een voogd aan."},
}
