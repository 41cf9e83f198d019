package verifypage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aboutChildFixture reads testdata/aboutchild (README.txt there says how it
// was made): the pinned keys, and per child its bundle and sealed proof.
func aboutChildFixture(t *testing.T) (Keys, map[string][2]string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "aboutchild", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	keys := Keys{Log: strings.TrimSpace(read("log.vkey")), Cosigner: strings.TrimSpace(read("cosigner.vkey")), Admin: strings.TrimSpace(read("admin.pub"))}
	return keys, map[string][2]string{
		"a": {read("bundle-a.json"), read("sealed-a.txt")},
		"b": {read("bundle-b.json"), read("sealed-b.txt")},
	}
}

// TestCheckAboutChild: the page's verdict of the parent's own check, on two
// real bundles (one per child) and their sealed proofs.
func TestCheckAboutChild(t *testing.T) {
	keys, kids := aboutChildFixture(t)
	const bsnA, bsnB = "999990019", "999990032"
	a, b := kids["a"], kids["b"]

	v := CheckAboutChild([]byte(a[0]), keys, a[1], bsnA)
	if !v.OK || v.AboutChild == nil || !v.AboutChild.OK || v.AboutChild.Checked != 1 {
		t.Fatalf("own bundle: %+v %+v", v.Problems, v.AboutChild)
	}
	if !strings.HasPrefix(v.AboutChild.NL, "Dit overzicht gaat over uw kind.") {
		t.Errorf("own bundle: %q", v.AboutChild.NL)
	}
	// Another child's complete, valid bundle with this child's BSN: the
	// bundle verifies, the check says it is not this child's.
	v = CheckAboutChild([]byte(b[0]), keys, b[1], bsnA)
	if !v.OK || v.AboutChild == nil || v.AboutChild.OK || !strings.HasPrefix(v.AboutChild.NL, "Dit nummer past niet bij dit bestand.") {
		t.Fatalf("another child's bundle: %+v", v.AboutChild)
	}
	// Another child's bundle with this child's sealed proof beside it.
	v = CheckAboutChild([]byte(b[0]), keys, a[1], bsnA)
	if v.AboutChild == nil || v.AboutChild.OK || !strings.HasPrefix(v.AboutChild.NL, "Dit bestand gaat niet alleen over uw kind.") {
		t.Fatalf("another child's entries: %+v", v.AboutChild)
	}
	// A typing error; a damaged sealed proof.
	if v = CheckAboutChild([]byte(a[0]), keys, a[1], "999990018"); v.AboutChild.OK || !strings.Contains(v.AboutChild.NL, "geen geldig nummer") {
		t.Fatalf("typo: %+v", v.AboutChild)
	}
	if v = CheckAboutChild([]byte(a[0]), keys, "AAAA", bsnA); v.AboutChild.OK || !strings.Contains(v.AboutChild.NL, "beschadigd") {
		t.Fatalf("damaged: %+v", v.AboutChild)
	}
	for _, s := range []string{bsnA, bsnB} {
		for _, r := range []*AboutChildVerdict{CheckAboutChild([]byte(b[0]), keys, b[1], bsnA).AboutChild} {
			if strings.Contains(r.NL+r.Detail, s) {
				t.Errorf("a verdict repeats a number: %+v", r)
			}
		}
	}
	// Without a verified bundle there is no check at all.
	if v = CheckAboutChild([]byte(a[0]), Keys{Log: keys.Log, Cosigner: keys.Cosigner, Admin: keys.Admin + "x"}, a[1], bsnA); v.OK || v.AboutChild != nil {
		t.Fatalf("unverified bundle: %+v", v)
	}
}
