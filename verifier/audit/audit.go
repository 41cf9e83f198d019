package audit

// This file is the FG's audit: it reads a whole log through a Source
// (a stopped store, a live ledger, or the ledger's HTTP API) and checks it
// from the bottom up, trusting only the pinned keys.
//
// Data flows through Run in one pass, oldest first:
//
//	checkpoints --OpenCheckpoint--> sizes and roots to meet, checked against each other
//	entries [0, size) --LeafHash--> compact range --root at every checkpoint size--> compare
//	                 --SHA-256(body) = record's body hash--> envelope or covenant trusted
//	covenant entries --ParseSignedCovenant, Chain--> the versions in force, by leaf index
//	disclosures --events.Open(version named by the record)--> signature, key in force
//	            --Check + CheckRecording--> findings, compared with the stored ones
//	            --counts per party, purpose, category, rule; daily series--> statistics
//
// The pass is a bounded pipeline (entriesParallel): the source is read on
// the calling goroutine, workers open the envelopes (the signatures are
// nearly all of the cost) on every core, and one goroutine applies the
// results in log order, so that the tree, the covenant chain, the problems
// and the statistics come out exactly as in a pass on one goroutine
// (Config.Workers = 1).
//
// What fails an integrity check (a stored byte that disagrees with what the
// log committed to, a signature that does not verify, a rule result the
// ledger stored wrongly) is a Problem: the log cannot be relied on as
// it stands. Covenant findings and statistical anomalies are not problems:
// they describe disclosures that did happen and were recorded faithfully,
// which is what the FG reads the report for.
//
// No pseudonym ever enters the report: subjects are never named, and an
// actor is named by ActorRef, a hash of the party and the staff id.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Amsterdam days on machines without a zoneinfo database.

	"github.com/transparency-dev/merkle/compact"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/verifier"
)

// Source is where Run reads a log. Implementations: ledger's store
// and ledger sources (ledger/auditsource.go) and HTTPSource.
type Source interface {
	// Checkpoints returns every kept checkpoint, in the order the log made
	// them (ascending Seq).
	Checkpoints(ctx context.Context) ([]StoredCheckpoint, error)
	// Entries calls fn for each stored entry with an index in [from, to),
	// in ascending index order. An index whose leaf record is missing is
	// skipped; Run notices the gap. An error from fn stops the walk and
	// is returned.
	Entries(ctx context.Context, from, to uint64, fn func(*Entry) error) error
}

// TileSource is implemented by sources that can also read the stored
// level-0 hash tiles. Run then compares every leaf record with the hash
// the tiles hold for it, which names an altered or removed leaf record
// precisely instead of only seeing that a checkpoint's root differs.
type TileSource interface {
	// LeafTile returns level-0 tile n with at least width hashes.
	LeafTile(ctx context.Context, n uint64, width int) ([]byte, error)
}

// TailSource is implemented by sources over a store that nothing is
// writing to (a stopped ledger or a backup): there, a leaf record beyond
// the newest checkpoint means a batch was committed without its
// checkpoint, or a record was planted.
type TailSource interface {
	// LastLeafIndex returns the highest index holding a leaf record, and
	// false when there is none.
	LastLeafIndex(ctx context.Context) (uint64, bool, error)
}

// StoredCheckpoint is one kept checkpoint: its number among all the log's
// checkpoints (1, 2, ...) and the signed note.
type StoredCheckpoint struct {
	Seq  uint64
	Note []byte
}

// Entry is one stored entry as a Source reads it.
type Entry struct {
	// Index is the leaf index.
	Index uint64
	// LeafRecord is the stored leaf record's bytes.
	LeafRecord []byte
	// Body is the stored entry body (a disclosure's canonical envelope, a
	// signed covenant, a tombstone), or nil when none is stored (erased).
	Body []byte
	// BodyError, when set, says why the stored body could not be read
	// (for example an envelope sealed at rest that does not decrypt); Body
	// is then what is stored, and Run reports the leaf.
	BodyError string
	// Findings are the covenant findings the ledger stored for the entry.
	Findings []events.Finding
}

// Config configures Run. Keys is required.
type Config struct {
	// Keys are the pinned log and cosigner keys.
	Keys *verifier.LogKeys
	// AdminVkey pins the covenant administrator's verifier key. Empty means
	// covenant version 1 is trusted with the key it names itself, which the
	// report says.
	AdminVkey string
	// Progress, if set, is called now and then with the number of entries
	// checked and the number to check: never concurrently, but not
	// necessarily on the goroutine that called Run.
	Progress func(done, total uint64)
	// Location is the time zone whose calendar days the daily volumes
	// count; nil means Europe/Amsterdam.
	Location *time.Location
	// MinPartyDailyCount and MinActorDailyCount are the smallest daily
	// volumes reported as anomalous; zero means 20 and 10.
	MinPartyDailyCount, MinActorDailyCount int
	// Now is the clock for the report's time; nil means time.Now.
	Now func() time.Time
	// Workers is how many goroutines open and check envelopes, the costly
	// part (a signature each); 0 means GOMAXPROCS. With 1 the audit runs
	// on the calling goroutine alone. The report does not depend on it.
	Workers int
	// ErasureDailyLimit is the most erasures on request one desk scope may
	// confirm on one day before the report flags it; 0 means
	// DefaultErasureDailyLimit.
	ErasureDailyLimit int
	// OnFinding, if set, is called for every verified disclosure that
	// breaks a covenant rule, in log order and never concurrently: the
	// FG's console lists them one by one, where the report only counts
	// them. What it hands over includes the discloser's own words and no
	// pseudonym; the caller decides where they may go.
	OnFinding func(FindingDisclosure)
	// WitnessSkew is how far a leaf's integrated_at may lie outside the
	// times the witnesses state (see Witnessing); 0 means
	// DefaultWitnessSkew.
	WitnessSkew time.Duration
}

// The parameters of the volume statistic. They are written into every
// report (VolumeDefinition) so that a reader knows what was measured.
const (
	// VolumeWindowDays is the trailing window a day is compared with.
	VolumeWindowDays = 28
	// VolumeMinHistoryDays is the fewest days of history (within the
	// window, from the series' first disclosure on) needed to judge a day.
	VolumeMinHistoryDays = 14
	// VolumeMADFactor multiplies the median absolute deviation.
	VolumeMADFactor = 5
	// defaultMinPartyDaily and defaultMinActorDaily are the default
	// minimum counts (see Config).
	defaultMinPartyDaily = 20
	defaultMinActorDaily = 10
)

// maxListed bounds the items listed per problem check and per anomaly
// kind; the rest are counted. A report of a damaged or noisy log stays
// readable and its size bounded.
const maxListed = 200

// listCaps lowers maxListed for checks whose failures cascade: once one
// leaf is wrong, every later checkpoint's root differs too, and the first
// few say all there is to say.
var listCaps = map[Check]int{CheckCheckpointRoot: 5}

// Report is what Run found. It is JSON-able; no field holds a
// pseudonym or personal data.
type Report struct {
	// Origin is the log audited.
	Origin string `json:"origin"`
	// GeneratedAt is when the audit ran.
	GeneratedAt time.Time `json:"generated_at"`
	// LogKey, CosignerKey and AdminKey are the fingerprints of the keys
	// trusted. AdminPinned is false when no administrator key was pinned
	// and version 1's own key was trusted.
	LogKey      string `json:"log_key"`
	CosignerKey string `json:"cosigner_key"`
	AdminKey    string `json:"admin_key,omitempty"`
	AdminPinned bool   `json:"admin_pinned"`
	// OK is true when no integrity check failed (Problems is empty).
	OK bool `json:"ok"`
	// TreeSize is the size of the newest verified checkpoint: the entries
	// audited are [0, TreeSize).
	TreeSize uint64 `json:"tree_size"`
	// Checkpoints summarises the kept checkpoints.
	Checkpoints CheckpointSummary `json:"checkpoints"`
	// Entries counts the entries by kind.
	Entries EntryCounts `json:"entries"`
	// Covenants are the covenant versions found in the log.
	Covenants []CovenantVersionInfo `json:"covenants"`
	// Problems are the failed integrity checks, at most a few hundred per
	// check (five for checkpoint-root, whose failures cascade);
	// ProblemCounts counts all of them by check.
	Problems      []Problem     `json:"problems"`
	ProblemCounts map[Check]int `json:"problem_counts"`
	// ByParty, ByPurpose, ByCategory and ByRule count the disclosures
	// whose envelopes are stored and verify (erased ones cannot be read).
	ByParty    []PartyStats    `json:"by_party"`
	ByPurpose  []TermCount     `json:"by_purpose"`
	ByCategory []CategoryCount `json:"by_category"`
	ByRule     []RuleCount     `json:"by_rule"`
	// Anomalies are the statistics the FG looks at, each with its
	// definition.
	Anomalies Anomalies `json:"anomalies"`
	// ErasuresOnRequest lists the erasure proposals and decisions, and
	// flags scopes that erase more than the stated daily number.
	ErasuresOnRequest *ErasuresOnRequest `json:"erasures_on_request"`
	// Witnessing checks the witnessed checkpoints against the covenant's
	// witness policy and the entries' times against the witnesses'; nil
	// (and absent from the JSON) when no covenant version has a policy.
	Witnessing *Witnessing `json:"witnessing,omitempty"`
	// Answers lists every inzage answer on the record, with what it
	// withheld and on which ground: the FG sees every withholding.
	Answers []AnswerInfo `json:"answers,omitempty"`
	// Index is what the audit found of the subject index (its heads, and
	// the recomputation of the last one); zero for a log without one.
	Index IndexReport `json:"index,omitzero"`
	// TimeNote says what kind of time the report's times are.
	TimeNote string `json:"time_note"`
}

// AnswerInfo is one answer entry as the FG sees it.
type AnswerInfo struct {
	Leaf        uint64                    `json:"leaf"`
	RequestID   string                    `json:"request_id"`
	Relation    string                    `json:"relation"`
	ReleasedAt  time.Time                 `json:"released_at"`
	RequestedBy string                    `json:"requested_by"`
	ReleasedBy  string                    `json:"released_by"`
	Parties     []string                  `json:"parties"`
	CentralDesk bool                      `json:"central_desk"`
	TreeSize    uint64                    `json:"tree_size"`
	Included    int                       `json:"included"`
	Withheld    []verifier.AnswerWithheld `json:"withheld"`
	Erased      int                       `json:"erased"`
	// YoungPerson is the decision recorded for a parent or guardian asking
	// about a young person of 16 or over (their consent, by reference).
	YoungPerson *verifier.AnswerYoungPerson `json:"young_person,omitempty"`
}

// FindingDisclosure is one verified disclosure that breaks at least one
// covenant rule, as Config.OnFinding receives it. Justification and CaseRef
// are written by the sender: whoever shows them must treat them as
// untrusted text.
type FindingDisclosure struct {
	Leaf            uint64
	Discloser       string
	Recipients      []string
	Purpose         string
	Categories      []string
	OccurredAt      time.Time
	IntegratedAt    time.Time
	CovenantVersion int
	// Rules are the rules broken, each once, in the order found.
	Rules         []string
	Justification string
}

// CheckpointSummary summarises the kept checkpoints.
type CheckpointSummary struct {
	// Count is the number of kept checkpoints; Verified how many of them
	// verify with the pinned keys.
	Count    int `json:"count"`
	Verified int `json:"verified"`
	// Newest is the newest verified checkpoint.
	Newest *CheckpointInfo `json:"newest,omitempty"`
	// FirstCosignedAt and LastCosignedAt span the log's own cosignature
	// times of the verified checkpoints.
	FirstCosignedAt time.Time `json:"first_cosigned_at,omitzero"`
	LastCosignedAt  time.Time `json:"last_cosigned_at,omitzero"`
}

// CheckpointInfo describes one checkpoint.
type CheckpointInfo struct {
	Seq        uint64    `json:"seq"`
	Size       uint64    `json:"size"`
	Root       string    `json:"root"`
	CosignedAt time.Time `json:"cosigned_at"`
}

// EntryCounts counts the audited entries by kind.
type EntryCounts struct {
	Disclosures int `json:"disclosures"`
	Covenants   int `json:"covenants"`
	Tombstones  int `json:"tombstones"`
	// Answers counts inzage answers on the record (answer entries).
	Answers int `json:"answers,omitempty"`
	// AnswersErased counts answers whose body is no longer stored (erased
	// after the covenant's answer retention); Report.Answers lists only
	// those whose body is there to read.
	AnswersErased int `json:"answers_erased,omitempty"`
	// IndexHeads counts subject index heads (entry type 5).
	IndexHeads int `json:"index_heads,omitempty"`
	// Erased counts disclosures whose envelope is no longer stored.
	Erased int `json:"erased"`
	// Unreadable counts entries that could not be checked (a missing or
	// malformed leaf record, an envelope that does not verify).
	Unreadable int `json:"unreadable"`
}

// CovenantVersionInfo describes one covenant version in the log.
type CovenantVersionInfo struct {
	Version       int       `json:"version"`
	Leaf          uint64    `json:"leaf"`
	Name          string    `json:"name"`
	EffectiveFrom time.Time `json:"effective_from"`
	AdminKey      string    `json:"admin_key"`
	Parties       int       `json:"parties"`
}

// Problem is one failed integrity check.
type Problem struct {
	// Check is the check that failed, a stable id (Checks lists them).
	Check Check `json:"check"`
	// Leaf is the leaf index concerned, if any.
	Leaf *uint64 `json:"leaf,omitempty"`
	// Checkpoint is the sequence number of the checkpoint concerned, if any.
	Checkpoint *uint64 `json:"checkpoint,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats the problem on one line, naming the leaf or checkpoint.
func (p Problem) String() string {
	var where string
	switch {
	case p.Leaf != nil:
		where = fmt.Sprintf(" (leaf %d)", *p.Leaf)
	case p.Checkpoint != nil:
		where = fmt.Sprintf(" (checkpoint %d)", *p.Checkpoint)
	}
	return string(p.Check) + where + ": " + p.Message
}

// PartyStats counts one party's disclosures.
type PartyStats struct {
	Party string `json:"party"`
	Name  string `json:"name"`
	// Disclosed counts the party's disclosures; Received those naming it
	// as a recipient.
	Disclosed int `json:"disclosed"`
	Received  int `json:"received"`
	// Art9 and Art10 count its disclosures with a special category of
	// that kind.
	Art9  int `json:"art9"`
	Art10 int `json:"art10"`
	// WithFindings counts its disclosures that break a covenant rule.
	WithFindings int `json:"with_findings"`
	// RecordedLate counts its disclosures recorded later than the
	// covenant allows.
	RecordedLate int `json:"recorded_late"`
}

// TermCount counts disclosures per vocabulary term.
type TermCount struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Count int    `json:"count"`
}

// CategoryCount counts disclosures per data category.
type CategoryCount struct {
	ID      string         `json:"id"`
	Label   string         `json:"label"`
	Special events.Special `json:"special,omitempty"`
	Count   int            `json:"count"`
}

// RuleCount counts findings per covenant rule (one per disclosure that
// breaks the rule, however often).
type RuleCount struct {
	Rule  string `json:"rule"`
	Label string `json:"label"`
	Count int    `json:"count"`
}

// Anomalies are the report's statistics, each defined in Definitions.
type Anomalies struct {
	Definitions []AnomalyDefinition `json:"definitions"`
	// Volume lists the days on which a party's or actor's volume exceeded
	// its robust threshold.
	Volume []VolumeAnomaly `json:"volume"`
	// RecordedLate lists disclosures recorded later than the covenant's
	// late_recording_hours; RecordedLateCount counts all of them.
	RecordedLate      []LateRecording `json:"recorded_late"`
	RecordedLateCount int             `json:"recorded_late_count"`
	// SpecialCategories counts, per party, disclosures with special
	// categories (AVG art. 9 and 10).
	SpecialCategories []SpecialCategoryStats `json:"special_categories"`
	// OutsideRecipients lists recipients that are not parties of the
	// covenant version the disclosure was checked against.
	OutsideRecipients      []OutsideRecipient `json:"outside_recipients"`
	OutsideRecipientsCount int                `json:"outside_recipients_count"`
}

// AnomalyDefinition states how one kind of anomaly is measured, in English
// and in Dutch.
type AnomalyDefinition struct {
	Kind   string `json:"kind"`
	Text   string `json:"text"`
	TextNL string `json:"text_nl"`
}

// The anomaly kinds.
const (
	AnomalyVolumeParty       = "volume-party"
	AnomalyVolumeActor       = "volume-actor"
	AnomalyRecordedLate      = "recorded-late"
	AnomalySpecialCategories = "special-categories"
	AnomalyOutsideRecipient  = "recipient-outside-covenant"
)

// VolumeAnomaly is one day on which a party (Actor empty) or an actor of
// a party disclosed more than its threshold.
type VolumeAnomaly struct {
	Kind  string `json:"kind"`
	Party string `json:"party"`
	// Actor is the ActorRef of the staff member, for volume-actor.
	Actor string `json:"actor,omitempty"`
	// Day is the calendar day (YYYY-MM-DD) of occurred_at.
	Day   string `json:"day"`
	Count int    `json:"count"`
	// Median and MAD are of the daily counts in the trailing window of
	// HistoryDays days; Threshold = Median + 5 * max(MAD, 1).
	Median      float64 `json:"median"`
	MAD         float64 `json:"mad"`
	Threshold   float64 `json:"threshold"`
	HistoryDays int     `json:"history_days"`
}

// LateRecording is one disclosure recorded later than the covenant allows.
type LateRecording struct {
	Leaf         uint64    `json:"leaf"`
	Party        string    `json:"party"`
	OccurredAt   time.Time `json:"occurred_at"`
	IntegratedAt time.Time `json:"integrated_at"`
	// Hours is the delay in whole hours; AllowedHours the covenant's limit.
	Hours        int64 `json:"hours"`
	AllowedHours int   `json:"allowed_hours"`
}

// SpecialCategoryStats counts one party's disclosures with special
// categories.
type SpecialCategoryStats struct {
	Party       string `json:"party"`
	Disclosures int    `json:"disclosures"`
	Art9        int    `json:"art9"`
	Art10       int    `json:"art10"`
	// Share is (disclosures with any special category) / Disclosures.
	Share float64 `json:"share"`
	// Categories counts each special category the party disclosed.
	Categories map[string]int `json:"categories"`
}

// OutsideRecipient is one recipient of a disclosure that is not a party of
// the covenant version the disclosure was checked against.
type OutsideRecipient struct {
	Leaf            uint64 `json:"leaf"`
	Party           string `json:"party"`
	Recipient       string `json:"recipient"`
	CovenantVersion int    `json:"covenant_version"`
}

// ActorRef names a staff member of a party in reports without repeating
// the staff id (a pseudonym of a person): the first 16 hex characters of
// SHA-256("spoor/audit/actor/v1" 0x00 party 0x00 staff_id). The party,
// which knows its staff ids, computes the same reference to find who it is.
func ActorRef(party, staffID string) string {
	h := sha256.New()
	h.Write([]byte("spoor/audit/actor/v1\x00"))
	h.Write([]byte(party))
	h.Write([]byte{0})
	h.Write([]byte(staffID))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// volumeDefinitions returns the definitions of the volume anomalies for the
// given minimum counts, as reports print them.
func volumeDefinitions(minParty, minActor int, loc *time.Location) []AnomalyDefinition {
	common := fmt.Sprintf("For every day (calendar day of occurred_at in %s) on which it disclosed, its count is compared "+
		"with its daily counts over the %d days before that day (days without disclosures count as 0; days before its first "+
		"disclosure in the log are left out, and a day with fewer than %d such days of history is not judged). "+
		"Threshold = median + %d x max(MAD, 1), where MAD is the median absolute deviation from the median (unscaled). "+
		"A day is reported when its count exceeds the threshold", loc, VolumeWindowDays, VolumeMinHistoryDays, VolumeMADFactor)
	commonNL := fmt.Sprintf("Voor elke dag (kalenderdag van occurred_at, tijdzone %s) waarop verstrekt is, wordt het aantal "+
		"vergeleken met de aantallen per dag over de %d dagen ervoor (dagen zonder verstrekking tellen als 0; dagen voor de "+
		"eerste verstrekking in het logboek tellen niet mee, en een dag met minder dan %d dagen geschiedenis wordt niet "+
		"beoordeeld). Drempel = mediaan + %d x max(MAD, 1), met MAD de mediaan van de absolute afwijkingen van de mediaan "+
		"(ongeschaald). Een dag wordt gemeld als het aantal boven de drempel ligt", loc, VolumeWindowDays, VolumeMinHistoryDays, VolumeMADFactor)
	return []AnomalyDefinition{
		{Kind: AnomalyVolumeParty,
			Text:   "Daily volume of a party (the discloser). " + common + fmt.Sprintf(" and is at least %d.", minParty),
			TextNL: "Aantal verstrekkingen per dag van een partij (de verstrekker). " + commonNL + fmt.Sprintf(" en minstens %d is.", minParty)},
		{Kind: AnomalyVolumeActor,
			Text: "Daily volume of an actor (a party's staff member, named by a reference: the first 16 hex characters of " +
				"SHA-256(\"spoor/audit/actor/v1\" 0x00 party 0x00 staff_id), which the party can recompute). " + common +
				fmt.Sprintf(" and is at least %d.", minActor),
			TextNL: "Aantal verstrekkingen per dag van een medewerker van een partij (aangeduid met een verwijzing: de eerste 16 " +
				"hextekens van SHA-256(\"spoor/audit/actor/v1\" 0x00 partij 0x00 medewerker-id), die de partij zelf kan " +
				"narekenen). " + commonNL + fmt.Sprintf(" en minstens %d is.", minActor)},
	}
}

var otherDefinitions = []AnomalyDefinition{
	{Kind: AnomalyRecordedLate,
		Text: "Recorded later than the covenant's late_recording_hours (of the version the disclosure was checked against): " +
			"integrated_at (the ledger's time of recording, committed in the leaf record) minus occurred_at (the discloser's " +
			"own statement) exceeds the limit.",
		TextNL: "Later vastgelegd dan late_recording_hours van het convenant (de versie waartegen de verstrekking is " +
			"gecontroleerd): integrated_at (het moment van vastleggen door het logboek, vastgelegd in het leaf record) min " +
			"occurred_at (de opgave van de verstrekker) is groter dan die grens."},
	{Kind: AnomalySpecialCategories,
		Text: "Per party, the number of its disclosures that include at least one special category of personal data " +
			"(AVG art. 9) or criminal data (AVG art. 10), as the covenant's vocabulary marks them, and their share of its disclosures.",
		TextNL: "Per partij het aantal verstrekkingen met minstens één bijzonder persoonsgegeven (AVG art. 9) of " +
			"strafrechtelijk gegeven (AVG art. 10), zoals het convenant ze markeert, en hun aandeel in haar verstrekkingen."},
	{Kind: AnomalyOutsideRecipient,
		Text: "A recipient that is not a party of the covenant version the disclosure was checked against.",
		TextNL: "Een ontvanger die geen partij is in de versie van het convenant waartegen de verstrekking is " +
			"gecontroleerd."},
}

// timeNote says what the report's times are.
const timeNote = "integrated_at and the checkpoint times are the ledger's own signed statements (its clock and its own " +
	"cosigner key); no independent witness bounds them. occurred_at is the discloser's statement in its signed envelope."

// auditor holds the state of one audit pass.
type auditor struct {
	cfg    Config
	origin string
	// index is what the recomputation of the subject index needs
	// (index.go).
	index indexState
	// indexVRFKey is the VRF key of the last index head (hex), and
	// indexErasuresFrom its erasures_from, once indexSeen.
	indexVRFKey       string
	indexErasuresFrom uint64
	indexSeen         bool
	rep               *Report
	loc               *time.Location
	// newerType is the first leaf whose record is of an entry type newer
	// than this version reads: Run refuses the log then (errNewerType).
	newerType error

	// Checkpoints still to meet, by tree size.
	wantRoots map[uint64][]*verifier.Checkpoint
	seqOf     map[*verifier.Checkpoint]uint64
	// bySeq holds the verified kept checkpoints by number, and
	// anchorWitnesses the names of the witnesses of each witnessed one
	// that met its policy (witnessed.go).
	bySeq           map[uint64]*verifier.Checkpoint
	anchorWitnesses map[uint64][]string

	// The tree rebuilt from the leaf records.
	rng        *compact.Range
	treeBroken bool // a leaf is missing and its hash is unknown
	brokenAt   uint64

	// Tiles, when the source has them.
	tiles     TileSource
	tile      []byte
	tileIndex uint64
	tileOK    bool
	size      uint64

	next           uint64 // the next expected leaf index
	lastIntegrated time.Time
	kinds          []verifier.EntryType // per leaf; 0 when unknown
	integrated     []int64              // per leaf: integrated_at in Unix ms
	bodyMissing    []uint64             // disclosures without a stored body
	erasedHashes   map[uint64][32]byte  // their leaf hashes, which tombstones name
	tombstoned     map[uint64]uint64
	// requestTombstones maps each tombstone on request (rule erasure:...)
	// to its rule (audit_erasures.go).
	requestTombstones map[uint64]string
	eventIDs          map[[16]byte]uint64

	chain       *events.Chain
	covenants   map[uint64]*events.SignedCovenant // by leaf index
	lastCov     uint64
	haveCov     bool
	noCovenants int // disclosures that could not be checked for want of a covenant

	listed map[Check]int

	// Statistics.
	parties    map[string]*PartyStats
	purposes   map[string]int
	categories map[string]int
	rules      map[string]int
	special    map[string]*SpecialCategoryStats
	specialAny map[string]int
	partyDays  map[string]map[int64]int
	actorDays  map[[2]string]map[int64]int
}

// Run reads the whole log from src and checks it against cfg's pinned
// keys. It returns an error only when src cannot be read (the audit is then
// incomplete); what it finds wrong with the log is in the report, and
// report.OK is false when an integrity check failed.
func Run(ctx context.Context, src Source, cfg Config) (*Report, error) {
	if cfg.Keys == nil || cfg.Keys.Log == nil || cfg.Keys.Cosigner == nil {
		return nil, errors.New("audit: Run needs the pinned log and cosigner keys")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinPartyDailyCount <= 0 {
		cfg.MinPartyDailyCount = defaultMinPartyDaily
	}
	if cfg.MinActorDailyCount <= 0 {
		cfg.MinActorDailyCount = defaultMinActorDaily
	}
	loc := cfg.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation("Europe/Amsterdam"); err != nil {
			return nil, fmt.Errorf("audit: couldn't load the Europe/Amsterdam time zone: %w", err)
		}
	}
	if cfg.AdminVkey != "" {
		if _, err := events.AdminPublicKey(cfg.AdminVkey); err != nil {
			return nil, fmt.Errorf("audit: pinned administrator key %w", err)
		}
	}
	a := &auditor{
		cfg:    cfg,
		origin: cfg.Keys.Log.Name(),
		loc:    loc,
		rep: &Report{
			Origin:        cfg.Keys.Log.Name(),
			GeneratedAt:   cfg.Now().UTC(),
			LogKey:        fmt.Sprintf("%s+%08x", cfg.Keys.Log.Name(), cfg.Keys.Log.KeyHash()),
			CosignerKey:   fmt.Sprintf("%s+%08x", cfg.Keys.Cosigner.Name(), cfg.Keys.Cosigner.KeyHash()),
			AdminKey:      verifier.KeyFingerprint(cfg.AdminVkey),
			AdminPinned:   cfg.AdminVkey != "",
			Problems:      []Problem{},
			ProblemCounts: map[Check]int{},
			TimeNote:      timeNote,
		},
		wantRoots:         map[uint64][]*verifier.Checkpoint{},
		seqOf:             map[*verifier.Checkpoint]uint64{},
		bySeq:             map[uint64]*verifier.Checkpoint{},
		rng:               (&compact.RangeFactory{Hash: verifier.HashChildren}).NewEmptyRange(0),
		tombstoned:        map[uint64]uint64{},
		requestTombstones: map[uint64]string{},
		erasedHashes:      map[uint64][32]byte{},
		eventIDs:          map[[16]byte]uint64{},
		covenants:         map[uint64]*events.SignedCovenant{},
		listed:            map[Check]int{},
		parties:           map[string]*PartyStats{},
		purposes:          map[string]int{},
		categories:        map[string]int{},
		rules:             map[string]int{},
		special:           map[string]*SpecialCategoryStats{},
		specialAny:        map[string]int{},
		partyDays:         map[string]map[int64]int{},
		actorDays:         map[[2]string]map[int64]int{},
	}
	if err := a.checkpoints(ctx, src); err != nil {
		return nil, err
	}
	if ts, ok := src.(TileSource); ok {
		a.tiles = ts
	}
	a.kinds = make([]verifier.EntryType, 0, min(a.size, 1<<20))
	if a.size > 0 {
		a.progress(0)
		workers := cfg.Workers
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		var err error
		if workers == 1 {
			err = a.entriesSerial(ctx, src)
		} else {
			err = a.entriesParallel(ctx, src, workers)
		}
		if err != nil {
			return nil, fmt.Errorf("couldn't read the log's entries (the audit is incomplete): %w", err)
		}
		if a.next < a.size {
			a.missing(ctx, a.next, a.size)
		}
		a.progress(a.size)
	}
	if a.newerType != nil {
		// A report that checked every entry it could read would still be
		// silent on what the newer entries say: no report at all.
		return nil, a.newerType
	}
	if err := a.tail(ctx, src); err != nil {
		return nil, err
	}
	if err := a.erasureAudit(ctx, src); err != nil {
		return nil, err
	}
	if err := a.witnessAudit(ctx, src); err != nil {
		return nil, err
	}
	if err := a.indexAudit(ctx, src); err != nil {
		return nil, err
	}
	a.finish()
	return a.rep, nil
}

func (a *auditor) progress(done uint64) {
	if a.cfg.Progress != nil {
		a.cfg.Progress(done, a.size)
	}
}

// problem records a failed check, listing at most maxListed per check.
func (a *auditor) problem(check Check, leaf, checkpoint *uint64, format string, args ...any) {
	a.rep.ProblemCounts[check]++
	limit, ok := listCaps[check]
	if !ok {
		limit = maxListed
	}
	if a.listed[check] >= limit {
		return
	}
	a.listed[check]++
	a.rep.Problems = append(a.rep.Problems, Problem{Check: check, Leaf: leaf, Checkpoint: checkpoint,
		Message: fmt.Sprintf(format, args...)})
}

func ptr(v uint64) *uint64 { return &v }

// checkpoints opens every kept checkpoint and checks them against each
// other: numbered without gaps, sizes never shrinking, one root per size,
// cosignature times never going back.
func (a *auditor) checkpoints(ctx context.Context, src Source) error {
	stored, err := src.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log's checkpoints: %w", err)
	}
	a.rep.Checkpoints.Count = len(stored)
	if len(stored) == 0 {
		a.problem(CheckCheckpointSequence, nil, nil, "the log holds no checkpoint")
		return nil
	}
	// Two signatures per checkpoint and one checkpoint per commit: at a
	// million events that is thousands of signatures, so they are checked
	// on every worker first and compared in order after.
	opened := make([]*verifier.Checkpoint, len(stored))
	openErrs := make([]error, len(stored))
	parallel.For(len(stored), a.cfg.Workers, 1, func(i int) {
		if ctx.Err() == nil {
			opened[i], openErrs[i] = verifier.OpenCheckpoint(stored[i].Note, a.cfg.Keys)
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var prev *verifier.Checkpoint
	var prevSeq uint64
	for i, sc := range stored {
		if i == 0 && sc.Seq != 1 {
			a.problem(CheckCheckpointSequence, nil, ptr(sc.Seq), "the first kept checkpoint is number %d; checkpoints 1 to %d are missing (every checkpoint is kept)", sc.Seq, sc.Seq-1)
		}
		if i > 0 && sc.Seq != stored[i-1].Seq+1 {
			a.problem(CheckCheckpointSequence, nil, ptr(sc.Seq), "checkpoint %d follows checkpoint %d; the ones between are missing (every checkpoint is kept)", sc.Seq, stored[i-1].Seq)
		}
		cp, err := opened[i], openErrs[i]
		if err != nil {
			a.problem(CheckCheckpointSignature, nil, ptr(sc.Seq), "does not verify with the pinned keys: %v", err)
			continue
		}
		a.rep.Checkpoints.Verified++
		a.seqOf[cp] = sc.Seq
		a.bySeq[sc.Seq] = cp
		a.wantRoots[cp.Size] = append(a.wantRoots[cp.Size], cp)
		if prev != nil {
			switch {
			case cp.Size < prev.Size:
				a.problem(CheckCheckpointConsistency, nil, ptr(sc.Seq), "tree size %d is smaller than %d in checkpoint %d: the log went back", cp.Size, prev.Size, prevSeq)
			case cp.Size == prev.Size && cp.Hash != prev.Hash:
				a.problem(CheckCheckpointConsistency, nil, ptr(sc.Seq), "tree size %d has another root than in checkpoint %d: a fork", cp.Size, prevSeq)
			}
			if cp.CosignedAt.Before(prev.CosignedAt) {
				a.problem(CheckCheckpointConsistency, nil, ptr(sc.Seq), "cosigned at %s, before checkpoint %d (%s): the log's time went back",
					cp.CosignedAt.Format(time.RFC3339), prevSeq, prev.CosignedAt.Format(time.RFC3339))
			}
		}
		if a.rep.Checkpoints.FirstCosignedAt.IsZero() {
			a.rep.Checkpoints.FirstCosignedAt = cp.CosignedAt
		}
		a.rep.Checkpoints.LastCosignedAt = cp.CosignedAt
		prev, prevSeq = cp, sc.Seq
		if cp.Size >= a.size {
			a.size = cp.Size
			a.rep.Checkpoints.Newest = &CheckpointInfo{Seq: sc.Seq, Size: cp.Size, Root: hex.EncodeToString(cp.Hash[:]), CosignedAt: cp.CosignedAt}
		}
	}
	a.rep.TreeSize = a.size
	if a.rep.Checkpoints.Verified == 0 {
		a.problem(CheckCheckpointSignature, nil, nil, "none of the %d kept checkpoints verifies with the pinned keys (%s, %s): nothing in the log can be checked",
			len(stored), a.rep.LogKey, a.rep.CosignerKey)
	}
	// The empty tree's checkpoints are met before any leaf.
	a.meetRoots()
	return nil
}

// meetRoots compares the rebuilt tree with the checkpoints of its size.
func (a *auditor) meetRoots() {
	size := a.rng.End()
	cps := a.wantRoots[size]
	if len(cps) == 0 {
		return
	}
	delete(a.wantRoots, size)
	if a.treeBroken {
		return // reported once, in finish
	}
	root := sha256.Sum256(nil) // RFC 6962: the root of the empty tree
	if size > 0 {
		h, err := a.rng.GetRootHash(nil)
		if err != nil {
			a.problem(CheckCheckpointRoot, nil, nil, "couldn't compute the root of the tree of size %d: %v", size, err)
			return
		}
		copy(root[:], h)
	}
	for _, cp := range cps {
		if cp.Hash != root {
			a.problem(CheckCheckpointRoot, nil, ptr(a.seqOf[cp]),
				"the leaf records [0, %d) give root %x, but the checkpoint signs %x", size, root[:8], cp.Hash[:8])
		}
	}
}

// appendLeaf adds a leaf hash to the rebuilt tree.
func (a *auditor) appendLeaf(h [32]byte) {
	if a.treeBroken {
		return
	}
	if err := a.rng.Append(h[:], nil); err != nil {
		a.treeBroken, a.brokenAt = true, a.rng.End()
		return
	}
	a.meetRoots()
}

// tileHash returns the stored level-0 hash of leaf index, if the source
// has tiles.
func (a *auditor) tileHash(ctx context.Context, index uint64) ([32]byte, bool) {
	var h [32]byte
	if a.tiles == nil {
		return h, false
	}
	n := index / verifier.TileWidth
	if !a.tileOK || a.tileIndex != n || a.tile == nil {
		width := int(min(uint64(verifier.TileWidth), a.size-n*verifier.TileWidth))
		data, err := a.tiles.LeafTile(ctx, n, width)
		if err != nil || len(data) < width*32 {
			if err == nil {
				err = fmt.Errorf("it has %d hashes, want %d", len(data)/32, width)
			}
			a.problem(CheckLeafTile, ptr(index), nil, "couldn't read level-0 tile %d: %v", n, err)
			a.tiles = nil // compare no further; the checkpoints still decide
			return h, false
		}
		a.tile, a.tileIndex, a.tileOK = data, n, true
	}
	off := (index % verifier.TileWidth) * 32
	copy(h[:], a.tile[off:off+32])
	return h, true
}

// missing handles leaves [from, to) whose records are not stored.
func (a *auditor) missing(ctx context.Context, from, to uint64) {
	a.rep.Entries.Unreadable += int(to - from)
	if to-from == 1 {
		a.problem(CheckLeafMissing, ptr(from), nil, "leaf record %d is not stored (leaf records are never deleted)", from)
	} else {
		a.problem(CheckLeafMissing, ptr(from), nil, "leaf records %d to %d are not stored (leaf records are never deleted)", from, to-1)
	}
	for i := from; i < to; i++ {
		a.kinds = append(a.kinds, 0)
		// The stored tiles still hold the missing leaves' hashes: with
		// them the tree goes on, and the checkpoints show whether they
		// are the committed ones.
		if h, ok := a.tileHash(ctx, i); ok {
			a.appendLeaf(h)
			continue
		}
		if !a.treeBroken {
			a.treeBroken, a.brokenAt = true, i
		}
	}
	a.next = to
}

// entry checks one stored entry, in log order, with what prepare computed
// for it.
func (a *auditor) entry(ctx context.Context, p *preparedEntry) {
	e := p.e
	if e.Index > a.next {
		a.missing(ctx, a.next, e.Index)
	}
	a.next = e.Index + 1
	idx := e.Index
	leaf := p.leaf
	if th, ok := a.tileHash(ctx, idx); ok && th != leaf {
		a.problem(CheckLeafTile, ptr(idx), nil, "leaf record %d does not hash to the stored tile's entry for it: the record was changed after it was logged", idx)
	}
	a.appendLeaf(leaf)

	rec, err := p.rec, p.recErr
	var newer *verifier.UnknownEntryTypeError
	if errors.As(err, &newer) && a.newerType == nil {
		a.newerType = fmt.Errorf("audit refused: leaf %d: %w", idx, err)
	}
	if err != nil {
		a.kinds = append(a.kinds, 0)
		a.setIntegrated(idx, 0)
		a.rep.Entries.Unreadable++
		a.problem(CheckLeafRecord, ptr(idx), nil, "%v", err)
		return
	}
	a.kinds = append(a.kinds, rec.Type)
	a.setIntegrated(idx, rec.IntegratedAt.UnixMilli())
	if rec.IntegratedAt.Before(a.lastIntegrated) {
		a.problem(CheckIntegratedAt, ptr(idx), nil, "integrated_at %s is before the previous leaf's %s (the ledger's times never go back)",
			rec.IntegratedAt.Format(time.RFC3339Nano), a.lastIntegrated.Format(time.RFC3339Nano))
	} else {
		a.lastIntegrated = rec.IntegratedAt
	}
	if e.BodyError != "" {
		a.rep.Entries.Unreadable++
		a.problem(CheckBodyUnreadable, ptr(idx), nil, "the stored %s of leaf %d cannot be read: %s", bodyName(rec.Type), idx, e.BodyError)
		if rec.Type == verifier.EntryDisclosure {
			a.rep.Entries.Disclosures++
		}
		return
	}
	if !p.bodyOK {
		a.rep.Entries.Unreadable++
		a.problem(CheckBodyHash, ptr(idx), nil, "the stored %s of leaf %d does not match the SHA-256 its leaf record commits to: it was altered after it was logged",
			bodyName(rec.Type), idx)
		if rec.Type == verifier.EntryDisclosure {
			a.rep.Entries.Disclosures++
		}
		return
	}
	switch rec.Type {
	case verifier.EntryCovenant:
		a.covenant(idx, rec, e)
	case verifier.EntryDisclosure:
		a.disclosure(idx, rec, p)
	case verifier.EntryTombstone:
		a.tombstone(idx, rec, e)
	case verifier.EntryAnswer:
		a.answer(idx, rec, e)
	case verifier.EntryIndexHead:
		a.indexHead(idx, rec, e)
	}
}

// indexHead checks a subject index head: its body parses, names this log,
// states its own leaf index as its tree size, and keeps the VRF key of the
// heads before it (a new key would make every stored map key another
// child's). Recomputing its root from the envelopes is the monitor's and
// a later audit's (docs/subject-index.md, "Follow-ups").
func (a *auditor) indexHead(idx uint64, rec *verifier.LeafRecord, e *Entry) {
	a.rep.Entries.IndexHeads++
	if _, ok := a.covenants[rec.CovenantIndex]; !ok || rec.CovenantIndex >= idx {
		a.problem(CheckCovenantIndex, ptr(idx), nil, "the index head names leaf %d, which is not a covenant entry before it", rec.CovenantIndex)
	}
	if e.Body == nil {
		a.problem(CheckBodyMissing, ptr(idx), nil, "the body of index head %d is not stored (index heads are never erased)", idx)
		return
	}
	body, err := verifier.ParseIndexHeadBody(e.Body)
	if err != nil {
		a.problem(CheckIndexHead, ptr(idx), nil, "%v", err)
		return
	}
	if body.Origin != a.origin || body.TreeSize != idx {
		a.problem(CheckIndexHead, ptr(idx), nil, "the index head is for origin %q at tree size %d; this log is %q and the entry is leaf %d", body.Origin, body.TreeSize, a.origin, idx)
	}
	if a.indexVRFKey != "" && body.VRFKey != a.indexVRFKey {
		a.problem(CheckIndexHead, ptr(idx), nil, "the index head's VRF key %s differs from the one of the heads before it, %s", clipHex(body.VRFKey), clipHex(a.indexVRFKey))
	}
	a.indexVRFKey = body.VRFKey
	if a.indexSeen && body.ErasuresFrom != a.indexErasuresFrom {
		a.problem(CheckIndexHead, ptr(idx), nil, "the index head's erasures_from %d differs from the heads before it (%d): the index was built again", body.ErasuresFrom, a.indexErasuresFrom)
	}
	a.indexSeen, a.indexErasuresFrom = true, body.ErasuresFrom
	a.indexHeadSeen(idx, body)
}

func clipHex(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

// answer checks an answer entry and lists it: its body parses, names this
// log, answers at a size before itself, and every leaf it lists is a
// disclosure (withheld and included) or a tombstone (erased) before it.
func (a *auditor) answer(idx uint64, rec *verifier.LeafRecord, e *Entry) {
	a.rep.Entries.Answers++
	if _, ok := a.covenants[rec.CovenantIndex]; !ok || rec.CovenantIndex >= idx {
		a.problem(CheckCovenantIndex, ptr(idx), nil, "the answer names leaf %d, which is not a covenant entry before it", rec.CovenantIndex)
	}
	if e.Body == nil {
		// Erased after the answer retention, if a tombstone follows:
		// finish reports it otherwise.
		a.rep.Entries.AnswersErased++
		a.bodyMissing = append(a.bodyMissing, idx)
		a.erasedHashes[idx] = verifier.LeafHash(e.LeafRecord)
		return
	}
	body, err := verifier.ParseAnswerBody(e.Body)
	if err != nil {
		a.problem(CheckAnswer, ptr(idx), nil, "%v", err)
		return
	}
	if body.Origin != a.origin || body.TreeSize > idx {
		a.problem(CheckAnswer, ptr(idx), nil, "the answer is for origin %q at tree size %d; this log is %q and the entry is leaf %d", body.Origin, body.TreeSize, a.origin, idx)
	}
	kind := func(name string, leaves []uint64, want verifier.EntryType) {
		for _, l := range leaves {
			if l >= idx || (a.kinds[l] != want && a.kinds[l] != 0) {
				a.problem(CheckAnswer, ptr(idx), nil, "%s leaf %d is not a %s before the answer", name, l, want)
				return
			}
		}
	}
	kind("included", body.Included, verifier.EntryDisclosure)
	w := make([]uint64, len(body.Withheld))
	for i, x := range body.Withheld {
		w[i] = x.Index
	}
	kind("withheld", w, verifier.EntryDisclosure)
	kind("erased", body.Erased, verifier.EntryTombstone)
	a.rep.Answers = append(a.rep.Answers, AnswerInfo{Leaf: idx, RequestID: body.Request.ID, Relation: body.Request.Relation,
		ReleasedAt: body.Request.ReleasedAt, RequestedBy: body.RequestedBy, ReleasedBy: body.ReleasedBy,
		Parties: body.Scope.Parties, CentralDesk: body.Scope.CentralDesk, TreeSize: body.TreeSize,
		Included: len(body.Included), Withheld: body.Withheld, Erased: len(body.Erased), YoungPerson: body.YoungPerson})
}

func bodyName(t verifier.EntryType) string {
	switch t {
	case verifier.EntryDisclosure:
		return "envelope"
	case verifier.EntryCovenant:
		return "signed covenant"
	case verifier.EntryAnswer:
		return "answer body"
	case verifier.EntryIndexHead:
		return "index head body"
	}
	return "tombstone body"
}

// covenant checks a covenant entry and adds it to the chain.
func (a *auditor) covenant(idx uint64, rec *verifier.LeafRecord, e *Entry) {
	a.rep.Entries.Covenants++
	switch {
	case idx == 0 && rec.CovenantIndex != 0:
		a.problem(CheckCovenantIndex, ptr(idx), nil, "covenant version 1 at leaf 0 names covenant leaf %d, not itself", rec.CovenantIndex)
	case idx > 0 && a.haveCov && rec.CovenantIndex != a.lastCov:
		a.problem(CheckCovenantIndex, ptr(idx), nil, "names covenant leaf %d, but the version before it is at leaf %d", rec.CovenantIndex, a.lastCov)
	}
	if e.Body == nil {
		a.problem(CheckBodyMissing, ptr(idx), nil, "the signed covenant of leaf %d is not stored (covenant entries are never erased)", idx)
		return
	}
	sc, err := events.ParseSignedCovenant(e.Body)
	if err != nil {
		a.problem(CheckCovenant, ptr(idx), nil, "%v", err)
		return
	}
	if sc.Covenant.Origin != a.origin {
		a.problem(CheckCovenant, ptr(idx), nil, "covenant version %d is for origin %q, not this log's %q", sc.Covenant.Version, sc.Covenant.Origin, a.origin)
		return
	}
	if a.chain == nil {
		if idx != 0 {
			a.problem(CheckCovenant, ptr(idx), nil, "the first usable covenant entry is at leaf %d, not leaf 0", idx)
		}
		a.chain, err = events.NewChain(sc, a.cfg.AdminVkey)
		if err != nil {
			a.chain = nil
			a.problem(CheckCovenant, ptr(idx), nil, "%v", err)
			return
		}
		if a.rep.AdminKey == "" {
			a.rep.AdminKey = verifier.KeyFingerprint(sc.Covenant.Administrator.Key)
		}
	} else if err := a.chain.Append(sc); err != nil {
		a.problem(CheckCovenant, ptr(idx), nil, "%v", err)
		return
	}
	a.covenants[idx] = sc
	a.lastCov, a.haveCov = idx, true
	a.rep.Covenants = append(a.rep.Covenants, CovenantVersionInfo{Version: sc.Covenant.Version, Leaf: idx,
		Name: sc.Covenant.Name, EffectiveFrom: sc.Covenant.EffectiveFrom,
		AdminKey: verifier.KeyFingerprint(sc.Covenant.Administrator.Key), Parties: len(sc.Covenant.Parties)})
}

// disclosure checks a disclosure against the covenant version its leaf
// record names, and counts it.
func (a *auditor) disclosure(idx uint64, rec *verifier.LeafRecord, p *preparedEntry) {
	e := p.e
	a.rep.Entries.Disclosures++
	if !a.haveCov {
		a.noCovenants++
		a.rep.Entries.Unreadable++
		return
	}
	sc, ok := a.covenants[rec.CovenantIndex]
	switch {
	case !ok:
		a.problem(CheckCovenantIndex, ptr(idx), nil, "names leaf %d, which is not a valid covenant entry", rec.CovenantIndex)
		sc = a.covenants[a.lastCov]
	case rec.CovenantIndex != a.lastCov:
		a.problem(CheckCovenantIndex, ptr(idx), nil, "names covenant leaf %d, but the newest covenant version before it is at leaf %d", rec.CovenantIndex, a.lastCov)
	}
	if e.Body == nil {
		a.rep.Entries.Erased++
		a.bodyMissing = append(a.bodyMissing, idx)
		a.erasedHashes[idx] = verifier.LeafHash(e.LeafRecord)
		return
	}
	if p.cov != sc {
		// A worker opened it under another version than the one in force
		// here; the pipeline's barrier at covenant entries prevents this,
		// and the check keeps the report right regardless.
		a.open(p, sc)
	}
	cov := sc.Covenant
	d, err := p.d, p.openErr
	if err != nil {
		a.rep.Entries.Unreadable++
		a.problem(CheckSignature, ptr(idx), nil, "the envelope does not verify against covenant version %d: %v", cov.Version, err)
		return
	}
	if id, ok := p.eventID, p.eventIDOK; ok {
		if first, dup := a.eventIDs[id]; dup {
			a.problem(CheckEventID, ptr(idx), nil, "event id already logged at leaf %d (an event is logged once)", first)
		} else {
			a.eventIDs[id] = idx
		}
	}
	// No envelope outlives its retention period (by the covenant version
	// it was recorded under), beyond a grace for the daily retention job.
	if due := rec.IntegratedAt.Add(time.Duration(cov.RetentionDaysFor(d.Categories)) * 24 * time.Hour); a.cfg.Now().After(due.Add(retentionGrace)) {
		a.problem(CheckRetentionOverdue, ptr(idx), nil, "the envelope of leaf %d was due for erasure on %s and is still stored",
			idx, due.Format(time.DateOnly))
	}
	if p.findingsDiffer {
		a.problem(CheckFindings, ptr(idx), nil, "the stored findings differ from the covenant's rules: %s", p.findingsDiff)
	}
	a.indexDisclosure(idx, d)
	a.count(idx, rec, p)
}

// tombstone checks a tombstone entry.
func (a *auditor) tombstone(idx uint64, rec *verifier.LeafRecord, e *Entry) {
	a.rep.Entries.Tombstones++
	if _, ok := a.covenants[rec.CovenantIndex]; !ok || rec.CovenantIndex >= idx {
		a.problem(CheckCovenantIndex, ptr(idx), nil, "the tombstone names leaf %d, which is not a covenant entry before it", rec.CovenantIndex)
	}
	switch {
	case rec.ErasedIndex >= idx:
		a.problem(CheckTombstone, ptr(idx), nil, "erases leaf %d, which is not before it", rec.ErasedIndex)
		return
	case a.kinds[rec.ErasedIndex] == verifier.EntryAnswer && rec.RuleID != verifier.AnswerRetentionRule:
		a.problem(CheckTombstone, ptr(idx), nil, "erases answer entry %d under rule %s; answers are erased under %s alone", rec.ErasedIndex, rec.RuleID, verifier.AnswerRetentionRule)
		return
	case a.kinds[rec.ErasedIndex] == verifier.EntryDisclosure && rec.RuleID == verifier.AnswerRetentionRule:
		a.problem(CheckTombstone, ptr(idx), nil, "erases disclosure %d under %s, the rule for answer entries", rec.ErasedIndex, rec.RuleID)
		return
	case a.kinds[rec.ErasedIndex] != verifier.EntryDisclosure && a.kinds[rec.ErasedIndex] != verifier.EntryAnswer && a.kinds[rec.ErasedIndex] != 0:
		a.problem(CheckTombstone, ptr(idx), nil, "erases leaf %d, which is a %s entry, not a disclosure or an answer", rec.ErasedIndex, a.kinds[rec.ErasedIndex])
		return
	}
	if first, dup := a.tombstoned[rec.ErasedIndex]; dup {
		a.problem(CheckTombstone, ptr(idx), nil, "erases leaf %d, which the tombstone at leaf %d erased already", rec.ErasedIndex, first)
		return
	}
	a.tombstoned[rec.ErasedIndex] = idx
	if strings.HasPrefix(rec.RuleID, verifier.ErasureRulePrefix) {
		a.requestTombstones[idx] = rec.RuleID
	}
	a.checkTombstoneRule(idx, rec)
	if e.Body == nil {
		a.problem(CheckBodyMissing, ptr(idx), nil, "the tombstone body of leaf %d is not stored", idx)
		return
	}
	var tb verifier.TombstoneBody
	if err := json.Unmarshal(e.Body, &tb); err != nil || tb.Schema != verifier.TombstoneSchema {
		a.problem(CheckTombstone, ptr(idx), nil, "the tombstone body is not a %s document", verifier.TombstoneSchema)
		return
	}
	var wrong []string
	if tb.Origin != a.origin {
		wrong = append(wrong, "origin")
	}
	if tb.ErasedIndex != rec.ErasedIndex {
		wrong = append(wrong, "erased_index")
	}
	if tb.RuleID != rec.RuleID {
		wrong = append(wrong, "rule_id")
	}
	if sc, ok := a.covenants[rec.CovenantIndex]; ok && tb.CovenantVersion != sc.Covenant.Version {
		wrong = append(wrong, "covenant_version")
	}
	if h, ok := a.erasedHashes[rec.ErasedIndex]; ok && tb.ErasedLeafHash != hex.EncodeToString(h[:]) {
		wrong = append(wrong, "erased_leaf_hash")
	}
	if len(wrong) > 0 {
		a.problem(CheckTombstone, ptr(idx), nil, "the tombstone body disagrees with its leaf record or the erased leaf %d: %s", rec.ErasedIndex, strings.Join(wrong, ", "))
	}
}

// setIntegrated records leaf idx's integrated_at (ms), keeping the slice
// indexed by leaf even across missing leaves.
func (a *auditor) setIntegrated(idx uint64, ms int64) {
	for uint64(len(a.integrated)) < idx {
		a.integrated = append(a.integrated, 0)
	}
	a.integrated = append(a.integrated[:idx], ms)
}

// retentionGrace is how late the retention job may erase an envelope (it
// runs daily) before the audit calls the envelope overdue.
const retentionGrace = 48 * time.Hour

// checkTombstoneRule checks that a tombstone follows a rule: a retention
// tombstone ("retention:<category>", "retention:default", or for an answer
// entry verifier.AnswerRetentionRule) comes no earlier
// than the erased leaf's integrated_at plus that period in the covenant the
// tombstone names; an erasure on request ("erasure:<ground>") may come at
// any time and is counted.
func (a *auditor) checkTombstoneRule(idx uint64, rec *verifier.LeafRecord) {
	kind, arg, _ := strings.Cut(rec.RuleID, ":")
	switch kind {
	case "erasure":
		if arg == "" {
			a.problem(CheckTombstoneRule, ptr(idx), nil, "erasure tombstone without a legal ground")
		}
		return
	case "retention":
	default:
		a.problem(CheckTombstoneRule, ptr(idx), nil, "rule %q is neither retention:<category> nor erasure:<ground>", rec.RuleID)
		return
	}
	sc, ok := a.covenants[rec.CovenantIndex]
	if !ok || rec.ErasedIndex >= uint64(len(a.integrated)) {
		return
	}
	days := sc.Covenant.Retention.DefaultDays
	switch {
	case rec.RuleID == verifier.AnswerRetentionRule:
		// An answer's body, kept AnswerRetentionDays from when it was
		// logged (tombstone checked that the erased leaf is an answer).
		days = sc.Covenant.AnswerRetentionDays()
	case arg != "default":
		if _, ok := sc.Covenant.Retention.Categories[arg]; !ok {
			a.problem(CheckTombstoneRule, ptr(idx), nil, "rule %q names a category without its own retention period", rec.RuleID)
			return
		}
		days = sc.Covenant.RetentionDays(arg)
	}
	due := time.UnixMilli(a.integrated[rec.ErasedIndex]).Add(time.Duration(days) * 24 * time.Hour)
	if rec.IntegratedAt.Before(due) {
		a.problem(CheckTombstoneEarly, ptr(idx), nil, "erased leaf %d on %s under rule %s, before its retention ended on %s",
			rec.ErasedIndex, rec.IntegratedAt.Format(time.DateOnly), rec.RuleID, due.Format(time.DateOnly))
	}
}

// count adds one verified disclosure to the statistics.
func (a *auditor) count(idx uint64, rec *verifier.LeafRecord, p *preparedEntry) {
	d, cov, findings := p.d, p.cov.Covenant, p.findings
	ps := a.party(d.Discloser)
	ps.Disclosed++
	for _, r := range d.Recipients {
		if _, ok := cov.Party(r); !ok {
			// The discloser typed it: counted and listed under
			// UnknownValueNL, never verbatim.
			r = verifier.UnknownValueNL(r)
			a.rep.Anomalies.OutsideRecipientsCount++
			if len(a.rep.Anomalies.OutsideRecipients) < maxListed {
				a.rep.Anomalies.OutsideRecipients = append(a.rep.Anomalies.OutsideRecipients,
					OutsideRecipient{Leaf: idx, Party: d.Discloser, Recipient: r, CovenantVersion: cov.Version})
			}
		}
		a.party(r).Received++
	}
	if slices.ContainsFunc(cov.Vocabulary.Purposes, func(t events.Term) bool { return t.ID == d.Purpose }) {
		a.purposes[d.Purpose]++
	} else {
		a.purposes[verifier.UnknownValueNL(d.Purpose)]++
	}
	sp := a.special[d.Discloser]
	if sp == nil {
		sp = &SpecialCategoryStats{Party: d.Discloser, Categories: map[string]int{}}
		a.special[d.Discloser] = sp
	}
	sp.Disclosures++
	var art9, art10 bool
	for _, c := range d.Categories {
		cat, ok := cov.Category(c)
		if !ok {
			a.categories[verifier.UnknownValueNL(c)]++
			continue
		}
		a.categories[c]++
		switch cat.Special {
		case events.SpecialArt9:
			art9 = true
			sp.Categories[c]++
		case events.SpecialArt10:
			art10 = true
			sp.Categories[c]++
		}
	}
	if art9 || art10 {
		a.specialAny[d.Discloser]++
	}
	if art9 {
		ps.Art9++
		sp.Art9++
	}
	if art10 {
		ps.Art10++
		sp.Art10++
	}
	for i, f := range findings {
		// Once per rule: a disclosure may break one rule at two fields.
		if !slices.ContainsFunc(findings[:i], func(g events.Finding) bool { return g.Rule == f.Rule }) {
			a.rules[f.Rule]++
		}
	}
	if len(findings) > 0 {
		ps.WithFindings++
		if a.cfg.OnFinding != nil {
			fd := FindingDisclosure{Leaf: idx, Discloser: d.Discloser, Recipients: slices.Clone(d.Recipients), Purpose: d.Purpose,
				Categories: slices.Clone(d.Categories), OccurredAt: d.OccurredAt.UTC(), IntegratedAt: rec.IntegratedAt.UTC(),
				CovenantVersion: cov.Version, Justification: d.Justification}
			for _, f := range findings {
				if !slices.Contains(fd.Rules, f.Rule) {
					fd.Rules = append(fd.Rules, f.Rule)
				}
			}
			a.cfg.OnFinding(fd)
		}
	}
	late := time.Duration(cov.Rules.LateRecordingHours) * time.Hour
	if lag := rec.IntegratedAt.Sub(d.OccurredAt); late > 0 && lag > late {
		ps.RecordedLate++
		a.rep.Anomalies.RecordedLateCount++
		if len(a.rep.Anomalies.RecordedLate) < maxListed {
			a.rep.Anomalies.RecordedLate = append(a.rep.Anomalies.RecordedLate, LateRecording{Leaf: idx, Party: d.Discloser,
				OccurredAt: d.OccurredAt.UTC(), IntegratedAt: rec.IntegratedAt.UTC(), Hours: int64(lag / time.Hour),
				AllowedHours: cov.Rules.LateRecordingHours})
		}
	}
	day := p.day
	if a.partyDays[d.Discloser] == nil {
		a.partyDays[d.Discloser] = map[int64]int{}
	}
	a.partyDays[d.Discloser][day]++
	ak := [2]string{d.Discloser, p.actor}
	if a.actorDays[ak] == nil {
		a.actorDays[ak] = map[int64]int{}
	}
	a.actorDays[ak][day]++
}

func (a *auditor) party(id string) *PartyStats {
	ps := a.parties[id]
	if ps == nil {
		ps = &PartyStats{Party: id}
		a.parties[id] = ps
	}
	return ps
}

// day returns the number of the calendar day of t in the audit's zone.
func (a *auditor) day(t time.Time) int64 {
	y, m, d := t.In(a.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func dayString(day int64) string { return time.Unix(day*86400, 0).UTC().Format(time.DateOnly) }

// tail checks, on a source nothing writes to, that no leaf record lies
// beyond the newest checkpoint.
func (a *auditor) tail(ctx context.Context, src Source) error {
	ts, ok := src.(TailSource)
	if !ok || a.rep.Checkpoints.Verified == 0 {
		return nil
	}
	last, ok, err := ts.LastLeafIndex(ctx)
	if err != nil {
		return fmt.Errorf("couldn't find the last stored leaf record: %w", err)
	}
	if ok && last >= a.size {
		a.problem(CheckLeafBeyondCheckpoint, ptr(last), nil, "leaf records up to index %d are stored, but the newest checkpoint covers only [0, %d): a batch without its checkpoint, or planted records", last, a.size)
	}
	return nil
}

// finish completes the checks that need the whole log, and the tables.
func (a *auditor) finish() {
	if a.treeBroken {
		n := 0
		for _, cps := range a.wantRoots {
			n += len(cps)
		}
		if n > 0 {
			a.problem(CheckCheckpointRoot, ptr(a.brokenAt), nil, "%d checkpoints from tree size %d on could not be compared: leaf %d is missing and no stored tile holds its hash", n, a.brokenAt+1, a.brokenAt)
		}
	}
	for _, idx := range a.bodyMissing {
		if _, ok := a.tombstoned[idx]; !ok {
			a.problem(CheckBodyMissing, ptr(idx), nil, "the envelope of leaf %d is not stored and no tombstone records its erasure", idx)
		}
	}
	if a.noCovenants > 0 {
		a.problem(CheckCovenant, nil, nil, "%d disclosures could not be checked: the log has no valid covenant entry before them", a.noCovenants)
	}
	a.rep.OK = len(a.rep.Problems) == 0
	a.tables()
	a.volumes()
}

// labels returns the covenant version whose labels the report uses: the
// newest, which has every party and term of the older ones that remain.
func (a *auditor) labels() *events.Covenant {
	if a.chain == nil {
		return nil
	}
	return a.chain.Latest().Covenant
}

// partyName finds a party's name in the newest version that lists it.
func (a *auditor) partyName(id string) string {
	if a.chain == nil {
		return id
	}
	for n := a.chain.Len(); n >= 1; n-- {
		if p, ok := a.chain.Version(n).Covenant.Party(id); ok {
			return p.Name
		}
	}
	return id
}

func (a *auditor) tables() {
	cov := a.labels()
	label := func(f func(*events.Covenant, string) string, id string) string {
		if cov == nil {
			return id
		}
		return f(cov, id)
	}
	// Every party of the newest covenant version is listed, those without
	// a single disclosure too: a silent organisation is something the FG
	// should see, not a row that is missing.
	if cov != nil {
		for _, p := range cov.Parties {
			a.party(p.ID)
		}
	}
	for _, ps := range a.parties {
		ps.Name = a.partyName(ps.Party)
		a.rep.ByParty = append(a.rep.ByParty, *ps)
	}
	slices.SortFunc(a.rep.ByParty, func(x, y PartyStats) int {
		if x.Disclosed != y.Disclosed {
			return y.Disclosed - x.Disclosed
		}
		return strings.Compare(x.Party, y.Party)
	})
	for id, n := range a.purposes {
		a.rep.ByPurpose = append(a.rep.ByPurpose, TermCount{ID: id, Label: label((*events.Covenant).PurposeLabel, id), Count: n})
	}
	sortCounts(a.rep.ByPurpose, func(t TermCount) (int, string) { return t.Count, t.ID })
	for id, n := range a.categories {
		cc := CategoryCount{ID: id, Label: id, Count: n}
		if cov != nil {
			if cat, ok := cov.Category(id); ok {
				cc.Label, cc.Special = cat.Label, cat.Special
			}
		}
		a.rep.ByCategory = append(a.rep.ByCategory, cc)
	}
	sortCounts(a.rep.ByCategory, func(c CategoryCount) (int, string) { return c.Count, c.ID })
	for _, r := range events.FindingRules() {
		a.rep.ByRule = append(a.rep.ByRule, RuleCount{Rule: r, Label: events.FindingLabelNL(r), Count: a.rules[r]})
	}
	for _, sp := range a.special {
		if sp.Disclosures > 0 {
			// A disclosure may have both kinds; it counts once for the share.
			sp.Share = float64(a.specialAny[sp.Party]) / float64(sp.Disclosures)
		}
		a.rep.Anomalies.SpecialCategories = append(a.rep.Anomalies.SpecialCategories, *sp)
	}
	slices.SortFunc(a.rep.Anomalies.SpecialCategories, func(x, y SpecialCategoryStats) int {
		if x.Art9+x.Art10 != y.Art9+y.Art10 {
			return (y.Art9 + y.Art10) - (x.Art9 + x.Art10)
		}
		return strings.Compare(x.Party, y.Party)
	})
	a.rep.Anomalies.Definitions = append(volumeDefinitions(a.cfg.MinPartyDailyCount, a.cfg.MinActorDailyCount, a.loc), otherDefinitions...)
}

func sortCounts[T any](s []T, key func(T) (int, string)) {
	slices.SortFunc(s, func(x, y T) int {
		nx, ix := key(x)
		ny, iy := key(y)
		if nx != ny {
			return ny - nx
		}
		return strings.Compare(ix, iy)
	})
}

// volumes finds the days on which a party's or an actor's count exceeds
// its robust threshold (see volumeDefinitions).
func (a *auditor) volumes() {
	var out []VolumeAnomaly
	for party, series := range a.partyDays {
		out = append(out, volumeAnomalies(AnomalyVolumeParty, party, "", series, a.cfg.MinPartyDailyCount)...)
	}
	for k, series := range a.actorDays {
		out = append(out, volumeAnomalies(AnomalyVolumeActor, k[0], k[1], series, a.cfg.MinActorDailyCount)...)
	}
	slices.SortFunc(out, func(x, y VolumeAnomaly) int {
		return cmpJoin(strings.Compare(x.Kind, y.Kind), strings.Compare(x.Day, y.Day), strings.Compare(x.Party, y.Party), strings.Compare(x.Actor, y.Actor))
	})
	if len(out) > maxListed {
		out = out[:maxListed]
	}
	a.rep.Anomalies.Volume = out
}

func cmpJoin(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// volumeAnomalies judges every day of one series.
func volumeAnomalies(kind, party, actor string, series map[int64]int, minCount int) []VolumeAnomaly {
	days := make([]int64, 0, len(series))
	for d := range series {
		days = append(days, d)
	}
	slices.Sort(days)
	first := days[0]
	var out []VolumeAnomaly
	window := make([]float64, 0, VolumeWindowDays)
	for _, d := range days {
		c := series[d]
		if c < minCount {
			continue
		}
		window = window[:0]
		for w := max(first, d-VolumeWindowDays); w < d; w++ {
			window = append(window, float64(series[w]))
		}
		if len(window) < VolumeMinHistoryDays {
			continue
		}
		med, mad := medianMAD(window)
		threshold := med + VolumeMADFactor*max(mad, 1)
		if float64(c) > threshold {
			out = append(out, VolumeAnomaly{Kind: kind, Party: party, Actor: actor, Day: dayString(d), Count: c,
				Median: med, MAD: mad, Threshold: threshold, HistoryDays: len(window)})
		}
	}
	return out
}

// medianMAD returns the median of xs and the median absolute deviation
// from it. It reorders xs.
func medianMAD(xs []float64) (float64, float64) {
	med := median(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = x - med
		if dev[i] < 0 {
			dev[i] = -dev[i]
		}
	}
	return med, median(dev)
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// diffFindings compares recomputed findings with stored ones as multisets
// of (rule, field, message).
func diffFindings(want, got []events.Finding) (missing, extra []events.Finding) {
	key := func(f events.Finding) string { return f.Rule + "\x00" + f.Field + "\x00" + f.Message }
	have := map[string]int{}
	for _, f := range got {
		have[key(f)]++
	}
	for _, f := range want {
		if have[key(f)] > 0 {
			have[key(f)]--
			continue
		}
		missing = append(missing, f)
	}
	for _, f := range got {
		if have[key(f)] > 0 {
			have[key(f)]--
			extra = append(extra, f)
		}
	}
	return missing, extra
}

// describeFindingDiff names the rules only: stored findings come from the
// store, and their free text is not repeated.
func describeFindingDiff(missing, extra []events.Finding) string {
	var parts []string
	rules := func(fs []events.Finding) string {
		var ids []string
		for _, f := range fs {
			if slices.Contains(events.FindingRules(), f.Rule) {
				ids = append(ids, f.Rule+" at "+safeField(f.Field))
			} else {
				ids = append(ids, "(unknown rule)")
			}
		}
		return strings.Join(ids, ", ")
	}
	if len(missing) > 0 {
		parts = append(parts, "not stored: "+rules(missing))
	}
	if len(extra) > 0 {
		parts = append(parts, "stored but not found by the rules: "+rules(extra))
	}
	return strings.Join(parts, "; ")
}

// safeField repeats a finding's field name only if it looks like one.
func safeField(s string) string {
	if len(s) > 64 {
		return "(field)"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '[' || r == ']') {
			return "(field)"
		}
	}
	return s
}

// parseUUID parses a canonical UUID string into its 16 bytes.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 {
		return u, errors.New("not a UUID")
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return u, errors.New("not a UUID")
	}
	copy(u[:], b)
	return u, nil
}

// The entries are checked in two parts. prepare does what depends on one
// entry and the covenant versions in force alone (the leaf hash, the leaf
// record, the body hash, and for a disclosure events.Open with its
// signature, the findings and the statistics' keys): that is nearly all of
// the cost, and entriesParallel spreads it over workers. entry then applies
// each prepared entry in log order on one goroutine: the tree, the tiles,
// the covenant chain, duplicates, tombstones, problems and counts, which
// all depend on what came before.
//
// The covenant versions in force change only at a covenant entry. The
// reader therefore ends a batch at every entry whose leaf record says
// covenant, and waits until the consumer has applied it and handed back
// the versions then in force before it hands out more work: no entry is
// ever opened under another covenant state than the one the consumer has
// when it applies it (and entry checks that anyway).

// auditBatchSize is how many entries a worker takes at a time: its
// disclosures are one signature batch, which costs less per signature the
// larger it is (on the reference machine about 21 µs at 64, 18 µs at 256,
// 15 µs at 1024). A few batches per worker are in flight, some tens of MB.
const auditBatchSize = 1024

// preparedEntry is what prepare computed for one entry.
type preparedEntry struct {
	e      *Entry
	leaf   [32]byte
	rec    *verifier.LeafRecord
	recErr error
	// bodyOK is false when the body could not be read or its SHA-256 is
	// not the record's body hash (only set with a parsed record).
	bodyOK bool
	// For a disclosure opened under covenant version cov:
	cov            *events.SignedCovenant
	d              *events.Disclosure
	openErr        error
	findings       []events.Finding
	findingsDiffer bool
	findingsDiff   string
	eventID        [16]byte
	eventIDOK      bool
	day            int64
	actor          string
}

// covenantView is the covenant state entries are opened under: the
// versions accepted so far by leaf index, and the newest one's leaf.
type covenantView struct {
	covenants map[uint64]*events.SignedCovenant
	lastCov   uint64
	haveCov   bool
}

// view returns the auditor's own covenant state, for use on its goroutine.
func (a *auditor) view() *covenantView {
	return &covenantView{covenants: a.covenants, lastCov: a.lastCov, haveCov: a.haveCov}
}

// snapshot returns a copy of the covenant state that other goroutines may
// read while the auditor goes on.
func (a *auditor) snapshot() *covenantView {
	return &covenantView{covenants: maps.Clone(a.covenants), lastCov: a.lastCov, haveCov: a.haveCov}
}

// leafHasher computes RFC 6962 leaf hashes (LeafHash) with one SHA-256
// state, reused: a million leaves need no million hashers.
type leafHasher struct {
	h   hash.Hash
	out [sha256.Size]byte
}

func (lh *leafHasher) sum(record []byte) [32]byte {
	if lh.h == nil {
		lh.h = sha256.New()
	}
	lh.h.Reset()
	lh.h.Write([]byte{0})
	lh.h.Write(record)
	lh.h.Sum(lh.out[:0])
	return lh.out
}

// prepare computes p for entry e under the covenant state v.
func (a *auditor) prepare(e *Entry, v *covenantView, lh *leafHasher, p *preparedEntry) {
	if sc := a.prepareUnopened(e, v, lh, p); sc != nil {
		a.open(p, sc)
	}
}

// prepareBatch prepares a worker's run of entries. Their disclosures are
// opened together, per covenant version, with events.OpenMany: one
// signature batch, the same verdicts as one at a time.
func (a *auditor) prepareBatch(es []*Entry, v *covenantView, lh *leafHasher, ps []preparedEntry) {
	var group []int
	var groupCov *events.SignedCovenant
	flush := func() {
		if len(group) == 0 {
			return
		}
		bodies := make([][]byte, len(group))
		for k, i := range group {
			bodies[k] = ps[i].e.Body
		}
		for k, o := range events.OpenMany(bodies, a.origin, groupCov.Covenant) {
			a.opened(&ps[group[k]], groupCov, o.Disclosure, o.Err)
		}
		group = group[:0]
	}
	for i, e := range es {
		sc := a.prepareUnopened(e, v, lh, &ps[i])
		if sc == nil {
			continue
		}
		if sc != groupCov {
			flush()
			groupCov = sc
		}
		group = append(group, i)
	}
	flush()
}

// prepareUnopened is prepare up to opening the envelope: it returns the
// covenant version to open a disclosure under, or nil when there is
// nothing to open.
func (a *auditor) prepareUnopened(e *Entry, v *covenantView, lh *leafHasher, p *preparedEntry) *events.SignedCovenant {
	*p = preparedEntry{e: e, leaf: lh.sum(e.LeafRecord)}
	p.rec, p.recErr = verifier.ParseLeafRecord(e.LeafRecord)
	if p.recErr != nil || e.BodyError != "" {
		return nil
	}
	p.bodyOK = e.Body == nil || sha256.Sum256(e.Body) == p.rec.BodyHash
	if !p.bodyOK || p.rec.Type != verifier.EntryDisclosure || e.Body == nil || !v.haveCov {
		return nil
	}
	// The version disclosure() will check it against: the one its record
	// names, or the newest when that one is not valid (a problem then).
	sc, ok := v.covenants[p.rec.CovenantIndex]
	if !ok {
		sc = v.covenants[v.lastCov]
	}
	return sc
}

// open opens p's envelope under sc, and computes the findings, their
// comparison with the stored ones and the keys of the statistics.
func (a *auditor) open(p *preparedEntry, sc *events.SignedCovenant) {
	d, _, err := events.Open(p.e.Body, a.origin, sc.Covenant)
	a.opened(p, sc, d, err)
}

// opened records in p the outcome of opening its envelope under sc.
func (a *auditor) opened(p *preparedEntry, sc *events.SignedCovenant, d *events.Disclosure, err error) {
	p.cov, p.d, p.openErr, p.findings, p.findingsDiffer, p.findingsDiff = sc, nil, nil, nil, false, ""
	if err != nil {
		p.openErr = err
		return
	}
	p.d = d
	p.eventID, err = parseUUID(d.ID)
	p.eventIDOK = err == nil
	cov := sc.Covenant
	p.findings = append(cov.Check(d), cov.CheckRecording(d, p.rec.IntegratedAt)...)
	missing, extra := diffFindings(p.findings, p.e.Findings)
	// possible-bsn is newer than some stored events: one the ledger did not
	// record then is counted, not a difference (the audit does not hold
	// events logged earlier to a rule made later).
	missing = slices.DeleteFunc(missing, func(f events.Finding) bool { return f.Rule == events.RulePossibleBSN })
	if len(missing)+len(extra) > 0 {
		p.findingsDiffer, p.findingsDiff = true, describeFindingDiff(missing, extra)
	}
	p.day = a.day(d.OccurredAt)
	p.actor = ActorRef(d.Discloser, d.Actor.StaffID)
}

// errOutOfOrder describes a source that broke the Source contract.
func (a *auditor) errOutOfOrder(index, expected uint64) error {
	return fmt.Errorf("audit: the audit source returned leaf %d out of order (expected %d, tree size %d)", index, expected, a.size)
}

// entriesSerial reads and checks every entry on the calling goroutine.
func (a *auditor) entriesSerial(ctx context.Context, src Source) error {
	var lh leafHasher
	var p preparedEntry
	return src.Entries(ctx, 0, a.size, func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Index < a.next || e.Index >= a.size {
			return a.errOutOfOrder(e.Index, a.next)
		}
		a.prepare(e, a.view(), &lh, &p)
		a.entry(ctx, &p)
		if a.next%1024 == 0 {
			a.progress(a.next)
		}
		return nil
	})
}

// auditBatch is a run of consecutive entries handed to one worker.
type auditBatch struct {
	entries  []*Entry
	view     *covenantView
	prepared []preparedEntry
	done     chan struct{} // closed when prepared is filled
	// barrier is set when the batch ends with a covenant entry: the
	// reader waits for the consumer's new covenant state after it.
	barrier bool
}

// entriesParallel is entriesSerial as a bounded pipeline: the source's
// reader (this goroutine) cuts the entries into batches, workers prepare
// them, and one consumer applies them in the order they were read. At most
// a few batches per worker are in flight.
func (a *auditor) entriesParallel(ctx context.Context, src Source, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Batches are large (auditBatchSize): two per worker in flight keep
	// every worker busy without holding many megabytes of entries.
	order := make(chan *auditBatch, 2*workers)
	work := make(chan *auditBatch, workers)
	views := make(chan *covenantView, 1)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lh leafHasher
			for b := range work {
				if ctx.Err() == nil {
					b.prepared = make([]preparedEntry, len(b.entries))
					a.prepareBatch(b.entries, b.view, &lh, b.prepared)
				}
				close(b.done)
			}
		}()
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				continue // the audit is being abandoned; drain
			}
			for i := range b.prepared {
				a.entry(ctx, &b.prepared[i])
				if a.next%1024 == 0 {
					a.progress(a.next)
				}
			}
			if b.barrier {
				views <- a.snapshot()
			}
		}
	}()

	view := a.snapshot()
	var cur *auditBatch
	var next uint64
	send := func(barrier bool) error {
		b := cur
		cur = nil
		b.barrier = barrier
		select {
		case order <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		if barrier {
			select {
			case view = <-views:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	err := src.Entries(ctx, 0, a.size, func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Index < next || e.Index >= a.size {
			return a.errOutOfOrder(e.Index, next)
		}
		next = e.Index + 1
		if cur == nil {
			cur = &auditBatch{entries: make([]*Entry, 0, auditBatchSize), view: view, done: make(chan struct{})}
		}
		cur.entries = append(cur.entries, e)
		// The type byte alone (offset 1) decides: a wrongly placed barrier
		// only waits, and a missed one is caught in disclosure().
		if r := e.LeafRecord; len(r) >= 2 && r[1] == byte(verifier.EntryCovenant) {
			return send(true)
		}
		if len(cur.entries) == auditBatchSize {
			return send(false)
		}
		return nil
	})
	if err == nil && cur != nil {
		err = send(false)
	}
	if err != nil {
		cancel()
	}
	close(order)
	close(work)
	<-consumed
	wg.Wait()
	if err == nil {
		// Cancelled after the last read: the consumer may have skipped
		// batches, so the pass is incomplete.
		err = ctx.Err()
	}
	return err
}
