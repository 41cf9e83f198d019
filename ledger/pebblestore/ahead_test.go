package pebblestore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
)

// aheadValue is the value of ahead write i: 4 KiB, so that 300 of them
// are past the ingest threshold of 1 MiB.
func aheadValue(i int) []byte {
	return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 2048)
}

func aheadKey(i int) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, uint64(i)) }

// TestAheadWrites: a batch's ahead writes are ingested as a table of their
// own only when there are enough of them and they form a run of new keys
// that no other write of the batch falls into; in every case the whole
// batch is there after Commit and after a reopen, with the last write of
// a key winning.
func TestAheadWrites(t *testing.T) {
	for _, c := range []struct {
		name     string
		n        int
		between  bool // a plain write inside the run's key range
		dup      bool // the run writes one key twice
		mem      bool
		ingested bool
	}{
		{name: "large run", n: 300, ingested: true},
		{name: "large run, in-memory FS", n: 300, mem: true, ingested: true},
		{name: "too few", n: 100},
		{name: "another write inside the run", n: 300, between: true},
		{name: "a key twice", n: 300, dup: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir, cfg := t.TempDir(), pebblestore.Config{}
			if c.mem {
				dir, cfg.FS = "", vfs.NewMem()
			}
			s, err := pebblestore.Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var b ledger.Batch
			want := map[string][]byte{}
			for i := range c.n {
				b.SetAhead(aheadKey(i), aheadValue(i))
				want[string(aheadKey(i))] = aheadValue(i)
			}
			if c.dup {
				b.SetAhead(aheadKey(7), []byte("second"))
				want[string(aheadKey(7))] = []byte("second")
			}
			for i := range 50 {
				k := []byte(fmt.Sprintf("s%04d", i))
				b.Set(k, []byte{byte(i)})
				want[string(k)] = []byte{byte(i)}
			}
			if c.between {
				k := append(aheadKey(10), 0)
				b.Set(k, []byte("plain"))
				want[string(k)] = []byte("plain")
			}
			if err := s.Commit(ctx, &b); err != nil {
				t.Fatal(err)
			}
			if got := s.DB().Metrics().Ingest.Count; (got == 1) != c.ingested || got > 1 {
				t.Fatalf("%d ingests, want ingested=%t", got, c.ingested)
			}
			check := func(s *pebblestore.Store, when string) {
				for k, v := range want {
					got, err := s.Get(ctx, []byte(k))
					if err != nil || !bytes.Equal(got, v) {
						t.Fatalf("%s: %x: %v (right value: %t)", when, k, err, bytes.Equal(got, v))
					}
				}
				n := 0
				if err := s.Scan(ctx, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
					t.Fatal(err)
				}
				if n != len(want) {
					t.Fatalf("%s: %d keys, want %d", when, n, len(want))
				}
			}
			check(s, "after Commit")
			if c.mem {
				s.Close()
				return
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = pebblestore.Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			check(s, "after reopening")
		})
	}
}
