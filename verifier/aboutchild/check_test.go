package aboutchild

import (
	"encoding/hex"
	"errors"
	"testing"
)

// child is one child's events and sealed proof as a desk would put them in
// a bundle: entries under a VRF key version and one under an older version
// without a VRF key.
type child struct {
	number  string
	entries []EntrySubject
	sealed  *SealedProof
}

func makeChild(t *testing.T, sk *SecretKey, number string, firstLeaf uint64) child {
	t.Helper()
	proof, out, err := sk.Prove(IDTypeBSN, number)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := Seal(nil, IDTypeBSN, number, testParams, []KeyProof{{Key: sk.Public(), Proof: proof}})
	if err != nil {
		t.Fatal(err)
	}
	o := hex.EncodeToString(out)
	return child{number: number, sealed: sp, entries: []EntrySubject{
		{Leaf: firstLeaf, IDType: IDTypeBSN, KeyID: "kv-2025-1"}, // v1: no VRF key then
		{Leaf: firstLeaf + 1, IDType: IDTypeBSN, KeyID: "kv-2026-1", VRFOutput: o},
		{Leaf: firstLeaf + 2, IDType: IDTypeBSN, KeyID: "kv-2026-1", VRFOutput: o},
	}}
}

func TestCheckEntries(t *testing.T) {
	sk := GenerateKey()
	keyFor := func(id string) (*PublicKey, bool) { return sk.Public(), id == "kv-2026-1" }
	mine := makeChild(t, sk, "999990019", 10)
	other := makeChild(t, sk, "999990032", 20)

	open := func(sp *SealedProof, number string) (Opened, error) {
		outs, err := sp.Outputs(IDTypeBSN, number)
		return Opened{IDTypeBSN: outs}, err
	}

	// The parent's own bundle: two entries checked, the v1 one shown as not
	// checkable.
	opened, err := open(mine.sealed, mine.number)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := CheckEntries(opened, keyFor, mine.entries)
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Status != NotCheckable || vs[1].Status != Checked || vs[2].Status != Checked {
		t.Fatalf("verdicts %+v", vs)
	}

	// Another child's complete, valid bundle with this child's number: its
	// sealed proof does not open.
	if _, err := open(other.sealed, mine.number); err != ErrNotThisChild {
		t.Fatalf("another child's bundle: err = %v, want ErrNotThisChild", err)
	}

	// Another child's entries with this child's sealed proof put beside
	// them: the outputs differ, every VRF entry is refused.
	vs, err = CheckEntries(opened, keyFor, other.entries)
	if !errors.Is(err, ErrNotAboutThisChild) || vs[1].Status != Mismatch || vs[2].Status != Mismatch {
		t.Fatalf("other child's entries: %+v, %v", vs, err)
	}

	// One of the other child's entries slipped into this child's bundle.
	mixed := append(append([]EntrySubject{}, mine.entries...), other.entries[1])
	if vs, err = CheckEntries(opened, keyFor, mixed); !errors.Is(err, ErrNotAboutThisChild) || vs[3].Status != Mismatch || vs[1].Status != Checked {
		t.Fatalf("one foreign entry: %+v, %v", vs, err)
	}

	// An entry under a VRF key the bundle has no proof for.
	stranger := GenerateKey()
	keyForStranger := func(string) (*PublicKey, bool) { return stranger.Public(), true }
	if vs, err = CheckEntries(opened, keyForStranger, mine.entries[1:2]); !errors.Is(err, ErrNotAboutThisChild) || vs[0].Status != NoProof {
		t.Fatalf("no proof for the key: %+v, %v", vs, err)
	}

	// An onderwijsnummer entry when only a BSN was given: not checkable.
	on := EntrySubject{Leaf: 99, IDType: IDTypeOnderwijsnummer, KeyID: "kv-2026-1", VRFOutput: mine.entries[1].VRFOutput}
	if vs, err = CheckEntries(opened, keyFor, []EntrySubject{on}); err != nil || vs[0].Status != NotCheckable {
		t.Fatalf("onderwijsnummer entry: %+v, %v", vs, err)
	}
}
