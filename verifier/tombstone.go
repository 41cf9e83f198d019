package verifier

// TombstoneSchema is TombstoneBody.Schema: the one version of the tombstone
// body the ledger writes and the audit reads.
const TombstoneSchema = "spoor.tombstone/v1"

// TombstoneBody is the body of a tombstone entry: which leaf was erased and
// by which rule, never whom it was about. The ledger writes it (JSON, in
// this field order) when it erases a disclosure; its SHA-256 is in the
// tombstone's leaf record, so the signed checkpoint covers it, and the
// audit reads it back to check it against the leaf record.
type TombstoneBody struct {
	Schema          string `json:"schema"`
	Origin          string `json:"origin"`
	ErasedIndex     uint64 `json:"erased_index"`
	ErasedLeafHash  string `json:"erased_leaf_hash"`
	RuleID          string `json:"rule_id"`
	CovenantVersion int    `json:"covenant_version"`
}

// AnswerRetentionRule is the rule id of the tombstone that erases an
// inzage answer's body once the covenant's answer retention
// (events.Covenant.AnswerRetentionDays) has passed: only answer entries are
// erased under it, and answer entries under no other rule.
const AnswerRetentionRule = "retention:answers"
