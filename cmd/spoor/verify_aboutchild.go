package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// maxSealedText bounds the sealed-proof file read before parsing.
const maxSealedText = 4 << 10

// readSealedProof reads a sealed proof in its text form (base64, as a bundle
// will carry it) from a file.
func readSealedProof(path string) (*aboutchild.SealedProof, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the sealed proof: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSealedText+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the sealed proof: %w", err)
	}
	if len(b) > maxSealedText {
		return nil, fmt.Errorf("%s is larger than a sealed proof", path)
	}
	var sp aboutchild.SealedProof
	if err := sp.UnmarshalText([]byte(strings.TrimSpace(string(b)))); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sp, nil
}

// aboutChildResult counts the verdicts of the parent's check.
type aboutChildResult struct {
	checked, notCheckable int
}

// checkAboutChild opens the sealed proof with the number (the Argon2id wait)
// and checks every verified disclosure's VRF output against it, with the VRF
// keys of the covenant in force at the checkpoint (a key id's VRF key never
// changes along the chain, so the latest version names every one in use).
func checkAboutChild(vb *verifier.VerifiedBundle, sp *aboutchild.SealedProof, idType, number string) (aboutChildResult, error) {
	outs, err := sp.Outputs(idType, number)
	if err != nil {
		return aboutChildResult{}, err
	}
	cov := vb.Covenant()
	keyFor := func(keyID string) (*aboutchild.PublicKey, bool) { return cov.VRFKey(keyID) }
	entries := make([]aboutchild.EntrySubject, len(vb.Disclosures))
	for i, d := range vb.Disclosures {
		s := d.Disclosure.Subject
		entries[i] = aboutchild.EntrySubject{Leaf: d.Index, IDType: string(s.IDType), KeyID: s.KeyID, VRFOutput: s.VRFOutput}
	}
	verdicts, err := aboutchild.CheckEntries(aboutchild.Opened{idType: outs}, keyFor, entries)
	var res aboutChildResult
	for _, v := range verdicts {
		switch v.Status {
		case aboutchild.Checked:
			res.checked++
		case aboutchild.NotCheckable:
			res.notCheckable++
		}
	}
	if err != nil {
		return res, err
	}
	if res.checked == 0 {
		return res, errors.New("no entry of this bundle carries a VRF output: nothing here can be checked against the number")
	}
	return res, nil
}
