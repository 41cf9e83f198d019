package verifier

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// A leaf record is the data of one Merkle leaf. It commits to an entry
// without containing it: the entry's bytes (a disclosure envelope, a covenant
// version, a tombstone body) are stored apart and may be erased, while the
// record, which holds no personal data, stays in the public log forever.
//
// Byte layout (version 1), all integers big-endian:
//
//	offset size  field
//	0      1     version, = 1
//	1      1     entry type: 1 disclosure, 2 covenant, 3 tombstone, 4 answer,
//	             5 index head
//	2      32    body hash: SHA-256 of the canonical envelope or entry body
//	34     8     integrated_at: Unix milliseconds, when the ledger integrated the entry
//	42     8     covenant leaf index: the covenant entry the entry was checked against
//	50           end of a disclosure, covenant, answer or index head record
//	             (50 bytes)
//
// A tombstone record continues:
//
//	50     8     erased leaf index
//	58     1     rule id length n, 1..64
//	59     n     rule id, ASCII [a-z0-9._:-]
//
// There is exactly one byte form per record: no trailing bytes, no unknown
// version or type, no rule id outside its alphabet. The covenant entry of
// version 1 sits at leaf 0 and names itself (covenant leaf index 0); every
// later covenant version names the version it was checked against.

// LeafRecordVersion is the only leaf record version this package reads and
// writes.
const LeafRecordVersion = 1

// LeafRecordSize is the size of a disclosure or covenant leaf record.
const LeafRecordSize = 50

// MaxRuleIDLength is the longest rule id a tombstone may carry.
const MaxRuleIDLength = 64

// MaxLeafRecordSize is the size of the largest leaf record (a tombstone
// with a rule id of MaxRuleIDLength bytes).
const MaxLeafRecordSize = LeafRecordSize + 8 + 1 + MaxRuleIDLength

// ErrMalformedLeafRecord is returned (wrapped, with detail) for a leaf
// record that is not in the one valid byte form, or a LeafRecord that cannot
// be written as one.
var ErrMalformedLeafRecord = errors.New("verifier: malformed leaf record")

// EntryType says what kind of entry a leaf commits to.
type EntryType uint8

// The entry types. Their numeric values are part of the leaf record format.
const (
	// EntryDisclosure is a disclosure event; the body hash is SHA-256 of
	// its canonical DSSE envelope.
	EntryDisclosure EntryType = 1
	// EntryCovenant is a signed covenant version.
	EntryCovenant EntryType = 2
	// EntryTombstone records that retention erased an earlier entry.
	EntryTombstone EntryType = 3
	// EntryAnswer is an inzage answer on the record (answerentry.go);
	// the body hash is SHA-256 of its canonical body. Verifiers before
	// this type refuse logs that hold one.
	EntryAnswer EntryType = 4
	// EntryIndexHead is a subject index head (indexhead.go): the body
	// hash is SHA-256 of its canonical body, which states the index's
	// root over every entry before it. Verifiers before this type refuse
	// logs that hold one.
	EntryIndexHead EntryType = 5
)

// String returns the lower-case name of the entry type, as reports print it.
func (t EntryType) String() string {
	switch t {
	case EntryDisclosure:
		return "disclosure"
	case EntryCovenant:
		return "covenant"
	case EntryTombstone:
		return "tombstone"
	case EntryAnswer:
		return "answer"
	case EntryIndexHead:
		return "index-head"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

func (t EntryType) valid() bool { return t >= EntryDisclosure && t <= EntryIndexHead }

// LatestEntryType is the newest entry type this version reads. A log
// written by a later version may hold types above it, which this version
// refuses with an *UnknownEntryTypeError rather than guess at.
const LatestEntryType = EntryIndexHead

// UnknownEntryTypeError is a leaf record of an entry type newer than this
// version of Spoor knows (above LatestEntryType): not a damaged record but
// one written by a later ledger, whose meaning and checks this version
// cannot know. It wraps ErrMalformedLeafRecord, since this version cannot
// read it; its message tells the user to upgrade.
type UnknownEntryTypeError struct {
	// Type is the entry type byte of the record.
	Type uint8
}

func (e *UnknownEntryTypeError) Error() string {
	return fmt.Sprintf("entry type %d is unknown to this version of spoor, which reads entry types 1 to %d: "+
		"the log was written by a newer ledger; upgrade spoor to a version that reads entry type %d "+
		"(docs/wire-format.md lists the version that introduced each type)", e.Type, LatestEntryType, e.Type)
}

// Unwrap makes the error an ErrMalformedLeafRecord for callers that only
// ask whether a record could be read.
func (e *UnknownEntryTypeError) Unwrap() error { return ErrMalformedLeafRecord }

// typeError is the error for a record whose type byte is t, when t is not
// valid: a future type is an UnknownEntryTypeError, type 0 is malformed.
func typeError(t uint8) error {
	if EntryType(t) > LatestEntryType {
		return &UnknownEntryTypeError{Type: t}
	}
	return fmt.Errorf("%w: unknown entry type %d", ErrMalformedLeafRecord, t)
}

// LeafRecord is the decoded form of a leaf record.
type LeafRecord struct {
	// Type is the kind of entry.
	Type EntryType
	// BodyHash is SHA-256 of the canonical envelope or entry body.
	BodyHash [32]byte
	// IntegratedAt is when the ledger integrated the entry, with
	// millisecond precision (UTC when parsed). MarshalBinary refuses a time
	// with a sub-millisecond part rather than silently dropping it, so that
	// the value a ledger keeps in memory is the value it committed to.
	IntegratedAt time.Time
	// CovenantIndex is the leaf index of the covenant entry this entry was
	// checked against.
	CovenantIndex uint64
	// ErasedIndex is the leaf index a tombstone erases; zero otherwise.
	ErasedIndex uint64
	// RuleID is the retention rule a tombstone applies; empty otherwise.
	RuleID string
}

// validRuleID reports whether s is 1..64 bytes of [a-z0-9._:-].
func validRuleID(s string) bool {
	if len(s) == 0 || len(s) > MaxRuleIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// check reports why r cannot be written as a leaf record, and returns its
// integrated_at in Unix milliseconds otherwise.
func (r *LeafRecord) check() (uint64, error) {
	if !r.Type.valid() {
		return 0, typeError(uint8(r.Type))
	}
	ms := r.IntegratedAt.UnixMilli()
	if ms < 0 {
		return 0, fmt.Errorf("%w: integrated_at %s is before 1970", ErrMalformedLeafRecord, r.IntegratedAt.UTC().Format(time.RFC3339Nano))
	}
	if !time.UnixMilli(ms).Equal(r.IntegratedAt) {
		return 0, fmt.Errorf("%w: integrated_at %s has a sub-millisecond part (truncate it to milliseconds first)",
			ErrMalformedLeafRecord, r.IntegratedAt.UTC().Format(time.RFC3339Nano))
	}
	if r.Type == EntryTombstone {
		if !validRuleID(r.RuleID) {
			return 0, fmt.Errorf("%w: rule id %q is not 1..%d characters of [a-z0-9._:-]", ErrMalformedLeafRecord, r.RuleID, MaxRuleIDLength)
		}
	} else if r.ErasedIndex != 0 || r.RuleID != "" {
		// These fields would be silently lost in the byte form.
		return 0, fmt.Errorf("%w: a %s record has no erased index or rule id", ErrMalformedLeafRecord, r.Type)
	}
	return uint64(ms), nil
}

// AppendBinary appends the leaf record's byte form to dst. It allocates only
// if dst lacks capacity, and leaves dst unchanged on error. It implements
// encoding.BinaryAppender.
func (r *LeafRecord) AppendBinary(dst []byte) ([]byte, error) {
	ms, err := r.check()
	if err != nil {
		return dst, err
	}
	dst = append(dst, LeafRecordVersion, byte(r.Type))
	dst = append(dst, r.BodyHash[:]...)
	dst = binary.BigEndian.AppendUint64(dst, ms)
	dst = binary.BigEndian.AppendUint64(dst, r.CovenantIndex)
	if r.Type == EntryTombstone {
		dst = binary.BigEndian.AppendUint64(dst, r.ErasedIndex)
		dst = append(dst, byte(len(r.RuleID)))
		dst = append(dst, r.RuleID...)
	}
	return dst, nil
}

// MarshalBinary returns the leaf record's byte form.
func (r *LeafRecord) MarshalBinary() ([]byte, error) {
	n := LeafRecordSize
	if r.Type == EntryTombstone {
		n += 8 + 1 + len(r.RuleID)
	}
	return r.AppendBinary(make([]byte, 0, n))
}

// UnmarshalBinary decodes b into r, with the checks of ParseLeafRecord; r
// is left as it was when b is refused. It allocates nothing for a
// disclosure or covenant record, which is why bundle checks that only need
// a field use it.
func (r *LeafRecord) UnmarshalBinary(b []byte) error {
	var v LeafRecord
	if err := v.decode(b); err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseLeafRecord decodes a leaf record, refusing every byte string that is
// not the one valid form of some record: wrong length, unknown version or
// entry type, trailing bytes, an integrated_at beyond what time.Time holds
// in milliseconds, or a bad rule id. Errors wrap ErrMalformedLeafRecord.
func ParseLeafRecord(b []byte) (*LeafRecord, error) {
	r := new(LeafRecord)
	if err := r.decode(b); err != nil {
		return nil, err
	}
	return r, nil
}

// decode is ParseLeafRecord into r, which it may leave half written on an
// error.
func (r *LeafRecord) decode(b []byte) error {
	if len(b) < LeafRecordSize {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformedLeafRecord, len(b), LeafRecordSize)
	}
	if b[0] != LeafRecordVersion {
		return fmt.Errorf("%w: unknown version %d", ErrMalformedLeafRecord, b[0])
	}
	*r = LeafRecord{Type: EntryType(b[1])}
	if !r.Type.valid() {
		return typeError(b[1])
	}
	copy(r.BodyHash[:], b[2:34])
	ms := binary.BigEndian.Uint64(b[34:42])
	if ms > math.MaxInt64 {
		return fmt.Errorf("%w: integrated_at %d ms is out of range", ErrMalformedLeafRecord, ms)
	}
	r.IntegratedAt = time.UnixMilli(int64(ms)).UTC()
	r.CovenantIndex = binary.BigEndian.Uint64(b[42:50])
	rest := b[LeafRecordSize:]
	if r.Type != EntryTombstone {
		if len(rest) != 0 {
			return fmt.Errorf("%w: %d trailing bytes after a %s record", ErrMalformedLeafRecord, len(rest), r.Type)
		}
		return nil
	}
	if len(rest) < 9 {
		return fmt.Errorf("%w: tombstone record of %d bytes is truncated", ErrMalformedLeafRecord, len(b))
	}
	r.ErasedIndex = binary.BigEndian.Uint64(rest[:8])
	n := int(rest[8])
	rest = rest[9:]
	if n < 1 || n > MaxRuleIDLength {
		return fmt.Errorf("%w: rule id length %d, want 1..%d", ErrMalformedLeafRecord, n, MaxRuleIDLength)
	}
	if len(rest) != n {
		return fmt.Errorf("%w: rule id length %d but %d bytes follow", ErrMalformedLeafRecord, n, len(rest))
	}
	r.RuleID = string(rest)
	if !validRuleID(r.RuleID) {
		return fmt.Errorf("%w: rule id %q is not made of [a-z0-9._:-]", ErrMalformedLeafRecord, r.RuleID)
	}
	return nil
}

// LeafHash returns the RFC 6962 leaf hash of a leaf record's bytes:
// SHA-256(0x00 || record).
func LeafHash(record []byte) [32]byte {
	// Leaf records are small: hash them from a stack buffer, which costs
	// no allocation (an audit hashes every leaf of the log).
	if len(record) <= MaxLeafRecordSize {
		var buf [1 + MaxLeafRecordSize]byte
		n := copy(buf[1:], record)
		return sha256.Sum256(buf[:1+n])
	}
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(record)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
