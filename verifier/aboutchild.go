package verifier

import (
	"errors"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// AboutChild is the parent's own check of a verified bundle (issue 23): how
// many disclosures carry the VRF output the parent's number proves, and how
// many cannot be checked that way (aboutchild.NotCheckableNL).
type AboutChild struct {
	// Checked are the disclosures whose VRF output the number proves.
	Checked int
	// NotCheckable are the disclosures logged under a pseudonym key version
	// without a VRF key, or of an identifier type no number was given for.
	NotCheckable int
	// Verdicts are the verdicts per disclosure, in the bundle's order.
	Verdicts []aboutchild.EntryVerdict
}

// ErrNothingToCheck means no disclosure of the bundle carries a VRF output:
// the number cannot be checked against anything in it.
var ErrNothingToCheck = errors.New("no disclosure of this bundle carries a VRF output: nothing in it can be checked against the number")

// CheckAboutChild opens the sealed proof with the number (one Argon2id
// derivation: the wait) and checks every verified disclosure's VRF output
// against it, with the VRF keys of the covenant version in force at the
// bundle's checkpoint (a key id's VRF key never changes along the chain, so
// that version names every one in use). A number that does not open the
// proof gives aboutchild.ErrNotThisChild; a disclosure with another child's
// output, or one no proof covers, an error wrapping
// aboutchild.ErrNotAboutThisChild. It reads only what VerifyBundle checked.
func (vb *VerifiedBundle) CheckAboutChild(sp *aboutchild.SealedProof, idType, number string) (*AboutChild, error) {
	outs, err := sp.Outputs(idType, number)
	if err != nil {
		return nil, err
	}
	cov := vb.Covenant()
	entries := make([]aboutchild.EntrySubject, len(vb.Disclosures))
	for i, d := range vb.Disclosures {
		s := d.Disclosure.Subject
		entries[i] = aboutchild.EntrySubject{Leaf: d.Index, IDType: string(s.IDType), KeyID: s.KeyID, VRFOutput: s.VRFOutput}
	}
	verdicts, err := aboutchild.CheckEntries(aboutchild.Opened{idType: outs}, cov.VRFKey, entries)
	res := &AboutChild{Verdicts: verdicts}
	for _, v := range verdicts {
		switch v.Status {
		case aboutchild.Checked:
			res.Checked++
		case aboutchild.NotCheckable:
			res.NotCheckable++
		}
	}
	if err != nil {
		return res, err
	}
	if res.Checked == 0 {
		return res, ErrNothingToCheck
	}
	return res, nil
}
