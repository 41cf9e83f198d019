package subjectindex

import (
	"crypto/sha256"
	"errors"
	"fmt"

	vrf "filippo.io/mostly-harmless/vrf-r255"
)

// ErrKey is wrapped by every error about the inputs of an index key or map
// key.
var ErrKey = errors.New("subjectindex: bad key input")

// IndexKey names one child under one pseudonym key version and identifier
// type in the index. It is derived from the pseudonym and reveals nothing
// on its own: without the pseudonym key (K_v), which only the parties and
// the ledger hold, nobody can tell which number it stands for. (It is not
// the "subject key": that name already means the pseudonym key itself.)
type IndexKey [32]byte

// MapKey is a key of the map: one index key and one discloser, through
// the ledger's VRF (MapKeyOf).
type MapKey [32]byte

// Domain labels of the derivations; each ends in a zero byte so that no
// label is a prefix of another's input.
const (
	indexKeyLabel = "spoor/subject-index/v1 index-key\x00"
	// mapKeyLabel starts the VRF input of a map key. It is version 2: in
	// version 1 the map key was a plain hash, which anyone holding the
	// pseudonym key could compute (docs/subject-index.md, "Map key").
	mapKeyLabel = "spoor/subject-index/v2 map-key\x00"
)

// DeriveIndexKey returns the index key of a subject pseudonym:
// SHA-256("spoor/subject-index/v1 index-key\x00" || id_type || 0x00 ||
// key_id || 0x00 || pseudonym), where pseudonym is the 64 lower-case hex
// characters a disclosure carries (events.Pseudonym). Each pseudonym key
// version and each identifier type gives the same child another index key,
// which is why a bundle carries a proof for every one of them.
func DeriveIndexKey(idType, keyID, pseudonym string) (IndexKey, error) {
	if idType != "bsn" && idType != "onderwijsnummer" {
		return IndexKey{}, fmt.Errorf("%w: identifier type %q is not bsn or onderwijsnummer", ErrKey, clip(idType))
	}
	if !validKeyID(keyID) {
		return IndexKey{}, fmt.Errorf("%w: pseudonym key id %q is not a key id", ErrKey, clip(keyID))
	}
	if !lowerHex64(pseudonym) {
		// The message never repeats the pseudonym: it is personal data.
		return IndexKey{}, fmt.Errorf("%w: a pseudonym is 64 lower-case hex characters", ErrKey)
	}
	h := sha256.New()
	h.Write([]byte(indexKeyLabel))
	h.Write([]byte(idType))
	h.Write([]byte{0})
	h.Write([]byte(keyID))
	h.Write([]byte{0})
	h.Write([]byte(pseudonym))
	var k IndexKey
	h.Sum(k[:0])
	return k, nil
}

// MapKeyInput returns the VRF input (alpha) of the map key of an index key
// and a discloser (a party id of the covenant):
// "spoor/subject-index/v2 map-key\x00" || index key || party. The index key
// has a fixed length and the party id ends the input, so no two pairs give
// one input.
func MapKeyInput(k IndexKey, party string) ([]byte, error) {
	if !validPartyID(party) {
		return nil, fmt.Errorf("%w: %q is not a party id", ErrKey, clip(party))
	}
	b := make([]byte, 0, len(mapKeyLabel)+len(k)+len(party))
	b = append(b, mapKeyLabel...)
	b = append(b, k[:]...)
	return append(b, party...), nil
}

// MapKeyOfHash returns the map key of a VRF output (beta, 64 bytes): its
// first 32 bytes. The output of c2sp.org/vrf-r255 is already a hash bound
// to the suite and the input, so no further hashing is needed.
func MapKeyOfHash(beta []byte) MapKey {
	var m MapKey
	copy(m[:], beta)
	return m
}

// VRFProofSize is the size of a map key's VRF proof (pi).
const VRFProofSize = 80

// VRFPublicKeySize is the size of the ledger's VRF public key.
const VRFPublicKeySize = 32

// VRFPublicKey is the public half of the ledger's map-key VRF
// (c2sp.org/vrf-r255, ECVRF on ristretto255 with SHA-512). Only the ledger
// holds the secret half, so only the ledger can compute a map key; anyone
// with the public key can check one, given its proof. That is what keeps
// a map key in a proof (another key's leaf, in an "absent, other leaf"
// proof) from naming a child to a party that holds the pseudonym key.
type VRFPublicKey struct {
	pk *vrf.PublicKey
	b  [VRFPublicKeySize]byte
}

// ParseVRFPublicKey decodes a VRF public key from its 32 bytes (a
// canonical ristretto255 element). Errors wrap ErrKey.
func ParseVRFPublicKey(b []byte) (*VRFPublicKey, error) {
	if len(b) != VRFPublicKeySize {
		return nil, fmt.Errorf("%w: a VRF public key is %d bytes, not %d", ErrKey, VRFPublicKeySize, len(b))
	}
	pk, err := vrf.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: VRF public key: %w", ErrKey, err)
	}
	y := &VRFPublicKey{pk: pk}
	copy(y.b[:], b)
	return y, nil
}

// Bytes returns the key's 32 bytes.
func (y *VRFPublicKey) Bytes() []byte { return y.b[:] }

// Equal reports whether y and z are the same key.
func (y *VRFPublicKey) Equal(z *VRFPublicKey) bool { return z != nil && y.b == z.b }

// MapKey checks that proof is the VRF proof of the map key of (k, party)
// under y and returns that map key. Errors wrap ErrKey.
func (y *VRFPublicKey) MapKey(k IndexKey, party string, proof []byte) (MapKey, error) {
	alpha, err := MapKeyInput(k, party)
	if err != nil {
		return MapKey{}, err
	}
	if len(proof) != VRFProofSize {
		return MapKey{}, fmt.Errorf("%w: a map key's VRF proof is %d bytes, not %d", ErrKey, VRFProofSize, len(proof))
	}
	pi, err := vrf.NewProof(proof)
	if err != nil {
		return MapKey{}, fmt.Errorf("%w: map key's VRF proof: %w", ErrKey, err)
	}
	beta, err := y.pk.Verify(pi, alpha)
	if err != nil {
		return MapKey{}, fmt.Errorf("%w: map key's VRF proof for party %s: %w", ErrKey, party, err)
	}
	return MapKeyOfHash(beta), nil
}

// validKeyID is the covenant's key id rule: ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$.
func validKeyID(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// validPartyID is the bundle's party id rule: ^[a-z0-9][a-z0-9-]{0,62}$.
func validPartyID(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && c == '-')
		if !ok {
			return false
		}
	}
	return true
}

func lowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens what an error quotes from its input.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
