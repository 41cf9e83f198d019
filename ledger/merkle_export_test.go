package ledger

// LeafKeyForTest is the store key of leaf record index, for tests that
// damage a pending tail on purpose.
func LeafKeyForTest(index uint64) []byte { return u64Key(tagLeaf, index) }
