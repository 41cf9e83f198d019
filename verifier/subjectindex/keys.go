package subjectindex

import (
	"crypto/sha256"
	"errors"
	"fmt"
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

// MapKey is a key of the map: one index key and one discloser.
type MapKey [32]byte

// Domain labels of the derivations; each ends in a zero byte so that no
// label is a prefix of another's input.
const (
	indexKeyLabel = "spoor/subject-index/v1 index-key\x00"
	mapKeyLabel   = "spoor/subject-index/v1 map-key\x00"
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

// MapKeyFor returns the map key of an index key and a discloser (a party id
// of the covenant): SHA-256("spoor/subject-index/v1 map-key\x00" ||
// index key || party). Hashing spreads the keys evenly over the tree, so
// that a child's lists at different parties lie on unrelated paths.
func MapKeyFor(k IndexKey, party string) (MapKey, error) {
	if !validPartyID(party) {
		return MapKey{}, fmt.Errorf("%w: %q is not a party id", ErrKey, clip(party))
	}
	h := sha256.New()
	h.Write([]byte(mapKeyLabel))
	h.Write(k[:])
	h.Write([]byte(party))
	var m MapKey
	h.Sum(m[:0])
	return m, nil
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
