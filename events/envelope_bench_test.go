package events_test

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
)

// benchEnvelopes signs n realistic synthetic events with the demo
// covenant's party keys (signing is outside every timed loop).
func benchEnvelopes(b *testing.B, n int) (*events.Covenant, [][]byte) {
	b.Helper()
	m, err := demo.Generate(filepath.Join(b.TempDir(), "demo-keys"), "amersfoort")
	if err != nil {
		b.Fatal(err)
	}
	g, err := synth.New(m.Signed.Covenant, m.SubjectKey, 1, 100)
	if err != nil {
		b.Fatal(err)
	}
	envs := make([][]byte, n)
	for i := range envs {
		d, _ := g.Next()
		k := m.Parties[d.Discloser]
		events.Seal(d, k)
		if envs[i], err = events.Sign(d, k); err != nil {
			b.Fatal(err)
		}
	}
	return m.Signed.Covenant, envs
}

// BenchmarkOpen is what ingest does per event: the strict envelope, the
// canonical payload, validation, the key in force and the signature.
func BenchmarkOpen(b *testing.B) {
	cov, envs := benchEnvelopes(b, 256)
	b.SetBytes(int64(len(envs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := events.Open(envs[i%len(envs)], cov.Origin, cov); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenReference is Open by the strict path alone (encoding/json,
// re-encoding, regular expressions): what Open cost before the fast path,
// measured in the same run for a fair ratio on a shared machine.
func BenchmarkOpenReference(b *testing.B) {
	cov, envs := benchEnvelopes(b, 256)
	b.SetBytes(int64(len(envs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := events.OpenReference(envs[i%len(envs)], cov.Origin, cov); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenParallel is Open on every core, as ingest's workers run it.
func BenchmarkOpenParallel(b *testing.B) {
	cov, envs := benchEnvelopes(b, 256)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := events.Open(envs[i%len(envs)], cov.Origin, cov); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkOpenMany opens batches of envelopes as ingest opens a batch
// message and the audit a run of entries: one signature batch each. The
// ns/op is per batch; ns/event is what to compare with BenchmarkOpen.
func BenchmarkOpenMany(b *testing.B) {
	cov, envs := benchEnvelopes(b, 1024)
	for _, n := range []int{64, 256, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, o := range events.OpenMany(envs[:n], cov.Origin, cov) {
					if o.Err != nil {
						b.Fatal(o.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// BenchmarkOpenParts splits Open into its steps, to show where its time goes.
func BenchmarkOpenParts(b *testing.B) {
	cov, envs := benchEnvelopes(b, 256)
	parsed := make([]*events.Envelope, len(envs))
	ds := make([]*events.Disclosure, len(envs))
	for i, e := range envs {
		env, err := events.ParseEnvelope(e)
		if err != nil {
			b.Fatal(err)
		}
		parsed[i] = env
		if ds[i], err = events.DecodeDisclosure(env.Payload); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("ParseEnvelope", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := events.ParseEnvelope(envs[i%len(envs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("DecodeDisclosure", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := events.DecodeDisclosure(parsed[i%len(parsed)].Payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ParseEnvelopeStrict", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := events.ParseEnvelopeStrict(envs[i%len(envs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("DecodeDisclosureStrict", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := events.DecodeDisclosureStrict(parsed[i%len(parsed)].Payload); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ValidateAll", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := events.ValidateAll(ds[i%len(ds)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Validate", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := ds[i%len(ds)].Validate(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("PartyKey", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := ds[i%len(ds)]
			if _, err := cov.PartyKey(d.Discloser, parsed[i%len(parsed)].KeyID, d.OccurredAt); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		pubs := make([]ed25519.PublicKey, len(parsed))
		for i, d := range ds {
			pub, err := cov.PartyKey(d.Discloser, parsed[i].KeyID, d.OccurredAt)
			if err != nil {
				b.Fatal(err)
			}
			pubs[i] = pub
		}
		i := 0
		for b.Loop() {
			if err := parsed[i%len(parsed)].Verify(pubs[i%len(pubs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = cov.Check(ds[i%len(ds)])
			i++
		}
	})
}

// BenchmarkSignature is one Ed25519 check of a real envelope's PAE:
// crypto/ed25519 beside the ledger's verifier (curve25519-voi under the
// same rule, the key expanded once), in the same run.
func BenchmarkSignature(b *testing.B) {
	cov, envs := benchEnvelopes(b, 1)
	env, err := events.ParseEnvelope(envs[0])
	if err != nil {
		b.Fatal(err)
	}
	d, err := events.DecodeDisclosure(env.Payload)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := cov.PartyKey(d.Discloser, env.KeyID, d.OccurredAt)
	if err != nil {
		b.Fatal(err)
	}
	msg := events.PAE(env.PayloadType, env.Payload)
	for _, c := range []struct {
		name   string
		verify func(ed25519.PublicKey, []byte, []byte) bool
	}{{"crypto-ed25519", ed25519.Verify}, {"ledger", events.VerifySignature}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if !c.verify(pub, msg, env.Sig) {
					b.Fatal("a good signature is refused")
				}
			}
		})
	}
}
