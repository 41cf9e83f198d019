package report

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// TestEveryIDHasADutchLabel fails when a word a report can show has no
// Dutch label: every audit check, finding rule, withholding ground,
// relation, erasure status, erasure ground, channel, consent giver and kind
// of party, and every category, purpose, legal ground, exception, statute and role of
// both demo covenants. A new id added without its label fails here rather
// than show up raw in a parent's or the FG's report.
func TestEveryIDHasADutchLabel(t *testing.T) {
	has := func(kind, id, label string, ok bool) {
		t.Helper()
		if !ok || label == "" || label == id {
			t.Errorf("%s %q has no Dutch label", kind, id)
		}
	}
	for _, c := range audit.Checks() {
		l, ok := lookup(checkLabels, c)
		has("audit check", string(c), l, ok)
	}
	if len(checkLabels) > len(audit.Checks()) {
		t.Errorf("%d check labels for %d checks: a label of a check that audit.Checks does not list", len(checkLabels), len(audit.Checks()))
	}
	for _, r := range events.FindingRules() {
		l := events.FindingLabelNL(r)
		has("finding rule", r, l, true)
	}
	for _, g := range verifier.WithholdGrounds() {
		l, ok := lookup(withholdLabels, g)
		has("withholding ground", g, l, ok)
	}
	for _, r := range verifier.Relations() {
		l, ok := lookup(relationLabels, r)
		has("relation", r, l, ok)
	}
	for _, s := range verifier.ErasureStatuses() {
		l, ok := lookup(erasureStatusLabels, s)
		has("erasure status", s, l, ok)
	}
	for _, g := range verifier.ErasureGrounds() {
		l, ok := lookup(erasureGroundLabels, g)
		has("erasure ground", g, l, ok)
		if ErasureGroundLabel(g) != l {
			t.Errorf("ErasureGroundLabel(%q) = %q, want the table's %q", g, ErasureGroundLabel(g), l)
		}
	}
	if len(erasureGroundLabels) > len(verifier.ErasureGrounds()) {
		t.Errorf("%d erasure ground labels for %d grounds: a label of a ground that verifier.ErasureGrounds does not list", len(erasureGroundLabels), len(verifier.ErasureGrounds()))
	}
	if got := ErasureGroundLabel("nope"); got != "nope" {
		t.Errorf("ErasureGroundLabel(nope) = %q, want the id itself", got)
	}
	for _, ch := range events.Channels {
		l, ok := lookup(channelLabels, ch)
		has("channel", ch, l, ok)
	}
	for _, g := range []events.ConsentGiver{events.ConsentParents, events.ConsentChildAndParents, events.ConsentYoungPerson} {
		l, ok := lookup(consentGiverLabels, g)
		has("consent giver", string(g), l, ok)
	}
	for _, k := range events.PartyKinds {
		l, ok := lookup(partyKindLabels, k)
		has("kind of party", string(k), l, ok)
	}
	for _, s := range []events.Special{events.SpecialArt9, events.SpecialArt10} {
		has("special category", string(s), specialLabel(s), true)
	}
	if specialLabel(events.SpecialNone) != "" {
		t.Errorf("an ordinary category is marked %q", specialLabel(events.SpecialNone))
	}

	for _, name := range demo.Names() {
		m, err := demo.Generate(filepath.Join(t.TempDir(), name), name)
		if err != nil {
			t.Fatal(err)
		}
		c := m.Signed.Covenant
		v := c.Vocabulary
		for _, cat := range v.Categories {
			has(name+" category", cat.ID, c.CategoryLabel(cat.ID), true)
		}
		terms := func(kind string, ts []events.Term, label func(string) string) {
			for _, term := range ts {
				has(name+" "+kind, term.ID, label(term.ID), true)
			}
		}
		terms("purpose", v.Purposes, c.PurposeLabel)
		terms("legal ground", v.Grounds, c.GroundLabel)
		terms("exception", v.Exceptions, c.ExceptionLabel)
		terms("statute", v.Statutes, c.StatuteLabel)
		terms("role", v.Roles, c.RoleLabel)
		for _, p := range c.Parties {
			has(name+" party", p.ID, c.PartyName(p.ID), true)
			if _, ok := lookup(partyKindLabels, p.Kind); !ok {
				t.Errorf("%s party %s: kind %q has no Dutch label", name, p.ID, p.Kind)
			}
		}
	}
}

// TestPartyKindLabel: a kind of party reads as Dutch, an unknown kind as
// itself (moved from events, where PartyKind.LabelNL was).
func TestPartyKindLabel(t *testing.T) {
	if got := partyKindLabel(events.KindJeugdhulp); got != "Jeugdhulpaanbieder" {
		t.Errorf("partyKindLabel(jeugdhulp) = %q", got)
	}
	if got := partyKindLabel("nope"); got != "nope" {
		t.Errorf("partyKindLabel(nope) = %q", got)
	}
}

// TestBundleProblemNL: every class of failure of verifier.VerifyBundle has
// its own Dutch sentence, a leaf is named, and an unknown error reads as a
// failure.
func TestBundleProblemNL(t *testing.T) {
	classes := []error{verifier.ErrPinnedKeys, verifier.ErrBundleMalformed, verifier.ErrBundleKeys, verifier.ErrCheckpoint,
		verifier.ErrWitnesses, verifier.ErrCovenant, verifier.ErrSignature, verifier.ErrOtherSubject, verifier.ErrAnswer,
		verifier.ErrInclusion, verifier.ErrLeafMismatch}
	seen := map[string]error{}
	for _, c := range classes {
		nl := BundleProblemNL(&verifier.BundleError{Section: "entries", Item: -1, Err: fmt.Errorf("%w: detail", c)})
		if prev, ok := seen[nl]; ok {
			t.Errorf("%v and %v read the same: %q", c, prev, nl)
		}
		seen[nl] = c
	}
	generic := BundleProblemNL(errors.New("something else"))
	if _, ok := seen[generic]; ok || !strings.Contains(generic, "niet") {
		t.Errorf("an unknown error reads %q", generic)
	}
	withLeaf := BundleProblemNL(&verifier.BundleError{Section: "entries", Item: 2, Leaf: 17, HasLeaf: true, Err: verifier.ErrInclusion})
	if !strings.Contains(withLeaf, "vastlegging nummer 17") {
		t.Errorf("the leaf is not named: %q", withLeaf)
	}
}

// TestAgeBandAndEntryTypeLabels: every age band and every entry type this
// version logs has a Dutch name (the FG's console shows them), and an
// unknown type is named as unknown, never as a raw number alone.
func TestAgeBandAndEntryTypeLabels(t *testing.T) {
	for _, b := range events.AgeBands {
		if l := AgeBandLabel(b); l == string(b) || l == "" {
			t.Errorf("age band %s has no Dutch name", b)
		}
	}
	for ty := verifier.EntryDisclosure; ty <= verifier.EntryIndexHead; ty++ {
		if l := EntryTypeLabel(ty); strings.HasPrefix(l, "onbekende") || l == ty.String() {
			t.Errorf("entry type %d has no Dutch name: %q", ty, l)
		}
	}
	if l := EntryTypeLabel(verifier.EntryIndexHead + 1); !strings.HasPrefix(l, "onbekende soort") {
		t.Errorf("an unknown entry type is named %q", l)
	}
}
