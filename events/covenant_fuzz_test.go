package events

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// addSeeds adds every file of testdata/covenant with the given extension to
// the fuzz corpus.
func addSeeds(f *testing.F, ext string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "covenant", "*"+ext))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no %s seeds in testdata/covenant: %v", ext, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseCovenantYAML(f *testing.F) {
	addSeeds(f, ".yaml")
	f.Add([]byte("schema: spoor.covenant/v1\nversion: 1\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("parties:\n  - keys:\n      - valid_until: 2023-05-25T00:00:00Z\n"))
	f.Add([]byte("rules: {consent: {by_age_band: {under-12: parents}}}\n"))
	d := testDisclosure(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCovenantYAML(b)
		if err != nil {
			var es CovenantErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not a non-empty CovenantErrors: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed, but does not validate: %v", err)
		}
		// Whatever a valid covenant says, using it must not fail.
		c.Check(d)
		c.CheckRecording(d, time.Now())
		for _, p := range c.Parties {
			for _, k := range p.Keys {
				pub, err := k.Public()
				if err != nil {
					t.Fatalf("a validated key does not decode: %v", err)
				}
				if _, err := c.PartyKey(p.ID, KeyID(pub), k.ValidFrom); err != nil && !k.Revoked {
					t.Fatalf("key not in force at its own valid_from: %v", err)
				}
			}
		}
		for _, cat := range c.Vocabulary.Categories {
			if days := c.RetentionDays(cat.ID); days < 1 {
				t.Fatalf("retention of %s is %d days", cat.ID, days)
			}
		}
	})
}

func FuzzParseSignedCovenant(f *testing.F) {
	addSeeds(f, ".signed")
	f.Add([]byte(`{"payloadType":"application/vnd.spoor.covenant.v1+yaml","payload":"","signatures":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseSignedCovenant(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sc.Envelope.Raw, b) {
			t.Fatal("Raw is not the parsed bytes")
		}
		if sc.Covenant == nil || sc.Envelope.PayloadType != CovenantPayloadType {
			t.Fatal("parsed without a covenant of the covenant payload type")
		}
		if sc.Covenant.Version == 1 {
			// Version 1 verified on parse, so it starts a chain.
			if _, err := NewChain(sc, sc.Covenant.Administrator.Key); err != nil {
				t.Fatalf("a parsed version 1 does not start a chain: %v", err)
			}
		}
	})
}
