package verifier

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A checkpoint is a C2SP tlog-checkpoint: a signed note whose text is
//
//	<origin>\n<tree size in decimal>\n<root hash in standard base64>\n
//
// followed by a blank line and signature lines "— <key name> <base64>". Spoor
// requires two signatures and ignores any others (a witness may add its own):
//
//   - the log key's Ed25519 note signature (golang.org/x/mod/sumdb/note,
//     algorithm 0x01); the key's name is the origin, and
//   - a tlog-cosignature/v1 (algorithm 0x04) by the log's own cosigner key,
//     named "<origin>/cosigner", which carries the Unix time in seconds at
//     which the log made the checkpoint. x/mod's note package cannot load
//     that key type, so github.com/transparency-dev/formats/note verifies it.
//
// The text has exactly those three lines: extension lines are refused, the
// size has no leading zeros, the hash is strict padded base64 of 32 bytes.

// Sentinel errors of OpenCheckpoint. Each is wrapped with detail.
var (
	// ErrMalformedCheckpoint: the bytes are not a well-formed signed note
	// with a three-line checkpoint body.
	ErrMalformedCheckpoint = errors.New("verifier: malformed checkpoint")
	// ErrWrongOrigin: the checkpoint names another log than the pinned key.
	ErrWrongOrigin = errors.New("verifier: checkpoint of another origin")
	// ErrBadSignature: the log signature is missing, or a signature by the
	// log or cosigner key does not verify.
	ErrBadSignature = errors.New("verifier: bad checkpoint signature")
	// ErrMissingCosignature: the log signature verifies but there is no
	// cosignature by the log's cosigner key.
	ErrMissingCosignature = errors.New("verifier: checkpoint has no cosignature")
)

// CosignerSuffix is appended to the origin to name the log's cosigner key.
const CosignerSuffix = "/cosigner"

// MaxCheckpointSize bounds what OpenCheckpoint reads (and what a client
// fetching a checkpoint needs to read): a body and up to 100
// signature lines (note.Open's own limit) fit easily.
const MaxCheckpointSize = 64 << 10

// Note key algorithm identifiers, the first byte of a decoded key.
const (
	algEd25519       = 0x01
	algCosignatureV1 = 0x04
)

// FormatCheckpoint returns the checkpoint body (the note text that is
// signed) for a tree of the given size and root hash.
func FormatCheckpoint(origin string, size uint64, root [32]byte) []byte {
	b := make([]byte, 0, len(origin)+1+20+1+44+1)
	b = append(b, origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, root[:])
	return append(b, '\n')
}

// Checkpoint is an opened, verified checkpoint.
type Checkpoint struct {
	// Origin names the log; it equals the log key's name.
	Origin string
	// Size is the number of leaves in the tree.
	Size uint64
	// Hash is the RFC 6962 root hash of the tree.
	Hash [32]byte
	// CosignedAt is the time in the log's own cosignature (whole seconds,
	// UTC): when the operator says it made the checkpoint. Only a witness's
	// cosignature bounds that time from outside.
	CosignedAt time.Time
	// Note is the signed note as received, signatures included.
	Note []byte
}

// Tree returns the checkpoint's tree in the form golang.org/x/mod/sumdb/tlog
// uses. OpenCheckpoint refuses sizes above math.MaxInt64, so the conversion
// is exact.
func (c *Checkpoint) Tree() tlog.Tree {
	return tlog.Tree{N: int64(c.Size), Hash: tlog.Hash(c.Hash)}
}

// LogKeys are the pinned public keys of one log: the log key, whose name is
// the origin, and the log's own cosigner key, named "<origin>/cosigner".
type LogKeys struct {
	// Log verifies the log's Ed25519 note signature; its name is the origin.
	Log note.Verifier
	// Cosigner verifies the log's own timestamped tlog-cosignature/v1.
	Cosigner note.Verifier
}

// ParseLogKeys parses the log's Ed25519 verifier key and its cosigner's key.
// The cosigner key may be given as an Ed25519 vkey (0x01) or as a
// tlog-cosignature/v1 vkey (0x04, what GenerateLogKeys writes); either way
// it verifies cosignatures only. The cosigner's name must be the log key's
// name followed by "/cosigner", so that the two keys cannot be swapped or
// taken from two different logs.
func ParseLogKeys(logVkey, cosignerVkey string) (*LogKeys, error) {
	logV, err := note.NewVerifier(strings.TrimSpace(logVkey))
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w", err)
	}
	cosVkey := strings.TrimSpace(cosignerVkey)
	alg, err := vkeyAlgorithm(cosVkey)
	if err != nil {
		return nil, fmt.Errorf("cosigner verifier key: %w", err)
	}
	if alg != algEd25519 && alg != algCosignatureV1 {
		return nil, fmt.Errorf("cosigner verifier key: algorithm 0x%02x, want Ed25519 (0x01) or cosignature/v1 (0x04)", alg)
	}
	cosV, err := fnote.NewVerifierForCosignatureV1(cosVkey)
	if err != nil {
		return nil, fmt.Errorf("cosigner verifier key: %w", err)
	}
	if want := logV.Name() + CosignerSuffix; cosV.Name() != want {
		return nil, fmt.Errorf("cosigner verifier key is named %q, want %q", cosV.Name(), want)
	}
	return &LogKeys{Log: logV, Cosigner: cosV}, nil
}

// vkeyAlgorithm returns the algorithm byte of a vkey "name+hash+base64".
func vkeyAlgorithm(vkey string) (byte, error) {
	// Base64 may contain '+', names and hashes may not: cut twice.
	_, rest, ok1 := strings.Cut(vkey, "+")
	_, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return 0, errors.New("not of the form name+hash+key")
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(key) == 0 {
		return 0, errors.New("key is not base64")
	}
	return key[0], nil
}

// KeyFingerprint returns the name and key hash part of a vkey
// ("<name>+<hash>"), which is what a tool prints to say which key it
// trusted. It returns "" for a string that is not a vkey.
//
// It reads the fingerprint off the key's text, which need not parse as a
// note verifier (an administrator key a tool was given, a covenant's key);
// NoteKeyFingerprint gives the same string for a key already parsed, whose
// text is no longer at hand. Both exist because their inputs differ, not
// their output.
func KeyFingerprint(vkey string) string {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok := strings.Cut(vkey, "+")
	if !ok || !validKeyName(name) {
		return ""
	}
	hash, _, ok := strings.Cut(rest, "+")
	if !ok || len(hash) != 8 {
		return ""
	}
	if _, err := strconv.ParseUint(hash, 16, 32); err != nil {
		return ""
	}
	return name + "+" + hash
}

// NoteKeyFingerprint returns "<name>+<hash>" of a parsed note verifier
// (the log or cosigner key of LogKeys): the same string KeyFingerprint
// gives for the vkey it was parsed from.
func NoteKeyFingerprint(v note.Verifier) string {
	return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
}

// validKeyName mirrors the note packages' rule for key names: non-empty
// UTF-8 without spaces or '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 &&
		!strings.Contains(name, "+")
}

// GenerateLogKeys makes a new log key pair named origin and a cosigner key
// pair named origin + "/cosigner". The log keys are x/mod note Ed25519 keys
// (algorithm 0x01). The cosigner keys are written in the tlog-cosignature/v1
// form (algorithm 0x04), so that neither half can be loaded as a plain
// Ed25519 note key and used to sign checkpoints without a timestamp. The
// signer keys are secrets.
func GenerateLogKeys(origin string) (logSkey, logVkey, cosSkey, cosVkey string, err error) {
	if !validOrigin(origin) {
		return "", "", "", "", fmt.Errorf("origin %q: must be printable, without spaces or '+'", origin)
	}
	seeds := make([]byte, 2*ed25519.SeedSize)
	if _, err := rand.Read(seeds); err != nil {
		return "", "", "", "", fmt.Errorf("couldn't generate log keys: %w", err)
	}
	logSkey, logVkey = encodeKeyPair(origin, algEd25519, seeds[:ed25519.SeedSize])
	cosSkey, cosVkey = encodeKeyPair(origin+CosignerSuffix, algCosignatureV1, seeds[ed25519.SeedSize:])
	clear(seeds)
	return logSkey, logVkey, cosSkey, cosVkey, nil
}

// GenerateWitnessKey makes a witness's key pair named name, in the
// tlog-cosignature/v1 form (algorithm 0x04): the key a witness cosigns
// checkpoints with, which cannot be loaded as a plain Ed25519 note key. The
// signer key is a secret.
func GenerateWitnessKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("witness name %q: must be printable, without spaces or '+'", name)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", "", fmt.Errorf("couldn't generate the witness key: %w", err)
	}
	skey, vkey = encodeKeyPair(name, algCosignatureV1, seed)
	clear(seed)
	return skey, vkey, nil
}

// VerifierKeyOf returns the verifier key of an Ed25519 signer key (in the
// 0x01 or 0x04 encoding), for a tool to show which key it signs with.
func VerifierKeyOf(skey string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), "PRIVATE+KEY+")
	name, rest, ok1 := strings.Cut(rest, "+")
	_, key64, ok2 := strings.Cut(rest, "+")
	if !ok || !ok1 || !ok2 || !validKeyName(name) {
		return "", errors.New("not a signer key of the form PRIVATE+KEY+name+hash+key")
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(key) != 1+ed25519.SeedSize || (key[0] != algEd25519 && key[0] != algCosignatureV1) {
		return "", errors.New("not an Ed25519 signer key")
	}
	_, vkey := encodeKeyPair(name, key[0], key[1:])
	return vkey, nil
}

// encodeKeyPair returns the note key strings of the Ed25519 key with the
// given seed, under algorithm alg:
//
//	PRIVATE+KEY+<name>+<hash>+base64(alg || seed)
//	<name>+<hash>+base64(alg || public key)
//
// where hash is, in hex, the first four bytes of
// SHA-256(name || "\n" || alg || public key), as C2SP signed-note defines
// key hashes.
func encodeKeyPair(name string, alg byte, seed []byte) (skey, vkey string) {
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pubKey := append([]byte{alg}, pub...)
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(pubKey)
	hash := binary.BigEndian.Uint32(h.Sum(nil))
	privKey := append([]byte{alg}, seed...)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(privKey))
	vkey = fmt.Sprintf("%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(pubKey))
	return skey, vkey
}

// CheckpointSigner signs checkpoints with the log key and the log's
// cosigner key. It is safe for concurrent use.
type CheckpointSigner struct {
	log      note.Signer
	cosigner note.Signer
}

// NewCheckpointSigner loads the log's signer key (an x/mod note Ed25519
// skey) and its cosigner's signer key (Ed25519, in the 0x01 or 0x04
// encoding). The cosigner's name must be the log key's name followed by
// "/cosigner".
func NewCheckpointSigner(logSkey, cosSkey string) (*CheckpointSigner, error) {
	logS, err := note.NewSigner(strings.TrimSpace(logSkey))
	if err != nil {
		return nil, fmt.Errorf("log signer key: %w", err)
	}
	if !validOrigin(logS.Name()) {
		return nil, fmt.Errorf("log signer key: name %q is not a usable origin", logS.Name())
	}
	cosS, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(cosSkey))
	if err != nil {
		return nil, fmt.Errorf("cosigner signer key: %w", err)
	}
	if want := logS.Name() + CosignerSuffix; cosS.Name() != want {
		return nil, fmt.Errorf("cosigner signer key is named %q, want %q", cosS.Name(), want)
	}
	return &CheckpointSigner{log: logS, cosigner: cosS}, nil
}

// Origin returns the origin the signer signs for (the log key's name).
func (s *CheckpointSigner) Origin() string { return s.log.Name() }

// Sign returns a signed checkpoint for a tree of the given size and root:
// the body, a blank line, the log signature and the cosignature, whose
// timestamp is the current time in whole seconds.
func (s *CheckpointSigner) Sign(origin string, size uint64, root [32]byte) ([]byte, error) {
	if origin != s.log.Name() {
		return nil, fmt.Errorf("%w: asked to sign for %q with the key of %q", ErrWrongOrigin, origin, s.log.Name())
	}
	if size > math.MaxInt64 {
		return nil, fmt.Errorf("tree size %d is too large", size)
	}
	msg, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(origin, size, root))}, s.log, s.cosigner)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return msg, nil
}

// validOrigin reports whether origin can be a checkpoint's first line: a
// valid key name of printable characters.
func validOrigin(origin string) bool {
	if !validKeyName(origin) {
		return false
	}
	for _, r := range origin {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// parseCheckpointBody parses the three-line checkpoint text strictly.
func parseCheckpointBody(text []byte) (origin string, size uint64, root [32]byte, err error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return "", 0, root, errors.New("body does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) != 3 {
		return "", 0, root, fmt.Errorf("body has %d lines, want 3 (extension lines are not accepted)", len(lines))
	}
	origin = lines[0]
	if origin == "" {
		return "", 0, root, errors.New("empty origin line")
	}
	s := lines[1]
	if s == "" || len(s) > 1 && s[0] == '0' {
		return "", 0, root, errors.New("tree size is not a decimal number without leading zeros")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", 0, root, errors.New("tree size is not a decimal number")
		}
	}
	size, err = strconv.ParseUint(s, 10, 64)
	if err != nil || size > math.MaxInt64 {
		return "", 0, root, errors.New("tree size is out of range")
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != len(root) {
		return "", 0, root, errors.New("root hash is not 32 bytes in standard base64")
	}
	copy(root[:], h)
	return origin, size, root, nil
}

// OpenCheckpoint checks a signed checkpoint against the pinned keys and
// returns it. The checks, in order, and what each failure returns:
//
//   - the note is well-formed, its text is a three-line checkpoint body
//     (ErrMalformedCheckpoint);
//   - the origin equals the log key's name (ErrWrongOrigin);
//   - no signature by a pinned key is invalid, and the log signature is
//     present (ErrBadSignature);
//   - a cosignature by the pinned cosigner key is present
//     (ErrMissingCosignature).
//
// Signatures by other keys are ignored. More than one signature line by a
// pinned key is refused as malformed, so there is one cosigned time.
func OpenCheckpoint(b []byte, keys *LogKeys) (*Checkpoint, error) {
	if keys == nil || keys.Log == nil || keys.Cosigner == nil {
		return nil, errors.New("verifier: OpenCheckpoint needs both the log and the cosigner key")
	}
	if len(b) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrMalformedCheckpoint, len(b))
	}
	// Split the note the way note.Open does, to read the body before the
	// signatures: that tells a checkpoint of another log (whose signatures
	// are all unknown here) from one with a bad signature.
	split := bytes.LastIndex(b, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: no signature block", ErrMalformedCheckpoint)
	}
	text, sigBlock := b[:split+1], b[split+2:]
	origin, size, root, err := parseCheckpointBody(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	if origin != keys.Log.Name() {
		return nil, fmt.Errorf("%w: checkpoint origin %q, pinned log key is %q", ErrWrongOrigin, origin, keys.Log.Name())
	}
	if err := refuseRepeatedSignatures(sigBlock, keys); err != nil {
		return nil, err
	}

	n, err := note.Open(b, note.VerifierList(keys.Log, keys.Cosigner))
	if err != nil {
		var invalid *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
		case errors.As(err, &unverified):
			return nil, fmt.Errorf("%w: no signature by the log key %s", ErrBadSignature, keys.Log.Name())
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	var logSigned, cosigned bool
	var cosignedAt time.Time
	for _, sig := range n.Sigs {
		switch {
		case sig.Name == keys.Log.Name() && sig.Hash == keys.Log.KeyHash():
			logSigned = true
		case sig.Name == keys.Cosigner.Name() && sig.Hash == keys.Cosigner.KeyHash():
			t, err := fnote.CoSigV1Timestamp(sig)
			if err != nil {
				return nil, fmt.Errorf("%w: cosignature timestamp: %w", ErrBadSignature, err)
			}
			cosigned, cosignedAt = true, t.UTC()
		}
	}
	if !logSigned {
		return nil, fmt.Errorf("%w: no signature by the log key %s", ErrBadSignature, keys.Log.Name())
	}
	if !cosigned {
		return nil, fmt.Errorf("%w: none by %s", ErrMissingCosignature, keys.Cosigner.Name())
	}
	return &Checkpoint{
		Origin:     origin,
		Size:       size,
		Hash:       root,
		CosignedAt: cosignedAt,
		Note:       bytes.Clone(b),
	}, nil
}

// OpenLogSignedCheckpoint checks a checkpoint the way a witness does: the
// note is a checkpoint of the log named by logKey and carries a valid
// signature by that key; the log's own cosignature is not required (a
// witness never checks it, so a checkpoint that someone holding the log key
// signed alone can be cosigned by witnesses). The monitor reads what
// witnesses hold with it. CosignedAt is zero. Errors are those of
// OpenCheckpoint.
func OpenLogSignedCheckpoint(b []byte, logKey note.Verifier) (*Checkpoint, error) {
	if logKey == nil {
		return nil, errors.New("verifier: OpenLogSignedCheckpoint needs the log key")
	}
	if len(b) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrMalformedCheckpoint, len(b))
	}
	n, err := note.Open(b, note.VerifierList(logKey))
	if err != nil {
		var invalid *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
		case errors.As(err, &unverified):
			return nil, fmt.Errorf("%w: no signature by the log key %s", ErrBadSignature, logKey.Name())
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	origin, size, root, err := parseCheckpointBody([]byte(n.Text))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	if origin != logKey.Name() {
		return nil, fmt.Errorf("%w: checkpoint origin %q, log key is %q", ErrWrongOrigin, origin, logKey.Name())
	}
	return &Checkpoint{Origin: origin, Size: size, Hash: root, Note: bytes.Clone(b)}, nil
}

// refuseRepeatedSignatures refuses a signature block with two lines by the
// same pinned key. note.Open would keep the first and skip the others
// unverified; refusing them keeps one meaning per checkpoint (one time).
func refuseRepeatedSignatures(sigBlock []byte, keys *LogKeys) error {
	var logLines, cosLines int
	for _, k := range signatureLineKeys(sigBlock) {
		switch {
		case k.name == keys.Log.Name() && k.hash == keys.Log.KeyHash():
			logLines++
		case k.name == keys.Cosigner.Name() && k.hash == keys.Cosigner.KeyHash():
			cosLines++
		}
	}
	if logLines > 1 || cosLines > 1 {
		return fmt.Errorf("%w: more than one signature line by a pinned key", ErrMalformedCheckpoint)
	}
	return nil
}

// signatureLineKey is the key name and key hash a signature line claims.
type signatureLineKey struct {
	name string
	hash uint32
}

// signatureLineKeys reads the key each line of a note's signature block
// claims, skipping lines it cannot read (note.Open reports those).
func signatureLineKeys(sigBlock []byte) []signatureLineKey {
	var keys []signatureLineKey
	for line := range strings.Lines(string(sigBlock)) {
		name, b64, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "— "), " ")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) < 4 {
			continue
		}
		keys = append(keys, signatureLineKey{name, binary.BigEndian.Uint32(sig)})
	}
	return keys
}
