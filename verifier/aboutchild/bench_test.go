//go:build unix || js

package aboutchild

import (
	"fmt"
	"testing"
)

// BenchmarkArgon2id measures one derivation of the sealed proof's key (what
// a guesser pays per try, and the parent once) at 256 MiB for 1 to 4 passes
// and 1 and 2 lanes. cpu-s/op is the process's CPU time per derivation (user
// and system, all threads): the figure a whole-space search multiplies, since
// a guesser runs one derivation per core whatever the lanes. The wall time
// (ns/op) is what the parent waits. docs/dpia.md ("Measured") has the runs.
func BenchmarkArgon2id(b *testing.B) {
	for _, time := range []uint8{1, 2, 3, 4} {
		for _, threads := range []uint8{1, 2} {
			p := Params{MemoryKiB: MinMemoryKiB, Time: time, Threads: threads}
			b.Run(fmt.Sprintf("m=256MiB/t=%d/p=%d", time, threads), func(b *testing.B) {
				sp := &SealedProof{IDType: IDTypeBSN, Params: p}
				start := cpuTime()
				for b.Loop() {
					if _, err := sp.aead("999990019"); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
			})
		}
	}
}

// BenchmarkVRFVerify is what one guess would cost if the bundle carried the
// proof unsealed: one VRF verification.
func BenchmarkVRFVerify(b *testing.B) {
	sk := GenerateKey()
	proof, _, _ := sk.Prove(IDTypeBSN, "999990019")
	pk := sk.Public()
	for b.Loop() {
		if _, err := pk.Verify(IDTypeBSN, "999990019", proof); err != nil {
			b.Fatal(err)
		}
	}
}
