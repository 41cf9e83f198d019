package events_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

// FuzzParseWitnessPolicy: the parser never panics, returns a policy or a
// *WitnessPolicyError, and a policy it accepts is well-formed (the quorum
// is defined, every group's threshold is within its members) and can be
// evaluated.
func FuzzParseWitnessPolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/witnesspolicy/*.policy")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := events.ParseWitnessPolicy(text)
		if err != nil {
			var pe *events.WitnessPolicyError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, g := range p.Groups {
			if g.Threshold < 1 || g.Threshold > len(g.Members) {
				t.Fatalf("group %s: threshold %d of %d", g.Name, g.Threshold, len(g.Members))
			}
		}
		all := p.Met(func(string) bool { return true })
		if !all {
			t.Fatalf("the quorum is not met with every witness cosigning")
		}
		if p.Quorum != events.PolicyNone && p.Met(func(string) bool { return false }) {
			t.Fatalf("the quorum %s is met with no witness", p.Quorum)
		}
	})
}
