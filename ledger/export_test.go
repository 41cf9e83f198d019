package ledger

// OpenSealedForTest decrypts a stored body with k, for tests that check
// what a copy of the store (a backup) still reveals.
func OpenSealedForTest(k *DataKeys, index uint64, body []byte) ([]byte, error) {
	return k.open(index, body)
}
