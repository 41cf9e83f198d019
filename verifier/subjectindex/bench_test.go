package subjectindex

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkVerifyList measures what a verifier does per map key of a
// bundle: the commitment of a list of 20 entries and an inclusion proof
// 21 deep (a map of about a million keys).
func BenchmarkVerifyList(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	l := &List{}
	for i := range 20 {
		l.Items = append(l.Items, Item{Leaf: uint64(1000 * (i + 1))})
	}
	k := testKey(1)
	p := &Proof{Kind: Inclusion, Siblings: make([]Hash, 21)}
	for d := range p.Siblings {
		for j := range p.Siblings[d] {
			p.Siblings[d][j] = byte(rng.Uint32())
		}
	}
	v, _ := l.Commitment(k)
	root := p.rootFrom(&k, LeafHash(k, v))
	raw, _ := p.MarshalBinary()
	b.ResetTimer()
	for range b.N {
		q, err := ParseProof(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyList(root, k, l, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "proof-B")
}
