package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// DerivedEventID makes a UUIDv7 from the event time and a hash of the party
// and the line of input that describes the event, so that the same line
// always gets the same id: a publisher that reruns its input (spoor publish
// does, for lines without an id) publishes the same events again, which the
// ledger recognises, instead of new ones.
func DerivedEventID(party string, line []byte, t time.Time) string {
	h := sha256.New()
	h.Write([]byte("spoor/publish-id/v1\x00" + party + "\x00"))
	h.Write(line)
	sum := h.Sum(nil)
	var u uuid.UUID
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(t.UnixMilli()))
	copy(u[0:6], ts[2:8])
	copy(u[6:], sum[:10])
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	return u.String()
}

// MaxIdempotencyKeyLen is the longest idempotency key KeyedEventID takes
// (as the gateway's Idempotency-Key header): long enough for a UUID, a
// case number and a line number, short enough to keep out bulk data.
const MaxIdempotencyKeyLen = 255

// KeyedEventID derives a party's event id from a client's idempotency key:
// the 122 free bits of a UUIDv7 are the first bits of HMAC-SHA256 under
// the party's salt secret over "spoor/keyed-id/v1\x00" || party || "\x00"
// || key. It needs no stored state, so a restarted gateway, or a second one
// holding the same party key, derives the same id for the same key; and
// because the id depends on the key alone (not on the disclosure), the
// same key sent with another disclosure meets the first one's id in the
// ledger, which answers id_conflict. Without the salt secret nobody can
// link a key to its id.
//
// The 48 bits that a UUIDv7 reserves for the time are HMAC bits too, not
// a time: an id derived from a key alone cannot carry the time of a first
// request, and nothing in Spoor reads time from an event id (occurred_at
// and the leaf's integrated_at carry the times).
func KeyedEventID(saltSecret []byte, party, key string) string {
	m := hmac.New(sha256.New, saltSecret)
	m.Write([]byte("spoor/keyed-id/v1\x00" + party + "\x00"))
	m.Write([]byte(key))
	var u uuid.UUID
	copy(u[:], m.Sum(nil))
	u[6] = 0x70 | (u[6] & 0x0f)
	u[8] = 0x80 | (u[8] & 0x3f)
	return u.String()
}
