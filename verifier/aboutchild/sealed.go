package aboutchild

// This file is the sealed proof: the VRF proofs for one child's number under
// each VRF key of the covenant, encrypted under a key that Argon2id derives
// from that number, as an inzage bundle carries them. Its one byte form
// (version 1), all integers big-endian:
//
//	offset  size        field
//	0       8           magic "spoorvrf"
//	8       1           version, 0x01
//	9       1           identifier type: 0x01 bsn, 0x02 onderwijsnummer
//	10      4           Argon2id memory in KiB, 262144 (256 MiB) to 1048576 (1 GiB)
//	14      1           Argon2id passes (time), 1 to 16
//	15      1           Argon2id lanes (threads), 1 to 8
//	16      32          salt, random per bundle
//	48      1           n, the number of VRF keys, 1 to 16
//	49      32*n        the VRF public keys, canonical and distinct, in the order of the proofs
//	49+32n  80*n + 16   ChaCha20-Poly1305 ciphertext of the n proofs, concatenated, and its tag
//
// Nothing may follow. The AEAD key is Argon2id(password, salt, time, memory,
// threads, 32) with password "spoor/sealed-vrf-proof/v1" 0x00 id_type 0x00
// number; the nonce is twelve zero bytes, which is safe because each key
// seals one message (the salt is random per bundle, so the key is too); the
// associated data is every byte before the ciphertext, so that no header
// field can be changed without the tag failing. In JSON (a bundle) the
// sealed proof is the standard padded base64 of these bytes (MarshalText).

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	sealedMagic   = "spoorvrf"
	sealedVersion = 1
	headerSize    = 49
	saltSize      = 32
	maxKeys       = 16
	sealPassword  = "spoor/sealed-vrf-proof/v1\x00"
	tagSize       = chacha20poly1305.Overhead
)

// Limits on the Argon2id parameters a sealed proof may name. The lower
// bound is the privacy argument's (docs/dpia.md): a bundle sealed more
// cheaply is refused, so no desk can weaken it. The upper bounds keep a
// hostile bundle from making the parent's browser or machine allocate or
// compute without end.
const (
	MinMemoryKiB = 256 << 10
	MaxMemoryKiB = 1 << 20
	MaxTime      = 16
	MaxThreads   = 8
)

// MaxSealedSize is the size of the largest valid sealed proof.
const MaxSealedSize = headerSize + maxKeys*(PublicKeySize+ProofSize) + tagSize

// Params are the Argon2id parameters of a sealed proof.
type Params struct {
	// MemoryKiB is the memory per derivation in KiB (MinMemoryKiB at least).
	MemoryKiB uint32
	// Time is the number of passes over the memory.
	Time uint8
	// Threads is the number of lanes: the desk's and the parent's machines
	// may use that many cores for one derivation; an attacker's cost per
	// guess in CPU time does not change with it.
	Threads uint8
}

// DefaultParams are the parameters the desk seals with: 256 MiB, the passes
// and lanes measured in docs/dpia.md ("Measured") so that a whole-space search
// costs at least 100 CPU-days on the reference machine while the parent waits
// about a second natively.
var DefaultParams = Params{MemoryKiB: 256 << 10, Time: 4, Threads: 2}

func (p Params) check() error {
	switch {
	case p.MemoryKiB < MinMemoryKiB || p.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("Argon2id memory must be %d to %d KiB, got %d", MinMemoryKiB, MaxMemoryKiB, p.MemoryKiB)
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("Argon2id time must be 1 to %d, got %d", MaxTime, p.Time)
	case p.Threads < 1 || p.Threads > MaxThreads:
		return fmt.Errorf("Argon2id threads must be 1 to %d, got %d", MaxThreads, p.Threads)
	}
	return nil
}

// ErrMalformedSealed is wrapped by every error ParseSealedProof returns.
var ErrMalformedSealed = errors.New("aboutchild: malformed sealed proof")

// ErrNotThisChild is the one error for a number that does not open a sealed
// proof. It says nothing more: not which part failed, not how close the
// number was. A number that fails its check (a typing error) is reported as
// ErrInvalidNumber instead, which says nothing about the bundle.
var ErrNotThisChild = errors.New("aboutchild: this number does not open the proof in this bundle: the answer is not about this child, or the number was mistyped")

// KeyProof is one VRF proof with the public key it is for.
type KeyProof struct {
	Key   *PublicKey
	Proof []byte
}

// KeyOutput is one verified VRF output with the public key it is under.
type KeyOutput struct {
	Key    *PublicKey
	Output []byte
}

// SealedProof is a parsed sealed proof. Its fields are read-only after
// ParseSealedProof or Seal.
type SealedProof struct {
	// IDType is the identifier type the sealed number is of.
	IDType string
	// Params are the Argon2id parameters.
	Params Params
	// Salt is the random salt of the key derivation.
	Salt [saltSize]byte
	// Keys are the VRF public keys, in the order of the sealed proofs.
	Keys []*PublicKey
	// Ciphertext is the AEAD ciphertext with its tag.
	Ciphertext []byte
}

func idTypeByte(idType string) (byte, bool) {
	switch idType {
	case IDTypeBSN:
		return 1, true
	case IDTypeOnderwijsnummer:
		return 2, true
	}
	return 0, false
}

// Seal makes the sealed proof of a subject: one Argon2id derivation from the
// number with a fresh salt read from random (crypto/rand when nil), then the
// proofs encrypted under it. Each proof is checked against its key first, so
// the desk never hands out a sealed proof that cannot verify.
func Seal(random io.Reader, idType, number string, params Params, proofs []KeyProof) (*SealedProof, error) {
	if random == nil {
		random = rand.Reader
	}
	if _, ok := idTypeByte(idType); !ok {
		return nil, fmt.Errorf("seal: unknown identifier type %q", idType)
	}
	if err := params.check(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(proofs) == 0 || len(proofs) > maxKeys {
		return nil, fmt.Errorf("seal: want 1 to %d proofs, got %d", maxKeys, len(proofs))
	}
	sp := &SealedProof{IDType: idType, Params: params}
	plain := make([]byte, 0, len(proofs)*ProofSize)
	for i, kp := range proofs {
		if kp.Key == nil {
			return nil, fmt.Errorf("seal: proof %d has no key", i+1)
		}
		for _, k := range sp.Keys {
			if k.Equal(kp.Key) {
				return nil, fmt.Errorf("seal: key %s is listed twice", kp.Key)
			}
		}
		if _, err := kp.Key.Verify(idType, number, kp.Proof); err != nil {
			return nil, fmt.Errorf("seal: proof %d under key %s: %w", i+1, kp.Key, err)
		}
		sp.Keys = append(sp.Keys, kp.Key)
		plain = append(plain, kp.Proof...)
	}
	if _, err := io.ReadFull(random, sp.Salt[:]); err != nil {
		return nil, fmt.Errorf("seal: couldn't draw a salt: %w", err)
	}
	aead, err := sp.aead(number)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	sp.Ciphertext = aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), plain, sp.header())
	return sp, nil
}

// aead derives the key from the number. This is the costly step, the one a
// guesser pays per try.
func (sp *SealedProof) aead(number string) (cipher.AEAD, error) {
	pw := make([]byte, 0, len(sealPassword)+len(sp.IDType)+1+len(number))
	pw = append(pw, sealPassword...)
	pw = append(pw, sp.IDType...)
	pw = append(pw, 0)
	pw = append(pw, number...)
	key := argon2.IDKey(pw, sp.Salt[:], uint32(sp.Params.Time), sp.Params.MemoryKiB, sp.Params.Threads, chacha20poly1305.KeySize)
	clear(pw)
	a, err := chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("couldn't make the cipher: %w", err)
	}
	return a, nil
}

// header returns the bytes before the ciphertext: the associated data.
func (sp *SealedProof) header() []byte {
	b := make([]byte, 0, headerSize+len(sp.Keys)*PublicKeySize)
	b = append(b, sealedMagic...)
	b = append(b, sealedVersion)
	t, _ := idTypeByte(sp.IDType)
	b = append(b, t)
	b = binary.BigEndian.AppendUint32(b, sp.Params.MemoryKiB)
	b = append(b, sp.Params.Time, sp.Params.Threads)
	b = append(b, sp.Salt[:]...)
	b = append(b, byte(len(sp.Keys)))
	for _, k := range sp.Keys {
		b = append(b, k.raw[:]...)
	}
	return b
}

// Marshal returns the one byte form.
func (sp *SealedProof) Marshal() []byte {
	return append(sp.header(), sp.Ciphertext...)
}

// MarshalText returns the byte form in standard padded base64, the form a
// bundle's JSON carries.
func (sp *SealedProof) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(sp.Marshal())), nil
}

// UnmarshalText parses the base64 form (standard alphabet, padded, no line
// breaks) as ParseSealedProof does.
func (sp *SealedProof) UnmarshalText(text []byte) error {
	if len(text) > base64.StdEncoding.EncodedLen(MaxSealedSize) {
		return fmt.Errorf("%w: longer than the largest sealed proof", ErrMalformedSealed)
	}
	if bytes.ContainsAny(text, "\r\n") {
		// Go's decoder skips line breaks even in Strict mode; one byte form
		// means one text form.
		return fmt.Errorf("%w: a line break in the base64", ErrMalformedSealed)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("%w: not standard padded base64", ErrMalformedSealed)
	}
	p, err := ParseSealedProof(b)
	if err != nil {
		return err
	}
	*sp = *p
	return nil
}

// ParseSealedProof decodes the byte form. It refuses anything but the one
// form above, and Argon2id parameters out of bounds; it never panics.
func ParseSealedProof(b []byte) (*SealedProof, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedSealed, fmt.Sprintf(format, args...))
	}
	if len(b) < headerSize {
		return nil, bad("%d bytes, shorter than the header", len(b))
	}
	if string(b[:8]) != sealedMagic {
		return nil, bad("not a sealed VRF proof")
	}
	if b[8] != sealedVersion {
		return nil, bad("version %d, this verifier reads version %d", b[8], sealedVersion)
	}
	sp := &SealedProof{}
	switch b[9] {
	case 1:
		sp.IDType = IDTypeBSN
	case 2:
		sp.IDType = IDTypeOnderwijsnummer
	default:
		return nil, bad("unknown identifier type %d", b[9])
	}
	sp.Params = Params{MemoryKiB: binary.BigEndian.Uint32(b[10:14]), Time: b[14], Threads: b[15]}
	if err := sp.Params.check(); err != nil {
		return nil, bad("%s", err.Error())
	}
	copy(sp.Salt[:], b[16:48])
	n := int(b[48])
	if n < 1 || n > maxKeys {
		return nil, bad("%d keys, want 1 to %d", n, maxKeys)
	}
	if want := headerSize + n*(PublicKeySize+ProofSize) + tagSize; len(b) != want {
		return nil, bad("%d bytes, want %d for %d keys", len(b), want, n)
	}
	off := headerSize
	for i := 0; i < n; i++ {
		k, err := ParsePublicKey(b[off : off+PublicKeySize])
		if err != nil {
			return nil, bad("key %d is not a canonical VRF public key", i+1)
		}
		for _, prev := range sp.Keys {
			if prev.Equal(k) {
				return nil, bad("key %d is listed twice", i+1)
			}
		}
		sp.Keys = append(sp.Keys, k)
		off += PublicKeySize
	}
	sp.Ciphertext = bytes.Clone(b[off:])
	return sp, nil
}

// Open derives the key from the number (the one costly step), decrypts the
// proofs and returns them with their keys. A number of the wrong type, or
// one that does not open the proof, gives ErrNotThisChild; a number that
// fails its check gives ErrInvalidNumber.
func (sp *SealedProof) Open(idType, number string) ([]KeyProof, error) {
	if err := CheckNumber(idType, number); err != nil {
		return nil, err
	}
	if idType != sp.IDType {
		return nil, ErrNotThisChild
	}
	a, err := sp.aead(number)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, make([]byte, chacha20poly1305.NonceSize), sp.Ciphertext, sp.header())
	if err != nil || len(plain) != len(sp.Keys)*ProofSize {
		return nil, ErrNotThisChild
	}
	out := make([]KeyProof, len(sp.Keys))
	for i, k := range sp.Keys {
		out[i] = KeyProof{Key: k, Proof: plain[i*ProofSize : (i+1)*ProofSize]}
	}
	return out, nil
}

// Outputs opens the sealed proof with the number and verifies every proof
// against its key, returning the VRF outputs the bundle's events must carry.
// A wrong number gives ErrNotThisChild. A proof that opens but does not
// verify (a desk's error, seen only by whoever typed the right number) gives
// ErrBadProof.
func (sp *SealedProof) Outputs(idType, number string) ([]KeyOutput, error) {
	proofs, err := sp.Open(idType, number)
	if err != nil {
		return nil, err
	}
	out := make([]KeyOutput, len(proofs))
	for i, kp := range proofs {
		o, err := kp.Key.Verify(idType, number, kp.Proof)
		if err != nil {
			return nil, fmt.Errorf("sealed proof %d under key %s: %w", i+1, kp.Key, err)
		}
		out[i] = KeyOutput{Key: kp.Key, Output: o}
	}
	return out, nil
}

// SealFor is what the desk runs when the number is typed: the proof under
// each VRF secret key of keys (the covenant's, in its order) for the number,
// sealed with params under a fresh salt from random (crypto/rand when nil).
func SealFor(random io.Reader, idType, number string, params Params, keys []*SecretKey) (*SealedProof, error) {
	proofs := make([]KeyProof, 0, len(keys))
	for _, k := range keys {
		p, _, err := k.Prove(idType, number)
		if err != nil {
			return nil, err
		}
		proofs = append(proofs, KeyProof{Key: k.Public(), Proof: p})
	}
	return Seal(random, idType, number, params, proofs)
}
