package aboutchild

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// NotCheckableNL is how a report names an entry logged under a pseudonym key
// version without a VRF key (or of an identifier type no number was given
// for): the organisations linked it to the child, the parent cannot check it.
const NotCheckableNL = "gekoppeld door de organisatie, niet zelf te controleren"

// ErrNotAboutThisChild is wrapped when an entry of a bundle carries a VRF
// output other than the one the parent's number proves: the entry, and so
// the answer, is about another child.
var ErrNotAboutThisChild = errors.New("aboutchild: an entry is not about this child")

// EntrySubject is what the check needs of one verified entry of a bundle:
// its leaf and its subject as the signed event states it.
type EntrySubject struct {
	Leaf      uint64
	IDType    string
	KeyID     string
	VRFOutput string // hex; empty in a wire format v1 event
}

// Status is the verdict on one entry.
type Status int

// The verdicts CheckEntries gives.
const (
	// Checked: the entry carries the VRF output the number proves.
	Checked Status = iota
	// NotCheckable: the entry carries no VRF output (logged under a key
	// version without a VRF key), or no number of its identifier type was
	// given: shown as NotCheckableNL.
	NotCheckable
	// Mismatch: the entry carries another output: not about this child.
	Mismatch
	// NoProof: the entry carries an output under a VRF key for which the
	// bundle has no proof, or whose key id the covenant gives no VRF key.
	NoProof
)

// EntryVerdict is the verdict on one entry.
type EntryVerdict struct {
	Leaf   uint64
	Status Status
}

// Opened is what the parent's number opened: for an identifier type, the
// VRF outputs of that number under each key of the sealed proof.
type Opened map[string][]KeyOutput

// CheckEntries compares every entry's VRF output with the output the opened
// proofs give for the key its covenant pairs with its key id (keyFor, from
// the covenant in force at the bundle's checkpoint; a key id's VRF key never
// changes along the chain). It returns a verdict per entry, and an error
// wrapping ErrNotAboutThisChild when any entry is Mismatch or NoProof.
func CheckEntries(opened Opened, keyFor func(keyID string) (*PublicKey, bool), entries []EntrySubject) ([]EntryVerdict, error) {
	verdicts := make([]EntryVerdict, len(entries))
	var bad []uint64
	for i, e := range entries {
		v := EntryVerdict{Leaf: e.Leaf, Status: NotCheckable}
		outs, typed := opened[e.IDType]
		switch {
		case e.VRFOutput == "" || !typed:
		default:
			v.Status = NoProof
			want, err := hex.DecodeString(e.VRFOutput)
			if err != nil {
				break
			}
			pk, ok := keyFor(e.KeyID)
			if !ok {
				break
			}
			for _, o := range outs {
				if o.Key.Equal(pk) {
					if subtle.ConstantTimeCompare(o.Output, want) == 1 {
						v.Status = Checked
					} else {
						v.Status = Mismatch
					}
				}
			}
		}
		if v.Status == Mismatch || v.Status == NoProof {
			bad = append(bad, e.Leaf)
		}
		verdicts[i] = v
	}
	if len(bad) > 0 {
		return verdicts, fmt.Errorf("%w: leaves %v carry another VRF output than this number's, or one no proof in the bundle covers", ErrNotAboutThisChild, bad)
	}
	return verdicts, nil
}
