package events

import (
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
