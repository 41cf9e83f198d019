package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/spoor-ledger/spoor/verifier/aboutchild"
)

// ErrInvalidNumber is returned for a BSN or onderwijsnummer that is not nine
// digits or fails its check. Its message never contains the number. It is
// verifier/aboutchild's sentinel: the elfproef has one home, there.
var ErrInvalidNumber = aboutchild.ErrInvalidNumber

// SubjectKeySize is the size of a pseudonym key K_v.
const SubjectKeySize = 32

// SubjectKey is a pseudonym key K_v with its id. Every party of the covenant
// and the ledger hold it; whoever holds it can reverse a pseudonym by trying
// every BSN, so the key and the pseudonyms it makes are personal data.
//
// VRF, when set, is the VRF secret key that the covenant pairs with this key
// id (its vrf_keys entry, issue 23): SubjectFor then also computes the
// subject's VRF output, and the event is of SchemaV2. Parties and the desk
// hold it as they hold Secret.
type SubjectKey struct {
	ID     string
	Secret []byte
	VRF    *aboutchild.SecretKey
}

// CheckNumber checks that number is nine ASCII digits passing the check of
// its type: the elfproef for a BSN (9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a
// non-zero multiple of 11); for an onderwijsnummer the same weighted sum
// with remainder 5 after division by 11, starting with "10". The error does
// not repeat the number. (aboutchild.CheckNumber, for this package's IDType.)
func CheckNumber(idType IDType, number string) error {
	return aboutchild.CheckNumber(string(idType), number)
}

// Pseudonym returns the subject pseudonym of a BSN or onderwijsnummer:
// lower-case hex of HMAC-SHA256(K_v, "spoor/subject/v1\x00" || id_type ||
// "\x00" || the 9 ASCII digits). The number is checked first.
func Pseudonym(key SubjectKey, idType IDType, number string) (string, error) {
	if err := CheckNumber(idType, number); err != nil {
		return "", err
	}
	if len(key.Secret) != SubjectKeySize {
		return "", fmt.Errorf("pseudonym key %q: want %d bytes, have %d", key.ID, SubjectKeySize, len(key.Secret))
	}
	m := hmac.New(sha256.New, key.Secret)
	m.Write([]byte("spoor/subject/v1\x00"))
	m.Write([]byte(idType))
	m.Write([]byte{0})
	m.Write([]byte(number))
	return hexLower(m.Sum(nil)), nil
}

// SubjectFor builds the Subject of a disclosure from a number, so that the
// number itself goes no further than this call: the pseudonym, and the VRF
// output when key has a VRF secret (then use Subject.Schema for the event).
func SubjectFor(key SubjectKey, idType IDType, number string) (Subject, error) {
	p, err := Pseudonym(key, idType, number)
	if err != nil {
		return Subject{}, err
	}
	s := Subject{IDType: idType, KeyID: key.ID, Pseudonym: p}
	if key.VRF != nil {
		if s.VRFOutput, err = key.VRF.Output(string(idType), number); err != nil {
			return Subject{}, err
		}
	}
	return s, nil
}

// Schema returns the payload schema an event about this subject has:
// SchemaV2 when it carries a VRF output, SchemaV1 otherwise.
func (s Subject) Schema() string {
	if s.VRFOutput != "" {
		return SchemaV2
	}
	return SchemaV1
}
