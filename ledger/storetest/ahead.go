package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
)

// aheadOps is the number of ahead writes of a large batch, each of
// aheadValueSize bytes: 2 MiB in all, past the size at which a store may
// write them apart (Pebble ingests a run of at least 256 of them with 1 MiB
// of values as a table of its own), so that the suite reaches that path.
const (
	aheadOps       = 512
	aheadValueSize = 4096
)

// aheadKey is the key of ahead write i of the batch with prefix: new keys
// in increasing order, as the ledger's envelopes of new leaves.
func aheadKey(prefix string, i int) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix+"/ahead/"), uint64(i))
}

// aheadValue is the value of ahead write i of the batch with prefix.
func aheadValue(prefix string, i int) []byte {
	v := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, aheadValueSize/2)
	return append(v, prefix...)
}

// plainKey is the key of plain write i of the batch with prefix.
func plainKey(prefix string, i int) []byte { return []byte(fmt.Sprintf("%s/plain/%04d", prefix, i)) }

// aheadBatch is a batch as the sequencer writes it: n envelopes written
// ahead and plain writes (indices, tiles, the checkpoint) beside them.
func aheadBatch(prefix string, n, plain int) *ledger.Batch {
	var b ledger.Batch
	for i := range n {
		b.SetAhead(aheadKey(prefix, i), aheadValue(prefix, i))
	}
	for i := range plain {
		b.Set(plainKey(prefix, i), []byte(prefix))
	}
	return &b
}

// checkAheadBatch fails t unless the batch aheadBatch(prefix, n, plain) is
// wholly in s.
func checkAheadBatch(t *testing.T, s ledger.Store, prefix string, n, plain int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		v, err := s.Get(ctx, aheadKey(prefix, i))
		if err != nil || !bytes.Equal(v, aheadValue(prefix, i)) {
			t.Fatalf("ahead write %d of batch %s: %v (right value: %t)", i, prefix, err, bytes.Equal(v, aheadValue(prefix, i)))
		}
	}
	if got := count(t, s, prefix+"/ahead/"); got != n {
		t.Fatalf("batch %s: Scan sees %d ahead writes, want %d", prefix, got, n)
	}
	if got := count(t, s, prefix+"/plain/"); got != plain {
		t.Fatalf("batch %s: Scan sees %d plain writes, want %d", prefix, got, plain)
	}
}

// count counts the keys of s that start with prefix.
func count(t *testing.T, s ledger.Store, prefix string) int {
	t.Helper()
	n, err := countErr(s, prefix)
	if err != nil {
		t.Fatalf("scan %s: %v", prefix, err)
	}
	return n
}

// countErr counts the keys of s that start with prefix.
func countErr(s ledger.Store, prefix string) (int, error) {
	n := 0
	err := s.Scan(context.Background(), []byte(prefix), []byte(prefix+"\xff"), func(_, _ []byte) error { n++; return nil })
	return n, err
}

// testAheadWrites: once Commit returns, a batch's ahead writes are there
// with the rest of it, whether the batch has few of them or many, and later
// batches may overwrite and delete them like any key.
func testAheadWrites(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	mustCommit(t, s, aheadBatch("small", 3, 5))
	checkAheadBatch(t, s, "small", 3, 5)

	b := aheadBatch("large", aheadOps, 50)
	b.Delete(plainKey("small", 0)) // a plain op of the same batch, outside the run
	mustCommit(t, s, b)
	checkAheadBatch(t, s, "large", aheadOps, 50)
	if _, err := s.Get(ctx, plainKey("small", 0)); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a delete in a batch with ahead writes was lost: %v", err)
	}

	var later ledger.Batch
	later.Delete(aheadKey("large", 10))
	later.Set(aheadKey("large", 11), []byte("rewritten"))
	mustCommit(t, s, &later)
	if _, err := s.Get(ctx, aheadKey("large", 10)); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("an ahead write deleted by a later batch is still there: %v", err)
	}
	if v, err := s.Get(ctx, aheadKey("large", 11)); err != nil || string(v) != "rewritten" {
		t.Fatalf("an ahead write overwritten by a later batch: %.20q, %v", v, err)
	}
}

// testAheadSurviveReopen: a batch with many ahead writes, once committed,
// survives a close and reopen whole.
func testAheadSurviveReopen(t *testing.T, r Reopener) {
	s := r.Open(t)
	mustCommit(t, s, aheadBatch("large", aheadOps, 50))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = r.Open(t)
	defer s.Close()
	checkAheadBatch(t, s, "large", aheadOps, 50)
}
