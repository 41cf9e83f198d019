package events_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
)

var updatePolicyGolden = flag.Bool("update-policy", false, "rewrite testdata/witnesspolicy/*.want")

// describePolicy is the golden form of a parsed policy: every line as the
// parser understood it, keys by fingerprint.
func describePolicy(p *events.WitnessPolicy) string {
	var b strings.Builder
	for _, l := range p.Logs {
		fmt.Fprintf(&b, "log %s+%08x %q (line %d)\n", l.Verifier.Name(), l.Verifier.KeyHash(), l.URL, l.Line)
	}
	for _, w := range p.Witnesses {
		fmt.Fprintf(&b, "witness %s %s+%08x %q (line %d)\n", w.Name, w.Verifier.Name(), w.Verifier.KeyHash(), w.URL, w.Line)
	}
	for _, g := range p.Groups {
		fmt.Fprintf(&b, "group %s %d of %s (line %d)\n", g.Name, g.Threshold, strings.Join(g.Members, ","), g.Line)
	}
	fmt.Fprintf(&b, "quorum %s (line %d)\n", p.Quorum, p.QuorumLine)
	return b.String()
}

// TestWitnessPolicyGolden parses every testdata/witnesspolicy/*.policy and
// compares what it understood (ok-*) or the error (bad-*) with the .want
// file beside it.
func TestWitnessPolicyGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/witnesspolicy/*.policy")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden policies: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".policy")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := events.ParseWitnessPolicy(string(text))
			var got string
			switch {
			case strings.HasPrefix(name, "ok-"):
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				got = describePolicy(p)
			default:
				var pe *events.WitnessPolicyError
				if !errors.As(err, &pe) || !errors.Is(err, events.ErrWitnessPolicy) {
					t.Fatalf("got %v, want a *WitnessPolicyError", err)
				}
				got = err.Error() + "\n"
			}
			want := strings.TrimSuffix(f, ".policy") + ".want"
			if *updatePolicyGolden {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(w) {
				t.Errorf("got\n%s\nwant\n%s", got, w)
			}
		})
	}
}

// TestWitnessPolicyMet: the quorum of the 2-of-3 golden policy is met by
// any two witnesses and not by one; the nested one needs fg-c and one of
// fg-a, fg-b; none is always met.
func TestWitnessPolicyMet(t *testing.T) {
	load := func(name string) *events.WitnessPolicy {
		text, err := os.ReadFile("testdata/witnesspolicy/" + name + ".policy")
		if err != nil {
			t.Fatal(err)
		}
		p, err := events.ParseWitnessPolicy(string(text))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	of := func(names ...string) func(string) bool {
		return func(n string) bool { return strings.Contains(" "+strings.Join(names, " ")+" ", " "+n+" ") }
	}
	for _, c := range []struct {
		policy string
		signed []string
		want   bool
	}{
		{"ok-2of3", nil, false},
		{"ok-2of3", []string{"fg-a"}, false},
		{"ok-2of3", []string{"fg-a", "fg-c"}, true},
		{"ok-2of3", []string{"fg-a", "fg-b", "fg-c"}, true},
		{"ok-nested", []string{"fg-a", "fg-b"}, false},
		{"ok-nested", []string{"fg-b", "fg-c"}, true},
		{"ok-single", []string{"fg-a"}, true},
		{"ok-single", []string{"fg-b"}, false},
		{"ok-none", nil, true},
	} {
		if got := load(c.policy).Met(of(c.signed...)); got != c.want {
			t.Errorf("%s with %v: met %v, want %v", c.policy, c.signed, got, c.want)
		}
	}
}
