package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrInvalidNumber is returned for a BSN or onderwijsnummer that is not nine
// digits or fails its check. Its message never contains the number.
var ErrInvalidNumber = errors.New("invalid number")

// SubjectKeySize is the size of a pseudonym key K_v.
const SubjectKeySize = 32

// SubjectKey is a pseudonym key K_v with its id. Every party of the covenant
// and the ledger hold it; whoever holds it can reverse a pseudonym by trying
// every BSN, so the key and the pseudonyms it makes are personal data.
type SubjectKey struct {
	ID     string
	Secret []byte
}

// CheckNumber checks that number is nine ASCII digits passing the check of
// its type: the elfproef for a BSN (9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a
// non-zero multiple of 11); for an onderwijsnummer the same weighted sum
// with remainder 5 after division by 11, starting with "10". The error does
// not repeat the number.
func CheckNumber(idType IDType, number string) error {
	if len(number) != 9 {
		return fmt.Errorf("%w: a %s has exactly 9 digits, got %d characters", ErrInvalidNumber, idType, len(number))
	}
	sum := 0
	for i := 0; i < 9; i++ {
		c := number[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: a %s has only digits (character %d is not one)", ErrInvalidNumber, idType, i+1)
		}
		w := 9 - i
		if i == 8 {
			w = -1
		}
		sum += w * int(c-'0')
	}
	switch idType {
	case IDTypeBSN:
		if sum == 0 || sum%11 != 0 {
			return fmt.Errorf("%w: the BSN fails the elfproef (check for a typing error)", ErrInvalidNumber)
		}
	case IDTypeOnderwijsnummer:
		if number[:2] != "10" || ((sum%11)+11)%11 != 5 {
			return fmt.Errorf("%w: the onderwijsnummer fails its check (check for a typing error)", ErrInvalidNumber)
		}
	default:
		return fmt.Errorf("%w: unknown identifier type %q", ErrInvalidNumber, idType)
	}
	return nil
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
// number itself goes no further than this call.
func SubjectFor(key SubjectKey, idType IDType, number string) (Subject, error) {
	p, err := Pseudonym(key, idType, number)
	if err != nil {
		return Subject{}, err
	}
	return Subject{IDType: idType, KeyID: key.ID, Pseudonym: p}, nil
}
