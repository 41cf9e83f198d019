package ledger

import (
	"encoding/binary"

	"github.com/google/uuid"
)

// The key layout in the Store. Every key starts with a one-byte table tag
// so that tables are contiguous ranges. Integers are big-endian so byte
// order is numeric order.
//
//	'c' seq(8)                 -> signed checkpoint note (every one is kept)
//	'l' index(8)               -> leaf record (never deleted)
//	'e' index(8)               -> entry body: the canonical envelope of a
//	                              disclosure, the signed covenant, the tombstone
//	'd' event id(16) discloser -> index(8)              event id index, per discloser
//	'x' event id(16)           -> index(8)              ids reserved for every party
//	'i' event id(16)           -> index(8)              event id index before it was per discloser
//	's' pseudonym(32) index(8) -> ""                    data-subject index
//	'p' party 0x00 index(8)    -> ""                    discloser index (no longer written)
//	'o' occurred ms(8) index(8)-> ""                    time index (no longer written)
//	'f' index(8)               -> findings (JSON)
//	'k' version(8)             -> covenant leaf index(8)
//	't' level(1) index(8)      -> tile hashes (the newest tile is partial)
//	'r' event id(16) party     -> rejection (JSON)      status of refused events, per party
//	'q' request id(16)         -> access request (JSON, answer.AccessRequest) the inzage log
//	'w' proposal id(16)        -> erasure proposal (JSON, verifier.ErasureProposal)
//	'z' erased index(8)        -> tombstone index(8)    erased leaves
//	'n' pseudonym(32) tomb(8)  -> erasure notice (JSON) kept for the covenant's notice period
//	'y' data key id            -> live envelopes under that key(8)
//	'm' name                   -> metadata
//	'L' kind(1) id(16) index(8) -> ""                   the LDV index by trace id and processing activity (ldvindex.go)
//
// Event ids are scoped per discloser: 'd' holds (id, discloser), id first so
// that the keys of a log grow in time order (ids are UUIDv7) and every
// party's event under one id is one prefix scan. Stores written before that
// had 'i' (id alone) and rejection keys without the party; Open migrates
// them once (migrate.go). An 'i' entry whose envelope was already erased
// names no discloser any more: it becomes an 'x' entry, and its id stays
// taken for every party.
//
// The discloser and time indices were written for every disclosure by
// earlier versions but never read: nothing asks the ledger for a party's or
// a period's entries (the FG's audit reads the whole log). They cost two of
// the six keys every entry added, so they are no longer written; erasure
// still deletes them, for stores that have them.
const (
	tagCheckpoint = 'c'
	tagLeaf       = 'l'
	tagEntry      = 'e'
	tagEventID    = 'd'
	tagReservedID = 'x'
	tagOldEventID = 'i'
	tagSubject    = 's'
	tagParty      = 'p'
	tagOccurred   = 'o'
	tagFindings   = 'f'
	tagCovenant   = 'k'
	tagTile       = 't'
	tagRejection  = 'r'
	tagAccess     = 'q'
	tagErased     = 'z'
	tagNotice     = 'n'
	tagKeyCount   = 'y'
	tagMeta       = 'm'
	tagProposal   = 'w'
	// tagWitnessed holds, by checkpoint number, the checkpoint with the
	// witness cosignatures gathered for it (witnessed.go).
	tagWitnessed = 'v'
	// tagWitnessedSize maps a witnessed checkpoint's tree size to its
	// checkpoint number (the first witnessed at that size), so that the
	// first witnessed checkpoint covering a leaf is one seek.
	tagWitnessedSize = 'u'
	// tagAnswerID maps an access request's id to the leaf of its answer
	// entry (answerentry.go).
	tagAnswerID = 'a'
	// tagAnswerBundle holds, by access request id, the bundle handed out
	// (beside.go).
	tagAnswerBundle = 'b'
)

func u64Key(tag byte, n uint64) []byte {
	k := make([]byte, 9)
	k[0] = tag
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func tileKey(level int, index uint64) []byte {
	k := make([]byte, 10)
	k[0] = tagTile
	k[1] = byte(level)
	binary.BigEndian.PutUint64(k[2:], index)
	return k
}

// eventIDKey returns the 16-byte form of a (validated) event id under tag.
func eventIDKey(tag byte, id string) []byte {
	return appendEventIDKey(make([]byte, 0, 17), tag, id)
}

// appendEventIDKey appends tag and the 16-byte form of a (validated) event
// id to buf.
func appendEventIDKey(buf []byte, tag byte, id string) []byte {
	u, err := uuid.Parse(id)
	if err != nil {
		// Callers pass only ids that events.Validate accepted; an
		// unparsable one maps to a key that cannot collide with a real id.
		return append(append(buf, tag, 0xff), id...)
	}
	return append(append(buf, tag), u[:]...)
}

// partyIDKey is the key of party's event id under tag (tagEventID,
// tagRejection): the id, then the party. An empty party (a rejection on a
// subject that names none) is written as one 0x00 byte, which no party id
// contains, so that no key of this form is as short as an old one.
func partyIDKey(tag byte, party, id string) []byte {
	k := appendEventIDKey(make([]byte, 0, 17+max(len(party), 1)), tag, id)
	if party == "" {
		return append(k, 0)
	}
	return append(k, party...)
}

func subjectKey(pseudonym []byte, index uint64) []byte {
	k := make([]byte, 0, 1+len(pseudonym)+8)
	k = append(k, tagSubject)
	k = append(k, pseudonym...)
	return binary.BigEndian.AppendUint64(k, index)
}

func partyKey(party string, index uint64) []byte {
	k := make([]byte, 0, 2+len(party)+8)
	k = append(k, tagParty)
	k = append(k, party...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, index)
}

func occurredKey(ms uint64, index uint64) []byte {
	k := make([]byte, 17)
	k[0] = tagOccurred
	binary.BigEndian.PutUint64(k[1:], ms)
	binary.BigEndian.PutUint64(k[9:], index)
	return k
}

// The append forms below add a key to a buffer that holds many keys (the
// sequencer builds a whole batch's keys in one allocation); lastKey then
// takes the key just added.

func appendU64Key(buf []byte, tag byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append(buf, tag), n)
}

func appendSubjectKey(buf, pseudonym []byte, index uint64) []byte {
	buf = append(append(buf, tagSubject), pseudonym...)
	return binary.BigEndian.AppendUint64(buf, index)
}

// lastKey returns the last n bytes of buf, capped so that appending to
// the buffer never writes into them.
func lastKey(buf []byte, n int) []byte { return buf[len(buf)-n : len(buf) : len(buf)] }

var (
	metaCheckpointSeq = []byte("mcheckpoint-seq")
)

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func keyCountKey(id string) []byte { return append([]byte{tagKeyCount}, id...) }

func noticeKey(pseudonym []byte, tomb uint64) []byte {
	k := make([]byte, 0, 41)
	k = append(k, tagNotice)
	k = append(k, pseudonym...)
	return binary.BigEndian.AppendUint64(k, tomb)
}
