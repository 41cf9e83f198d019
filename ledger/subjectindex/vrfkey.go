package subjectindex

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	vrf "filippo.io/mostly-harmless/vrf-r255"
	r255 "github.com/gtank/ristretto255"

	"github.com/spoor-ledger/spoor/internal/durable"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// VRFKey is the ledger's map-key VRF (c2sp.org/vrf-r255): map_key =
// VRF(secret, index_key || party). Only the ledger holds the secret, so
// only the ledger can tell which map key belongs to which child and party;
// its public key (Public) lets a bundle's reader check a map key from its
// proof. Safe for concurrent use.
type VRFKey struct {
	sk  *vrf.PrivateKey
	pub *vsi.VRFPublicKey
	// x is the secret scalar, for evaluating the VRF without a proof
	// (evaluate).
	x *r255.Scalar

	// cache holds recently derived map keys: a VRF evaluation costs a few
	// scalar multiplications (tens of µs), more than the rest of an entry's
	// index update, and a child's entries tend to come together.
	mu    sync.Mutex
	cache map[cacheKey]vsi.MapKey
}

type cacheKey struct {
	ik    vsi.IndexKey
	party string
}

// maxCache bounds the map-key cache; it is emptied when full.
const maxCache = 1 << 16

// vrfKeyHeader is the first line of a VRF key file; the second is the
// secret scalar in hex.
const vrfKeyHeader = "spoor-subject-index-vrf-key/v1"

// GenerateVRFKey returns a new random VRF key.
func GenerateVRFKey() *VRFKey { return newVRFKey(vrf.GenerateKey()) }

func newVRFKey(sk *vrf.PrivateKey) *VRFKey {
	pub, err := vsi.ParseVRFPublicKey(sk.PublicKey().Bytes())
	if err != nil {
		// The library's own encoding of a public key always parses.
		panic("subjectindex: a VRF public key does not parse: " + err.Error())
	}
	x, err := r255.NewScalar().SetCanonicalBytes(sk.Bytes())
	if err != nil {
		panic("subjectindex: a VRF secret does not parse: " + err.Error())
	}
	return &VRFKey{sk: sk, pub: pub, x: x, cache: make(map[cacheKey]vsi.MapKey)}
}

// ParseVRFKey decodes a VRF key file's bytes.
func ParseVRFKey(b []byte) (*VRFKey, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != vrfKeyHeader {
		return nil, fmt.Errorf("not a %s file", vrfKeyHeader)
	}
	raw, err := hex.DecodeString(lines[1])
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("the %s secret is not 64 hex characters", vrfKeyHeader)
	}
	sk, err := vrf.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("the %s secret is not a scalar: %w", vrfKeyHeader, err)
	}
	return newVRFKey(sk), nil
}

// MarshalText returns the key file's bytes (the secret: keep it 0600).
func (k *VRFKey) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%x\n", vrfKeyHeader, k.sk.Bytes())
	return b.Bytes(), nil
}

// OpenVRFKey reads the VRF key file at path, creating it with a new key
// (mode 0600, synced) when there is none. The key must never change for a
// log: every stored map key was derived with it.
func OpenVRFKey(path string) (*VRFKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := GenerateVRFKey()
		text, _ := k.MarshalText()
		// WriteNewFile: a crash never leaves half a key that a restart
		// would then refuse, and an existing key is never replaced.
		if err := durable.WriteNewFile(path, text, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("couldn't create the subject index's VRF key: %w", err)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the subject index's VRF key: %w", err)
	}
	k, err := ParseVRFKey(b)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the subject index's VRF key %s: %w", path, err)
	}
	return k, nil
}

// Public returns the key's public half, to publish.
func (k *VRFKey) Public() *vsi.VRFPublicKey { return k.pub }

// Cached returns the map key of (ik, party) when it is in the key's
// memory cache.
func (k *VRFKey) Cached(ik vsi.IndexKey, party string) (vsi.MapKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.cache[cacheKey{ik, party}]
	return m, ok
}

// Remember puts a map key the caller read from its own store into the
// memory cache. The caller vouches that it is the map key of (ik, party).
func (k *VRFKey) Remember(ik vsi.IndexKey, party string, m vsi.MapKey) {
	k.mu.Lock()
	if len(k.cache) >= maxCache {
		clear(k.cache)
	}
	k.cache[cacheKey{ik, party}] = m
	k.mu.Unlock()
}

// MapKey returns the map key of (ik, party), without its proof.
func (k *VRFKey) MapKey(ik vsi.IndexKey, party string) (vsi.MapKey, error) {
	ck := cacheKey{ik, party}
	k.mu.Lock()
	m, ok := k.cache[ck]
	k.mu.Unlock()
	if ok {
		return m, nil
	}
	alpha, err := vsi.MapKeyInput(ik, party)
	if err != nil {
		return vsi.MapKey{}, err
	}
	m = vsi.MapKeyOfHash(k.evaluate(alpha))
	k.mu.Lock()
	if len(k.cache) >= maxCache {
		clear(k.cache)
	}
	k.cache[ck] = m
	k.mu.Unlock()
	return m, nil
}

// The steps of c2sp.org/vrf-r255 that give the VRF's output without its
// proof: the sequencer needs only the map key, and a proof costs two more
// scalar multiplications. TestEvaluateIsProveHash holds the output equal
// to the library's Prove.
const (
	vrfSuite          = "\xFFc2sp.org/vrf-r255"
	vrfEncodeToCurve  = 0x82
	vrfProofToHash    = 0x03
	vrfProofToHashEnd = 0x00
)

// evaluate returns the VRF output (beta) of alpha: H = one-way map of
// SHA-512(suite || 0x82 || public key || alpha), Gamma = x*H, beta =
// SHA-512(suite || 0x03 || Gamma || 0x00).
func (k *VRFKey) evaluate(alpha []byte) []byte {
	u := sha512.New()
	u.Write([]byte(vrfSuite))
	u.Write([]byte{vrfEncodeToCurve})
	u.Write(k.pub.Bytes())
	u.Write(alpha)
	h, err := r255.NewIdentityElement().SetUniformBytes(u.Sum(nil))
	if err != nil {
		// 64 bytes always map to an element.
		panic("subjectindex: one-way map: " + err.Error())
	}
	gamma := r255.NewIdentityElement().ScalarMult(k.x, h)
	b := sha512.New()
	b.Write([]byte(vrfSuite))
	b.Write([]byte{vrfProofToHash})
	b.Write(gamma.Bytes())
	b.Write([]byte{vrfProofToHashEnd})
	return b.Sum(nil)
}

// Prove returns the map key of (ik, party) and its VRF proof, for a
// bundle.
func (k *VRFKey) Prove(ik vsi.IndexKey, party string) (vsi.MapKey, []byte, error) {
	alpha, err := vsi.MapKeyInput(ik, party)
	if err != nil {
		return vsi.MapKey{}, nil, err
	}
	pi := k.sk.Prove(alpha)
	return vsi.MapKeyOfHash(pi.Hash()), pi.Bytes(), nil
}
