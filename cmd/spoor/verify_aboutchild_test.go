package main

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// fakeVerified is a verified bundle's result as VerifyBundle returns it, with
// the subjects the parent's check reads: one v1 entry (before the covenant
// had a VRF key) and two v2 entries about number.
func fakeVerified(t *testing.T, sk *aboutchild.SecretKey, number string) *verifier.VerifiedBundle {
	t.Helper()
	_, out, err := sk.Prove(aboutchild.IDTypeBSN, number)
	if err != nil {
		t.Fatal(err)
	}
	cov := &events.Covenant{Version: 2, SubjectKeys: []string{"kv-2025-1", "kv-2026-1"},
		VRFKeys: []events.VRFKey{{KeyID: "kv-2026-1", PublicKey: sk.Public().String()}}}
	subj := func(keyID, o string) *events.Disclosure {
		return &events.Disclosure{Subject: events.Subject{IDType: events.IDTypeBSN, KeyID: keyID, Pseudonym: "p", VRFOutput: o}}
	}
	o := hex.EncodeToString(out)
	return &verifier.VerifiedBundle{
		Covenants: []*verifier.VerifiedCovenant{{Signed: &events.SignedCovenant{Covenant: cov}}},
		Disclosures: []*verifier.VerifiedDisclosure{
			{Index: 3, Disclosure: subj("kv-2025-1", "")},
			{Index: 7, Disclosure: subj("kv-2026-1", o)},
			{Index: 9, Disclosure: subj("kv-2026-1", o)},
		},
	}
}

func sealFor(t *testing.T, sk *aboutchild.SecretKey, number string) *aboutchild.SealedProof {
	t.Helper()
	proof, _, err := sk.Prove(aboutchild.IDTypeBSN, number)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := aboutchild.Seal(nil, aboutchild.IDTypeBSN, number, aboutchild.Params{MemoryKiB: aboutchild.MinMemoryKiB, Time: 1, Threads: 2},
		[]aboutchild.KeyProof{{Key: sk.Public(), Proof: proof}})
	if err != nil {
		t.Fatal(err)
	}
	// Through the file form spoor verify reads.
	text, _ := sp.MarshalText()
	path := filepath.Join(t.TempDir(), "sealed.txt")
	if err := os.WriteFile(path, append(text, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := readSealedProof(path)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestCheckAboutChild(t *testing.T) {
	sk := aboutchild.GenerateKey()
	const mine, other = "999990019", "999990032"
	mineVB, otherVB := fakeVerified(t, sk, mine), fakeVerified(t, sk, other)
	mineSealed, otherSealed := sealFor(t, sk, mine), sealFor(t, sk, other)

	res, err := mineVB.CheckAboutChild(mineSealed, "bsn", mine)
	if err != nil || res.Checked != 2 || res.NotCheckable != 1 {
		t.Fatalf("own bundle: %+v, %v", res, err)
	}
	// Another child's complete bundle, its own sealed proof, this number.
	if _, err := otherVB.CheckAboutChild(otherSealed, "bsn", mine); err != aboutchild.ErrNotThisChild {
		t.Fatalf("another child's bundle: err = %v, want ErrNotThisChild", err)
	}
	// Another child's entries with this child's sealed proof beside them.
	if _, err := otherVB.CheckAboutChild(mineSealed, "bsn", mine); !errors.Is(err, aboutchild.ErrNotAboutThisChild) {
		t.Fatalf("another child's entries: err = %v", err)
	}
	// A bundle with only v1 entries proves nothing about the child.
	mineVB.Disclosures = mineVB.Disclosures[:1]
	if _, err := mineVB.CheckAboutChild(mineSealed, "bsn", mine); err == nil {
		t.Fatal("a bundle without VRF outputs passed the check")
	}
}

// TestSealedProofFor: the desk's sealed proof opens with the number to the
// outputs of every VRF key, and refuses when no key file holds a secret.
func TestSealedProofFor(t *testing.T) {
	sk := aboutchild.GenerateKey()
	keys := []events.SubjectKey{{ID: "kv-2025-1", Secret: make([]byte, 32)}, {ID: "kv-2026-1", Secret: make([]byte, 32), VRF: sk}}
	if _, err := sealedProofFor(keys[:1], "bsn", "999990019", "x"); err == nil {
		t.Fatal("sealed without a VRF secret")
	}
	if sp, err := sealedProofFor(keys, "bsn", "999990019", ""); sp != nil || err != nil {
		t.Fatal("sealed without being asked")
	}
	sp, err := sealedProofFor(keys, "bsn", "999990019", "x")
	if err != nil {
		t.Fatal(err)
	}
	if sp.Params != aboutchild.DefaultParams || len(sp.Keys) != 1 || !sp.Keys[0].Equal(sk.Public()) {
		t.Fatalf("sealed proof %+v", sp)
	}
	res, err := fakeVerified(t, sk, "999990019").CheckAboutChild(sp, "bsn", "999990019")
	if err != nil || res.Checked != 2 {
		t.Fatalf("desk's sealed proof: %+v, %v", res, err)
	}
}
