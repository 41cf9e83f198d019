package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// BenchmarkTreeAppend is the tile update per leaf: the compact range, the
// edge tiles of every level, and handing the dirty tiles to a batch every
// 1024 leaves, as the sequencer does.
func BenchmarkTreeAppend(b *testing.B) {
	t := newTree()
	var buf [8]byte
	leaves := make([][32]byte, 4096)
	for i := range leaves {
		binary.BigEndian.PutUint64(buf[:], uint64(i))
		leaves[i] = sha256.Sum256(buf[:])
	}
	var batch Batch
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := t.append(leaves[i%len(leaves)][:]); err != nil {
			b.Fatal(err)
		}
		i++
		if i%1024 == 0 {
			batch.Ops = batch.Ops[:0]
			t.takeDirty(func(level int, index uint64, data []byte) { batch.Set(tileKey(level, index), data) })
		}
	}
}
