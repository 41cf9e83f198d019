package verifier

// The index head entry (docs/subject-index.md): the sequencer ends every
// batch that changed the subject index with an entry of type
// EntryIndexHead whose body states the index's root over every entry
// before it. Committed inside the log, the root is covered by the
// append-only proofs and the witnesses like any entry, so that two
// verifiers with consistent checkpoints see the same heads; a checkpoint
// extension line would not do, since C2SP cosigners make no statement
// about extension lines. The body also publishes the ledger's VRF public
// key, which checks a bundle's map keys: in the log, witnessed, apart from
// the covenant (which the parties' administrator signs, not the ledger),
// and a change of key shows as two heads that differ in it.
//
// The body is canonical JSON in the field order of IndexHeadBody
// (encoding/json); ParseIndexHeadBody accepts only that one form. It holds
// no personal data, and deliberately not the number of keys.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// IndexHeadFormat is the format of an index head entry's body.
const IndexHeadFormat = "spoor.index-head/v1"

// MaxIndexHeadBodySize bounds an index head body (its canonical form is
// under 300 bytes).
const MaxIndexHeadBodySize = 1024

// ErrIndexHead is wrapped by every error about an index head body.
var ErrIndexHead = errors.New("verifier: index head entry")

// IndexHeadBody is the body of an index head entry.
type IndexHeadBody struct {
	Format string `json:"format"`
	Origin string `json:"origin"`
	// TreeSize is the head's own leaf index: the root covers exactly the
	// entries at leaves 0 to TreeSize-1.
	TreeSize uint64 `json:"tree_size"`
	// Root is the subject index's root, 64 lower-case hex characters.
	Root string `json:"root"`
	// VRFKey is the ledger's map-key VRF public key, 64 lower-case hex
	// characters (verifier/subjectindex.VRFPublicKey).
	VRFKey string `json:"vrf_key"`
	// ErasuresFrom is the tree size at which the index was built over a
	// log that already had entries (0 when it was kept from the log's
	// start): entries erased by a tombstone below it were gone before the
	// index existed and are in no list.
	ErasuresFrom uint64 `json:"erasures_from"`
}

// NewIndexHeadBody returns the body of an index head.
func NewIndexHeadBody(origin string, treeSize uint64, root subjectindex.Hash, vrfKey *subjectindex.VRFPublicKey, erasuresFrom uint64) *IndexHeadBody {
	return &IndexHeadBody{Format: IndexHeadFormat, Origin: origin, TreeSize: treeSize,
		Root: hex.EncodeToString(root[:]), VRFKey: hex.EncodeToString(vrfKey.Bytes()), ErasuresFrom: erasuresFrom}
}

// RootHash returns the body's root (checked by ParseIndexHeadBody and
// MarshalIndexHeadBody).
func (h *IndexHeadBody) RootHash() subjectindex.Hash {
	var r subjectindex.Hash
	hex.Decode(r[:], []byte(h.Root))
	return r
}

// VRFPublicKey returns the body's VRF public key.
func (h *IndexHeadBody) VRFPublicKey() (*subjectindex.VRFPublicKey, error) {
	b, err := hex.DecodeString(h.VRFKey)
	if err != nil {
		return nil, fmt.Errorf("%w: vrf_key is not hex", ErrIndexHead)
	}
	k, err := subjectindex.ParseVRFPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIndexHead, err)
	}
	return k, nil
}

func (h *IndexHeadBody) check() error {
	switch {
	case h.Format != IndexHeadFormat:
		return fmt.Errorf("%w: format is %q, want %q", ErrIndexHead, clip(h.Format), IndexHeadFormat)
	case !validOrigin(h.Origin):
		return fmt.Errorf("%w: origin is not a log origin", ErrIndexHead)
	case !lowerHex(h.Root, 64):
		return fmt.Errorf("%w: root is not 64 lower-case hex characters", ErrIndexHead)
	case !lowerHex(h.VRFKey, 64):
		return fmt.Errorf("%w: vrf_key is not 64 lower-case hex characters", ErrIndexHead)
	case h.ErasuresFrom > h.TreeSize:
		return fmt.Errorf("%w: erasures_from %d is beyond the head's tree size %d", ErrIndexHead, h.ErasuresFrom, h.TreeSize)
	}
	if _, err := h.VRFPublicKey(); err != nil {
		return err
	}
	return nil
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MarshalIndexHeadBody returns h's canonical bytes, after checking it.
func MarshalIndexHeadBody(h *IndexHeadBody) ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIndexHead, err)
	}
	return b, nil
}

// ParseIndexHeadBody parses an index head entry's body, refusing anything
// but the one canonical form of a valid body.
func ParseIndexHeadBody(b []byte) (*IndexHeadBody, error) {
	if len(b) > MaxIndexHeadBodySize {
		return nil, fmt.Errorf("%w: body of %d bytes, at most %d", ErrIndexHead, len(b), MaxIndexHeadBodySize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h IndexHeadBody
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIndexHead, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrIndexHead)
	}
	again, err := MarshalIndexHeadBody(&h)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrIndexHead)
	}
	return &h, nil
}
