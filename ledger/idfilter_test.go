package ledger

import (
	"encoding/binary"
	"testing"

	"github.com/google/uuid"
)

// TestIDFilterGrowsWithoutFalseNegatives fills a filter far past its first
// capacity: every id added must still be reported, and ids never added
// must be reported rarely (the chain's bound on false positives).
func TestIDFilterGrowsWithoutFalseNegatives(t *testing.T) {
	f := &idFilter{first: 1000}
	key := func(n uint64) []byte {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[8:], n*0x9e3779b97f4a7c15)
		return partyIDKey(tagEventID, "gemeente-amersfoort", u.String())
	}
	const added = 20000
	for n := range uint64(added) {
		f.add(key(n))
	}
	// 1000 + 2000 + 4000 + 8000 + 16000 >= 20000: five filters.
	if len(f.filters) != 5 {
		t.Fatalf("%d filters for %d ids from a first capacity of 1000, want 5", len(f.filters), added)
	}
	for n := range uint64(added) {
		if !f.mayContain(key(n)) {
			t.Fatalf("id %d was added but the filter says it is not", n)
		}
	}
	const probes = 100000
	fp := 0
	for n := uint64(added); n < added+probes; n++ {
		if f.mayContain(key(n)) {
			fp++
		}
	}
	// Each filter is sized for idFilterFP at capacity; the chain's rate is
	// at most their sum. Allow twice that for chance.
	if limit := int(2 * float64(len(f.filters)) * idFilterFP * probes); fp > limit {
		t.Fatalf("%d false positives in %d probes, more than %d", fp, probes, limit)
	}
	t.Logf("%d false positives in %d probes over %d filters", fp, probes, len(f.filters))
}

// TestIDFilterNilKnowsNothing: before the sequencer builds it, the filter
// must send every lookup to the store.
func TestIDFilterNilKnowsNothing(t *testing.T) {
	var f *idFilter
	f.add([]byte("x"))
	if !f.mayContain([]byte("y")) {
		t.Fatal("a nil filter said an id is certainly not logged")
	}
}
