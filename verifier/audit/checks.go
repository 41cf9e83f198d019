package audit

// Check names one integrity check of the audit. Its value is a stable id:
// it is the "check" of a Problem and a key of ProblemCounts in the
// audit's JSON, and reports label it (the Dutch report package keys its
// labels by it). Every check the audit makes is listed here and in Checks,
// so that a new one cannot go unlabelled.
type Check string

// The audit's checks.
const (
	// CheckCheckpointSignature: a kept checkpoint does not verify with the
	// pinned keys.
	CheckCheckpointSignature Check = "checkpoint-signature"
	// CheckCheckpointSequence: checkpoints are missing from the kept
	// sequence.
	CheckCheckpointSequence Check = "checkpoint-sequence"
	// CheckCheckpointConsistency: two checkpoints disagree (a smaller size,
	// another root for a size, a time going back).
	CheckCheckpointConsistency Check = "checkpoint-consistency"
	// CheckCheckpointRoot: the rebuilt tree does not match a checkpoint.
	CheckCheckpointRoot Check = "checkpoint-root"
	// CheckWitnessPolicy: a stored witnessed checkpoint does not meet the
	// witness policy of the covenant version in force at its size (or does
	// not verify, or is not the kept checkpoint of its number).
	CheckWitnessPolicy Check = "witness-policy"
	// CheckLeafMissing: a leaf record is not stored.
	CheckLeafMissing Check = "leaf-missing"
	// CheckLeafRecord: a stored leaf record cannot be parsed.
	CheckLeafRecord Check = "leaf-record"
	// CheckLeafTile: a leaf record does not hash to its stored tile entry.
	CheckLeafTile Check = "leaf-tile"
	// CheckLeafBeyondCheckpoint: leaf records beyond the newest checkpoint.
	CheckLeafBeyondCheckpoint Check = "leaf-beyond-checkpoint"
	// CheckIntegratedAt: a leaf's integrated_at goes back.
	CheckIntegratedAt Check = "integrated-at"
	// CheckWitnessedTime: a leaf's integrated_at lies outside what the
	// witnesses' times allow: after the witnessed time of the first
	// witnessed checkpoint that includes it, or before that of the last
	// one without it, by more than the stated skew.
	CheckWitnessedTime Check = "witnessed-time"
	// CheckBodyHash: a stored body does not match its leaf record's hash.
	CheckBodyHash Check = "body-hash"
	// CheckBodyUnreadable: a stored body cannot be read.
	CheckBodyUnreadable Check = "body-unreadable"
	// CheckBodyMissing: a body is not stored and nothing records why.
	CheckBodyMissing Check = "body-missing"
	// CheckCovenant: a covenant entry does not hold as a version of the
	// chain.
	CheckCovenant Check = "covenant"
	// CheckCovenantIndex: a leaf names the wrong covenant version.
	CheckCovenantIndex Check = "covenant-index"
	// CheckSignature: a disclosure's envelope does not verify.
	CheckSignature Check = "signature"
	// CheckEventID: an event id is logged twice.
	CheckEventID Check = "event-id"
	// CheckRetentionOverdue: an envelope is still stored after its
	// retention ended.
	CheckRetentionOverdue Check = "retention-overdue"
	// CheckFindings: the stored findings differ from the covenant's rules.
	CheckFindings Check = "findings"
	// CheckTombstone: a tombstone is malformed or erases what it may not.
	CheckTombstone Check = "tombstone"
	// CheckTombstoneRule: a tombstone's rule is not a rule the ledger
	// erases under.
	CheckTombstoneRule Check = "tombstone-rule"
	// CheckTombstoneEarly: a tombstone erased a leaf before its retention
	// ended.
	CheckTombstoneEarly Check = "tombstone-early"
	// CheckErasureDecision: an erasure decision beside the log names a
	// tombstone the log does not show.
	CheckErasureDecision Check = "erasure-decision"
	// CheckAnswer: an answer entry's body is malformed, or lists a leaf
	// that is not a disclosure (or, for erased, a tombstone) about its
	// child before it.
	CheckAnswer Check = "answer"
	// CheckIndexHead: a subject index head's body is malformed, names
	// another log or tree size, or changes the VRF key.
	CheckIndexHead Check = "index-head"
)

// Checks lists every check of the audit, in the order a report groups
// them: checkpoints (and their witnesses), leaves, bodies, covenants, disclosures, tombstones.
func Checks() []Check {
	return []Check{CheckCheckpointSignature, CheckCheckpointSequence, CheckCheckpointConsistency, CheckCheckpointRoot,
		CheckWitnessPolicy,
		CheckLeafMissing, CheckLeafRecord, CheckLeafTile, CheckLeafBeyondCheckpoint, CheckIntegratedAt, CheckWitnessedTime,
		CheckBodyHash, CheckBodyUnreadable, CheckBodyMissing, CheckCovenant, CheckCovenantIndex,
		CheckSignature, CheckEventID, CheckRetentionOverdue, CheckFindings,
		CheckTombstone, CheckTombstoneRule, CheckTombstoneEarly, CheckErasureDecision, CheckAnswer, CheckIndexHead, CheckIndexRecompute}
}
