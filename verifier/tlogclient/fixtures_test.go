package tlogclient

// The keys of the test log the client reads (its tree is an
// internal/memtree): a fresh key set with a signer. Package verifier's
// tests keep their own (its test files are not importable from here).

import (
	"testing"

	"github.com/spoor-ledger/spoor/verifier"
)

// testLog is a freshly generated log key set with a signer.
type testLog struct {
	signer *verifier.CheckpointSigner
	keys   *verifier.LogKeys
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	logSkey, logVkey, cosSkey, cosVkey, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{}
	if l.signer, err = verifier.NewCheckpointSigner(logSkey, cosSkey); err != nil {
		t.Fatal(err)
	}
	if l.keys, err = verifier.ParseLogKeys(logVkey, cosVkey); err != nil {
		t.Fatal(err)
	}
	return l
}

func leafRecordsEqual(a, b *verifier.LeafRecord) bool {
	return a.Type == b.Type && a.BodyHash == b.BodyHash && a.IntegratedAt.Equal(b.IntegratedAt) &&
		a.CovenantIndex == b.CovenantIndex && a.ErasedIndex == b.ErasedIndex && a.RuleID == b.RuleID
}
