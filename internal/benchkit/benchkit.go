// Package benchkit measures Spoor on the machine it runs on, for
// `spoor bench` and for anyone who wants the same figures from Go.
//
// Everything runs in one process on a scratch folder. Data flows through a
// run in this order:
//
//	synth.Generator --sign on every core--> event file (before any timed window)
//	event sample --> stage costs: JetStream publish+consume, envelope open,
//	                 Pebble Sync batches of the ledger's own keys, leaf hashing
//	                 (wall rate and the process's CPU time per event of each)
//	pool of opened events --> log core alone (ledger.Submit, no NATS, no signatures)
//	event file --concurrent publishers--> embedded NATS --> ingest --> ledger:
//	                 full load (bounded window) and a fixed offered load
//	the stored ledger --> inzage bundles, Merkle recomputation, the FG's audit
//	the folders --> peak RSS, ledger bytes per event after compaction, NATS store
//	with Config.Witnesses: the event file --> the pipeline on fresh ledgers,
//	                 without witnesses, with (covenant version 2 naming real
//	                 witnesses on loopback, a Witnesser beside the ledger) and
//	                 without again; then the offered load, to the witnessed head
//
// Each pipeline figure is reported beside the ceilings measured in the same
// run: the composed ceiling (cores divided by the sum of the stages' CPU
// cost per event) and the lowest single-stage rate.
package benchkit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier"
)

// Config configures a run. Dir is required; zero values elsewhere are the
// defaults of `spoor bench`.
type Config struct {
	// Dir is an empty scratch folder the run may fill (it can grow to a
	// few GB for a million events); the caller removes it.
	Dir string
	// Events is how many events the full-load pipeline publishes; 0 means
	// 100000.
	Events int
	// OfferedRate is the fixed offered load in events/s; 0 means 5000.
	OfferedRate int
	// OfferedSeconds is how long the offered load runs; 0 means 10 s
	// (never more events than Events).
	OfferedSeconds float64
	// StageSample is how many events the stage measurements use; 0 means
	// 50000 (never more than Events).
	StageSample int
	// Publishers is the number of concurrent publishers, each on its own
	// NATS connection; 0 means 4.
	Publishers int
	// PublishBatch is the most events a publisher sends in one batch
	// message (natsbus.BatchHeader) at full load and in the JetStream
	// stage; 1 sends one event per message. 0 means 64. The offered load
	// always sends one event per message, as a system does that records
	// each disclosure as it happens.
	PublishBatch int
	// Window bounds the events published but not yet in a checkpoint at
	// full load, so that its latency is that of a loaded ledger rather
	// than of a backlog on the bus; 0 means 32768.
	Window int
	// InzageSubjects is how many children's bundles are timed; 0 means 200.
	InzageSubjects int
	// Seed seeds the synthetic events; 0 means 1.
	Seed uint64
	// Progress receives a progress line while the run goes on (stderr);
	// nil means none.
	Progress io.Writer
	// Logger receives the components' log lines; nil discards them.
	Logger *slog.Logger
	// Merkle, if set, gives the log core (c) and the full pipeline (b)
	// their Merkle backend: it is called once for each of their ledgers
	// and must return an empty backend (for Trillian: a tree of its own)
	// and a function that releases it. Nil: the tiles in Pebble only.
	Merkle func(ctx context.Context) (ledger.MerkleBackend, func(), error)
	// MerkleName names the backend in the report ("trillian at ADDR");
	// empty means "pebble".
	MerkleName string
	// Witnesses, if above 0, adds (g): that many Spoor witnesses on
	// loopback, a covenant version naming them with a Quorum-of-Witnesses
	// policy, and a witnessing.Witnesser beside the ledger (tiles in
	// Pebble). 0 leaves (g) out.
	Witnesses int
	// Quorum is how many of the witnesses must cosign; 0 means a majority.
	Quorum int
	// WitnessInterval is the Witnesser's least time between two rounds;
	// 0 means witnessing.DefaultInterval, serve's default.
	WitnessInterval time.Duration
	// NoSubjectIndex runs every ledger without the subject index (issue
	// 22; serve's --no-subject-index), to measure what it costs. The
	// default keeps it, as serve does.
	NoSubjectIndex bool
}

func (c *Config) defaults() error {
	if c.Dir == "" {
		return errors.New("benchkit: Config.Dir is required")
	}
	if c.Events <= 0 {
		c.Events = 100000
	}
	if c.OfferedRate <= 0 {
		c.OfferedRate = 5000
	}
	if c.OfferedSeconds <= 0 {
		c.OfferedSeconds = 10
	}
	if c.StageSample <= 0 {
		c.StageSample = 50000
	}
	c.StageSample = min(c.StageSample, c.Events)
	if c.Publishers <= 0 {
		c.Publishers = 4
	}
	if c.PublishBatch <= 0 {
		c.PublishBatch = 64
	}
	c.PublishBatch = min(c.PublishBatch, natsbus.MaxBatchEvents)
	if c.Window <= 0 {
		c.Window = 32768
	}
	// A publisher waits until a whole message fits in the window.
	c.Window = max(c.Window, c.PublishBatch)
	if c.InzageSubjects <= 0 {
		c.InzageSubjects = 200
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Witnesses < 0 {
		return fmt.Errorf("benchkit: Config.Witnesses is %d", c.Witnesses)
	}
	if c.Witnesses > 0 {
		if c.Quorum <= 0 {
			c.Quorum = c.Witnesses/2 + 1
		}
		if c.Quorum > c.Witnesses {
			return fmt.Errorf("benchkit: a quorum of %d of %d witnesses can never be met", c.Quorum, c.Witnesses)
		}
		if c.WitnessInterval <= 0 {
			c.WitnessInterval = witnessing.DefaultInterval
		}
	}
	return nil
}

// Report is the outcome of one run. Rates are per second; every ceiling
// was measured in the same run on the same machine.
type Report struct {
	Machine Machine `json:"machine"`
	// Events is the number of full-load events; OfferedEvents those of
	// each of the two runs of the fixed offered load (published after
	// them, into the same log).
	Events        int `json:"events"`
	OfferedEvents int `json:"offered_events"`
	// MerkleLog is the Merkle backend of the log core and the pipeline:
	// "pebble" (the tiles only) or the Config.MerkleName of another.
	MerkleLog string `json:"merkle_log"`
	// SubjectIndex says whether the ledgers kept the subject index.
	SubjectIndex bool `json:"subject_index"`
	// EnvelopeBytes is the mean size of a signed envelope.
	EnvelopeBytes float64 `json:"envelope_bytes_avg"`
	Stages        []Stage `json:"stages"`
	// JetStreamSingle is the JetStream stage with one event per message,
	// measured for comparison when the full load publishes batch messages
	// (not part of the ceilings).
	JetStreamSingle *Stage   `json:"jetstream_one_event_per_message,omitempty"`
	Ceilings        Ceilings `json:"ceilings"`
	Pipeline        Pipeline `json:"pipeline"`
	LogCore         LogCore  `json:"log_core"`
	Inzage          Inzage   `json:"inzage"`
	// InzageCompacted is (d) again once the store is compacted.
	InzageCompacted Inzage    `json:"inzage_after_compaction"`
	Audit           Audit     `json:"audit"`
	Resources       Resources `json:"resources"`
	// Witnessing is (g), when Config.Witnesses asked for it.
	Witnessing *Witnessing `json:"witnessing,omitempty"`
	Targets    []Target    `json:"targets"`
	// PresignSeconds is how long generating and signing took (untimed
	// by the figures); TotalSeconds the whole run.
	PresignSeconds float64 `json:"presign_seconds"`
	// WarmupBytes were written to a file and removed before the log core
	// (untimed), in WarmupSeconds: see warmPageCache.
	WarmupBytes   int64   `json:"page_cache_warmup_bytes"`
	WarmupSeconds float64 `json:"page_cache_warmup_seconds"`
	TotalSeconds  float64 `json:"total_seconds"`
}

// Stage is one stage of the pipeline measured alone.
type Stage struct {
	Name string `json:"name"`
	// What says what exactly was timed.
	What   string `json:"what"`
	Events int    `json:"events"`
	// Rate is events/s measured alone (its single-stage ceiling).
	Rate        float64 `json:"rate"`
	WallSeconds float64 `json:"wall_seconds"`
	// CPUMicros is the process's CPU time per event (all goroutines).
	CPUMicros float64 `json:"cpu_us_per_event"`
}

// Ceilings are the limits the pipeline is compared with.
type Ceilings struct {
	Cores int `json:"cores"`
	// CPUMicros is the sum of the stages' CPU time per event.
	CPUMicros float64 `json:"cpu_us_per_event"`
	// Composed is Cores / CPUMicros, in events/s.
	Composed float64 `json:"composed"`
	// Lowest is the lowest single-stage rate, of LowestStage.
	Lowest      float64 `json:"lowest_stage"`
	LowestStage string  `json:"lowest_stage_name"`
}

// Pipeline is the full path: publishers, NATS, ingest, sequencer, commit.
type Pipeline struct {
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// RatioComposed and RatioLowest compare EventsPerSec with the ceilings.
	RatioComposed float64 `json:"ratio_to_composed_ceiling"`
	RatioLowest   float64 `json:"ratio_to_lowest_stage"`
	CPUMicros     float64 `json:"cpu_us_per_event"`
	Publishers    int     `json:"publishers"`
	// PublishBatch is the most events per message at full load.
	PublishBatch int `json:"publish_batch"`
	Window       int `json:"window"`
	// Latency is publish-to-checkpoint at full load (a sample of events).
	Latency Latency `json:"latency_full_load"`
	Offered Offered `json:"offered_load"`
	// OfferedCompacted is the offered load again once the store is
	// compacted (Offered runs right after the full load).
	OfferedCompacted Offered `json:"offered_load_compacted"`
	Commits          Commits `json:"commits"`
	// Rejected counts events the ledger refused (should be 0).
	Rejected uint64 `json:"rejected"`
}

// Offered is the fixed offered load.
type Offered struct {
	Rate         float64 `json:"rate"`
	Events       int     `json:"events"`
	AchievedRate float64 `json:"achieved_rate"`
	Latency      Latency `json:"latency"`
	Commits      Commits `json:"commits"`
}

// LogCore is the log core alone.
type LogCore struct {
	Entries       int     `json:"entries"`
	Seconds       float64 `json:"seconds"`
	EntriesPerSec float64 `json:"entries_per_sec"`
	CPUMicros     float64 `json:"cpu_us_per_entry"`
	What          string  `json:"what"`
	// RandomOrderPerSec and RandomOrderCPUMicros are the same run with ids
	// whose time part is in random order (a backlog of old events).
	RandomOrderPerSec    float64 `json:"random_order_ids_entries_per_sec"`
	RandomOrderCPUMicros float64 `json:"random_order_ids_cpu_us_per_entry"`
}

// Inzage is the answer time of inzage bundles.
type Inzage struct {
	StoredEvents     uint64  `json:"stored_events"`
	Subjects         int     `json:"subjects"`
	EventsPerSubject float64 `json:"events_per_subject_avg"`
	Latency          Latency `json:"latency"`
}

// Audit is the FG's audit over the stored ledger.
type Audit struct {
	Leaves uint64 `json:"leaves"`
	// MerkleLeavesPerSec: entry bundles read, leaf hashes, compact range,
	// root compared with the checkpoint.
	MerkleLeavesPerSec float64 `json:"merkle_leaves_per_sec"`
	// EventsPerSec: audit.Run in full (signatures, rules, statistics).
	EventsPerSec float64 `json:"events_per_sec"`
	Seconds      float64 `json:"seconds"`
	// VerifyCeiling is the envelope-open stage's rate (all cores).
	VerifyCeiling        float64 `json:"verify_ceiling"`
	RatioToVerifyCeiling float64 `json:"ratio_to_verify_ceiling"`
	OK                   bool    `json:"ok"`
}

// Resources are memory and storage.
type Resources struct {
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
	StoredEvents      uint64  `json:"stored_events"`
	LedgerDiskBytes   int64   `json:"ledger_disk_bytes"`
	DiskBytesPerEvent float64 `json:"ledger_disk_bytes_per_event"`
	EnvelopeBytes     float64 `json:"envelope_bytes_per_event"`
	DiskToEnvelope    float64 `json:"ledger_disk_to_envelope_ratio"`
	NATSStreamMsgs    uint64  `json:"nats_stream_msgs_after_ingest"`
	NATSStreamBytes   uint64  `json:"nats_stream_bytes_after_ingest"`
	NATSDirBytes      int64   `json:"nats_dir_bytes_after_ingest"`
}

// Target is one of issue 7's targets and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// rig is the material shared by the phases: keys, covenant, generator.
type rig struct {
	cfg     Config
	dir     string
	demo    *demo.Material
	logVkey string
	cosVkey string
	keys    *verifier.LogKeys
	signer  *verifier.CheckpointSigner
	gens    []*synth.Generator
	origin  string
	parties []string
	prog    *progress
	// vrf is the subject index's VRF key of every ledger the run opens
	// (one per rig: a ledger reopened on its folder must find its own);
	// nil with NoSubjectIndex.
	vrf *subjectindex.VRFKey
}

// Run runs the whole bench and returns its report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := newRig(cfg)
	if err != nil {
		return nil, err
	}
	defer r.prog.end()
	offered := min(cfg.Events, int(float64(cfg.OfferedRate)*cfg.OfferedSeconds))
	rep := &Report{Machine: thisMachine(), Events: cfg.Events, OfferedEvents: offered, MerkleLog: cfg.MerkleName, SubjectIndex: !cfg.NoSubjectIndex}
	if rep.MerkleLog == "" {
		rep.MerkleLog = "pebble"
	}

	r.prog.phase("sign events (untimed)", int64(cfg.Events+2*offered))
	t0 := time.Now()
	// The offered load runs twice (pipeline), each time with new events.
	ef, err := presign(ctx, filepath.Join(r.dir, "events.bin"), r.gens, r.demo.Parties, cfg.Events+2*offered, r.prog)
	if err != nil {
		return nil, err
	}
	rep.PresignSeconds = time.Since(t0).Seconds()
	rep.EnvelopeBytes = float64(ef.envBytes) / float64(ef.count)
	r.prog.end()

	pool, err := r.stages(ctx, ef, rep)
	if err != nil {
		return nil, fmt.Errorf("stage costs: %w", err)
	}
	// The log core needs distinct envelopes, not all of the sample: the
	// whole sample's opened events (over 100 MB) left on the heap would
	// make every garbage collection in the log core's window scan them,
	// which on two cores costs it a fifth of its speed. That is the
	// bench's memory, not the ledger's.
	pool = slices.Clone(pool[:min(len(pool), logCorePool)])
	runtime.GC()
	rep.WarmupBytes = int64(cfg.Events) * warmupBytesPerEvent
	r.prog.phase("page-cache warm-up (untimed)", 0)
	if rep.WarmupSeconds, err = warmPageCache(r.dir, rep.WarmupBytes); err != nil {
		return nil, err
	}
	r.prog.end()
	if err := r.logCore(ctx, pool, rep); err != nil {
		return nil, fmt.Errorf("log core: %w", err)
	}
	pool = nil
	runtime.GC()
	if err := r.pipeline(ctx, ef, rep); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if cfg.Witnesses > 0 {
		if err := r.witnessing(ctx, ef, rep); err != nil {
			return nil, fmt.Errorf("witnesses: %w", err)
		}
	}
	if err := os.Remove(ef.path); err != nil {
		return nil, fmt.Errorf("couldn't remove the event file: %w", err)
	}
	rep.Resources.PeakRSSBytes = peakRSS()
	rep.Machine.LoadEnd = loadAvg()
	rep.TotalSeconds = time.Since(start).Seconds()
	rep.Targets = targets(rep)
	return rep, nil
}

func newRig(cfg Config) (*rig, error) {
	m, err := demo.Generate(datadir.Dir(cfg.Dir).DemoKeys(), "amersfoort")
	if err != nil {
		return nil, fmt.Errorf("couldn't make the demo covenant: %w", err)
	}
	origin := m.Signed.Covenant.Origin
	r := &rig{cfg: cfg, dir: cfg.Dir, demo: m, origin: origin, prog: newProgress(cfg.Progress)}
	if !cfg.NoSubjectIndex {
		r.vrf = subjectindex.GenerateVRFKey()
	}
	var logSkey, cosSkey string
	logSkey, r.logVkey, cosSkey, r.cosVkey, err = verifier.GenerateLogKeys(origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't make log keys: %w", err)
	}
	if r.keys, err = verifier.ParseLogKeys(r.logVkey, r.cosVkey); err != nil {
		return nil, fmt.Errorf("log verifier keys: %w", err)
	}
	if r.signer, err = verifier.NewCheckpointSigner(logSkey, cosSkey); err != nil {
		return nil, fmt.Errorf("log signing keys: %w", err)
	}
	// About 50 events per child, so an inzage answer covers that many. The
	// synthetic BSN range (9999xxxxx passing the elfproef) holds about
	// 9000 numbers, so beyond that each further generator pseudonymises
	// its children under a secret of its own (same key id): other
	// pseudonyms, other subjects, as far as the ledger can tell.
	offered := min(cfg.Events, int(float64(cfg.OfferedRate)*cfg.OfferedSeconds))
	children := max(1, (cfg.Events+offered)/50)
	gens := (children + childrenPerGenerator - 1) / childrenPerGenerator
	now := time.Now()
	for g := range gens {
		key := m.SubjectKey
		if g > 0 {
			mac := hmac.New(sha256.New, m.SubjectKey.Secret)
			fmt.Fprintf(mac, "spoor/bench/subject-secret/%d", g)
			key.Secret = mac.Sum(nil)
		}
		gen, err := synth.New(m.Signed.Covenant, key, cfg.Seed+uint64(g), (children+g)/gens)
		if err != nil {
			return nil, fmt.Errorf("synthetic events: %w", err)
		}
		gen.Now = now
		r.gens = append(r.gens, gen)
	}
	for _, p := range m.Signed.Covenant.Parties {
		r.parties = append(r.parties, p.ID)
	}
	return r, nil
}

// openLedger opens a fresh ledger on Pebble in dir.
func (r *rig) openLedger(ctx context.Context, dir string) (*ledger.Ledger, *pebblestore.Store, error) {
	return r.openLedgerOn(ctx, dir, nil)
}

// openLedgerOn opens a fresh ledger on Pebble in dir with Merkle backend m
// (nil: the tiles in Pebble only).
func (r *rig) openLedgerOn(ctx context.Context, dir string, m ledger.MerkleBackend) (*ledger.Ledger, *pebblestore.Store, error) {
	return r.openLedgerWith(ctx, dir, m, r.demo.Signed)
}

// openLedgerWith opens the ledger in dir with Merkle backend m on covenant
// cov (a fresh folder: the demo's version 1 only).
func (r *rig) openLedgerWith(ctx context.Context, dir string, m ledger.MerkleBackend, cov *events.SignedCovenant) (*ledger.Ledger, *pebblestore.Store, error) {
	s, err := pebblestore.Open(dir, pebblestore.Config{})
	if err != nil {
		return nil, nil, err
	}
	l, err := ledger.Open(ctx, ledger.Config{
		Store: s, Signer: r.signer, Keys: r.keys,
		Covenant: cov, AdminVkey: r.demo.AdminVkey, Logger: r.cfg.Logger, Merkle: m, IndexVRF: r.vrf,
	})
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("couldn't open the ledger: %w", err)
	}
	return l, s, nil
}

// logCorePool is how many distinct opened events the log core cycles
// through (each with a fresh id).
const logCorePool = 4096

// childrenPerGenerator stays below the ~9000 synthetic BSNs of the test
// range, of which a generator draws its children without repeats.
const childrenPerGenerator = 6000

// children returns every synthetic child of every generator.
func (r *rig) children() []synth.Child {
	var out []synth.Child
	for _, g := range r.gens {
		out = append(out, g.Children()...)
	}
	return out
}

// covenant returns the covenant events are opened against.
func (r *rig) covenant() *events.Covenant { return r.demo.Signed.Covenant }

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func micros(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(n)
}
