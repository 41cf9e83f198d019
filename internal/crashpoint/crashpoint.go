// Package crashpoint lets crash tests kill the process at named points of
// the commit path, the way a power cut or an OOM kill would: with SIGKILL,
// no deferred functions, no flushing.
//
// The switch exists only in binaries built with the build tag crashpoints
// (armed.go): the crash tests build `spoor serve` (and, for the ledger's
// own crash test, their test binary) with -tags crashpoints and start it
// with the crash point named in its environment; the process kills itself
// the Nth time (default 1st) it reaches that point. A release build has no
// switch at all (disarmed.go: Hit is an empty function the compiler drops),
// so nothing read from the environment can make a production ledger kill
// itself; a test in cmd/spoor builds the binary without tags and checks
// that the variable's name is not in it.
package crashpoint

// The named points, in the order a batch passes them.
const (
	// MidBatch: leaves are being added to the batch, nothing is committed.
	MidBatch = "mid-batch"
	// DuringSigning: the checkpoint is signed, the batch not yet committed.
	DuringSigning = "during-signing"
	// AfterAhead: the envelopes of a large batch are ingested into the
	// store ahead of the batch (ledger.Batch.SetAhead), the rest of the
	// batch is not committed.
	AfterAhead = "after-ahead-write"
	// AfterCommit: the batch is durable, no JetStream message is acked yet.
	AfterCommit = "after-commit-before-ack"
	// MidAck: some of a batch's messages are acked, others not.
	MidAck = "mid-ack"
	// WitnessedBeforeStore: beside the batches, in ledger/witnessing: the
	// witnesses' quorum cosigned the published head (each persisted it
	// before answering), the ledger has not stored the cosignatures yet.
	// After a restart the witnesses hold a checkpoint the ledger never
	// recorded as witnessed: that must not look like a fork.
	WitnessedBeforeStore = "witnessed-before-store"
	// AnswerLogged: in ledger/answer, beside the batches: an inzage
	// release's answer entry is durable (with the request marked
	// released in the same batch), and the bundle is neither made nor
	// kept nor handed to the desk user. After a restart the release must
	// be downloadable, and the log must hold that one answer entry.
	AnswerLogged = "answer-logged-before-bundle"
	// IndexApplied: the subject index's update of a batch is computed
	// (ledger/index.go), its index head not yet appended, nothing of the
	// batch committed.
	IndexApplied = "index-applied"
	// IndexBuildChunk: Open's build of the subject index over an existing
	// log has committed one chunk (and how far it got), not the rest nor
	// the first index head.
	IndexBuildChunk = "index-build-chunk"
	// AfterStoreCommit: in the ledger, a batch's Store.Commit (with its
	// fsync) has returned; the replicas, the new head and the submitters
	// have not been told.
	AfterStoreCommit = "after-store-commit"
)

// Tag is the build tag that arms the switch.
const Tag = "crashpoints"
