package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// TestCommitKeepsOrderOfSameKey checks that Commit, which hands a batch to
// Pebble in key order, keeps the batch's order among writes of one key: the
// last write of a key wins, whatever else the batch holds and in whatever
// order its keys come.
func TestCommitKeepsOrderOfSameKey(t *testing.T) {
	ctx := context.Background()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	want := map[string]string{} // "" means deleted
	for round := range 20 {
		var b ledger.Batch
		for i := range 500 {
			// Few distinct keys, so that most are written several times
			// in one batch, under several table tags.
			k := fmt.Sprintf("%c%03d", "spoi"[rng.IntN(4)], rng.IntN(60))
			if rng.IntN(4) == 0 {
				b.Delete([]byte(k))
				want[k] = ""
				continue
			}
			v := fmt.Sprintf("r%d-w%d", round, i)
			b.Set([]byte(k), []byte(v))
			want[k] = v
		}
		if err := s.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range want {
		got, err := s.Get(ctx, []byte(k))
		switch {
		case v == "" && !errors.Is(err, ledger.ErrNotFound):
			t.Errorf("%s: got %q, %v; want it deleted", k, got, err)
		case v != "" && (err != nil || string(got) != v):
			t.Errorf("%s: got %q, %v; want %q (the batch's last write)", k, got, err, v)
		}
	}
	var prev []byte
	err = s.Scan(ctx, nil, nil, func(k, _ []byte) error {
		if prev != nil && string(prev) >= string(k) {
			return fmt.Errorf("scan out of order: %q after %q", k, prev)
		}
		prev = append(prev[:0], k...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
