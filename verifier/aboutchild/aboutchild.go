// Package aboutchild lets a parent check, without any key, that an answer
// concerns their own child (issue 23, docs/dpia.md "About this child").
//
// Every new disclosure event carries, beside the HMAC pseudonym, the output
// of a verifiable random function (c2sp.org/vrf-r255) over the child's
// identifier type and number. The parties and the privacy desk hold the VRF
// secret key (as they hold the pseudonym key K_v); the covenant lists only
// the public key. The desk puts in each inzage bundle a proof, for the
// child's number, under every VRF key of the covenant, sealed under a key
// that Argon2id derives from the number with a random salt: whoever holds
// the bundle but not the number must pay one Argon2id derivation per guess.
// The parent types the number; Open derives the key, decrypts the proofs,
// verifies each against its public key and returns the VRF outputs, which
// the bundle's verifier compares with the events' field.
//
// Data comes from the publishers (Output, in events.SubjectFor), from the
// desk (Prove and Seal) and from the bundle (ParseSealedProof); it goes to
// the events' subject field and to the bundle verifier. The package is a
// leaf on the standard library, x/crypto and the VRF module, so that the
// events package, the verifier and the browser's WebAssembly build all use
// this one definition. Nothing here logs or returns a number.
package aboutchild

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	vrf "filippo.io/mostly-harmless/vrf-r255"
)

// Sizes of the byte forms, fixed by c2sp.org/vrf-r255.
const (
	// PublicKeySize is a VRF public key: a ristretto255 element.
	PublicKeySize = 32
	// SecretKeySize is a VRF secret key: a canonical ristretto255 scalar.
	SecretKeySize = 32
	// ProofSize is a VRF proof: Gamma (32), c (16), s (32).
	ProofSize = 80
	// OutputSize is the VRF output (beta): a SHA-512 hash.
	OutputSize = 64
	// OutputHexSize is the output as the events carry it, lower-case hex.
	OutputHexSize = 2 * OutputSize
)

// The identifier types a VRF input may name; the same words as the events'
// subject.id_type.
const (
	IDTypeBSN             = "bsn"
	IDTypeOnderwijsnummer = "onderwijsnummer"
)

// inputPrefix starts every VRF input, so that the function's outputs for
// Spoor's subjects can never be those of another use of the same key.
const inputPrefix = "spoor/vrf-index/v1\x00"

// ErrInvalidNumber is returned for a BSN or onderwijsnummer that is not nine
// digits or fails its check. Its message never contains the number. The
// events package returns the same sentinel.
var ErrInvalidNumber = errors.New("invalid number")

// ErrBadKey is returned for a VRF key that is not a canonical encoding.
var ErrBadKey = errors.New("aboutchild: not a VRF key")

// ErrBadProof is returned when a VRF proof does not verify for its input
// under the public key.
var ErrBadProof = errors.New("aboutchild: the VRF proof does not verify")

// CheckNumber checks that number is nine ASCII digits passing the check of
// its type: the elfproef for a BSN (9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a
// non-zero multiple of 11); for an onderwijsnummer the same weighted sum
// with remainder 5 after division by 11, starting with "10". The error does
// not repeat the number.
func CheckNumber(idType, number string) error {
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

// Input returns the canonical VRF input of a subject:
// "spoor/vrf-index/v1" 0x00 id_type 0x00 number, the number nine ASCII
// digits that pass CheckNumber. The result holds the number: callers keep it
// in memory only.
func Input(idType, number string) ([]byte, error) {
	if err := CheckNumber(idType, number); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(inputPrefix)+len(idType)+1+len(number))
	b = append(b, inputPrefix...)
	b = append(b, idType...)
	b = append(b, 0)
	b = append(b, number...)
	return b, nil
}

// PublicKey is a VRF public key, as the covenant lists it.
type PublicKey struct {
	raw [PublicKeySize]byte
	key *vrf.PublicKey
}

// ParsePublicKey decodes a public key; a non-canonical encoding is refused.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: a public key has %d bytes, got %d", ErrBadKey, PublicKeySize, len(b))
	}
	k, err := vrf.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a canonical ristretto255 element", ErrBadKey)
	}
	pk := &PublicKey{key: k}
	copy(pk.raw[:], b)
	return pk, nil
}

// ParsePublicKeyHex decodes a public key written as 64 lower-case hex
// characters (the covenant's vrf_public_key).
func ParsePublicKeyHex(s string) (*PublicKey, error) {
	b, err := decodeLowerHex(s, PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return ParsePublicKey(b)
}

// Bytes returns the 32-byte encoding.
func (pk *PublicKey) Bytes() []byte { return bytes.Clone(pk.raw[:]) }

// String returns the key as 64 lower-case hex characters.
func (pk *PublicKey) String() string { return hex.EncodeToString(pk.raw[:]) }

// Equal reports whether two public keys are the same.
func (pk *PublicKey) Equal(other *PublicKey) bool { return other != nil && pk.raw == other.raw }

// SecretKey is a VRF secret key: held by the publishing parties and the
// desk, like K_v, never by the ledger.
type SecretKey struct {
	key *vrf.PrivateKey
	pub *PublicKey
}

// GenerateKey makes a new VRF key pair from crypto/rand.
func GenerateKey() *SecretKey {
	k := vrf.GenerateKey()
	sk, err := ParseSecretKey(k.Bytes())
	if err != nil {
		// A key the module just made is canonical; anything else is a bug in
		// it, not an input.
		panic("aboutchild: generated key does not parse: " + err.Error())
	}
	return sk
}

// ParseSecretKey decodes a 32-byte secret key (a canonical scalar).
func ParseSecretKey(b []byte) (*SecretKey, error) {
	if len(b) != SecretKeySize {
		return nil, fmt.Errorf("%w: a secret key has %d bytes, got %d", ErrBadKey, SecretKeySize, len(b))
	}
	k, err := vrf.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a canonical ristretto255 scalar", ErrBadKey)
	}
	pub, err := ParsePublicKey(k.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	return &SecretKey{key: k, pub: pub}, nil
}

// Bytes returns the 32-byte encoding of the secret key.
func (sk *SecretKey) Bytes() []byte { return sk.key.Bytes() }

// Public returns the public key of the pair.
func (sk *SecretKey) Public() *PublicKey { return sk.pub }

// ProveInput returns the proof and output for a raw VRF input. Spoor's
// inputs come from Input; this form exists for the specification's vectors.
func (sk *SecretKey) ProveInput(alpha []byte) (proof, output []byte) {
	p := sk.key.Prove(alpha)
	return p.Bytes(), p.Hash()
}

// Prove returns the proof and the output for a subject's number.
func (sk *SecretKey) Prove(idType, number string) (proof, output []byte, err error) {
	alpha, err := Input(idType, number)
	if err != nil {
		return nil, nil, err
	}
	proof, output = sk.ProveInput(alpha)
	return proof, output, nil
}

// Output returns the VRF output for a subject's number as the events carry
// it: 128 lower-case hex characters.
func (sk *SecretKey) Output(idType, number string) (string, error) {
	_, out, err := sk.Prove(idType, number)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(out), nil
}

// VerifyInput checks a proof for a raw VRF input and returns the output it
// proves.
func (pk *PublicKey) VerifyInput(alpha, proof []byte) ([]byte, error) {
	p, err := vrf.NewProof(proof)
	if err != nil {
		return nil, ErrBadProof
	}
	out, err := pk.key.Verify(p, alpha)
	if err != nil {
		return nil, ErrBadProof
	}
	return out, nil
}

// Verify checks a proof for a subject's number and returns the output.
func (pk *PublicKey) Verify(idType, number string, proof []byte) ([]byte, error) {
	alpha, err := Input(idType, number)
	if err != nil {
		return nil, err
	}
	return pk.VerifyInput(alpha, proof)
}

// ValidOutputHex reports whether s has the form of a VRF output in an event:
// exactly 128 lower-case hex characters. The ledger checks only this form;
// only a holder of the number and the proof can check the value.
func ValidOutputHex(s string) bool {
	_, err := decodeLowerHex(s, OutputSize)
	return err == nil
}

// decodeLowerHex decodes exactly n bytes written as 2n lower-case hex
// characters; upper case is refused so that every value has one spelling.
func decodeLowerHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("want %d hex characters, got %d", 2*n, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("character %d is not lower-case hex", i+1)
		}
	}
	return hex.DecodeString(s)
}
