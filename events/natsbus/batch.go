package natsbus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
)

// A batch message carries several envelopes of one party in one NATS
// message. On this kind of machine JetStream costs about 50 µs of CPU per
// message (publish, store, deliver, ack, remove) whatever its size, more
// than opening and checking the event itself; a system that records many
// disclosures at once (a nightly export, a school-year start) pays that
// once per batch instead of once per event.
//
// The body is JSON Lines: each envelope followed by one '\n'. A canonical
// envelope is the standard JSON encoding (events.Sign), which never holds a
// raw newline, so the split is exact and every envelope keeps its bytes.
// The header BatchHeader gives the number of envelopes, so a truncated or
// padded body is refused as a whole instead of being half logged.
//
// The ledger opens each envelope on its own: a refused one is reported on
// the party's rejections subject like a single message, and the others are
// logged. The message is acked once all of its events are committed or
// reported.
const (
	// BatchHeader holds the number of envelopes in a batch message.
	BatchHeader = "Spoor-Batch"
	// MaxBatchEvents is the most envelopes in one batch message.
	MaxBatchEvents = 1024
	// MaxBatchBytes is the largest body of a batch message: NATS's default
	// max_payload (1 MiB) less room for the headers.
	MaxBatchBytes = 1<<20 - headerSlack
)

// ErrBadBatch means a batch message's header and body do not agree, or
// that envelopes cannot make one.
var ErrBadBatch = errors.New("natsbus: malformed batch message")

// ErrBatchTooLarge (an ErrBadBatch) means the envelopes are more than
// MaxBatchBytes together: split them over more messages.
var ErrBatchTooLarge = fmt.Errorf("%w: over %d bytes", ErrBadBatch, MaxBatchBytes)

// SplitWhenTooLarge sends items with send and, when send fails with
// ErrBatchTooLarge (large envelopes: over 1 MiB together), sends the same
// items in two halves the same way, in order, each halved again as often as
// needed. A batch of one is never split: send decides what one item costs
// (a single message rather than a batch). It returns the first error that is
// not ErrBatchTooLarge, or nil.
func SplitWhenTooLarge[T any](items []T, send func([]T) error) error {
	err := send(items)
	if len(items) < 2 || !errors.Is(err, ErrBatchTooLarge) {
		return err
	}
	if err := SplitWhenTooLarge(items[:len(items)/2], send); err != nil {
		return err
	}
	return SplitWhenTooLarge(items[len(items)/2:], send)
}

// BatchMsgID returns the Nats-Msg-Id of a batch message: "batch." and the
// first 32 hex characters of SHA-256(body). Like MsgID it lets JetStream's
// de-duplication swallow only a byte-identical re-publish; the ledger's
// event-id index decides about each event.
func BatchMsgID(body []byte) string {
	sum := sha256.Sum256(body)
	return "batch." + hex.EncodeToString(sum[:16])
}

// EncodeBatch joins envelopes into the body of a batch message. It refuses
// an empty batch, more than MaxBatchEvents envelopes, an envelope with a
// newline (not canonical) and a body over MaxBatchBytes.
func EncodeBatch(envs [][]byte) ([]byte, error) {
	if len(envs) == 0 || len(envs) > MaxBatchEvents {
		return nil, fmt.Errorf("%w: %d envelopes (1 to %d)", ErrBadBatch, len(envs), MaxBatchEvents)
	}
	n := 0
	for i, env := range envs {
		if len(env) == 0 || bytes.IndexByte(env, '\n') >= 0 {
			return nil, fmt.Errorf("%w: envelope %d is empty or holds a newline (not a canonical envelope)", ErrBadBatch, i)
		}
		n += len(env) + 1
	}
	if n > MaxBatchBytes {
		return nil, fmt.Errorf("%w (%d bytes)", ErrBatchTooLarge, n)
	}
	body := make([]byte, 0, n)
	for _, env := range envs {
		body = append(append(body, env...), '\n')
	}
	return body, nil
}

// SplitBatch splits the body of a batch message whose BatchHeader is count
// into its envelopes (sub-slices of body, not copies). The count must be a
// plain decimal from 1 to MaxBatchEvents and equal the number of lines, and
// every line must be non-empty and end with '\n'.
func SplitBatch(count string, body []byte) ([][]byte, error) {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > MaxBatchEvents || strconv.Itoa(n) != count {
		return nil, fmt.Errorf("%w: %s %q is not a count from 1 to %d", ErrBadBatch, BatchHeader, count, MaxBatchEvents)
	}
	if len(body) > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadBatch, len(body), MaxBatchBytes)
	}
	envs := make([][]byte, 0, n)
	for rest := body; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, fmt.Errorf("%w: the last line has no newline", ErrBadBatch)
		}
		if i == 0 {
			return nil, fmt.Errorf("%w: line %d is empty", ErrBadBatch, len(envs)+1)
		}
		if len(envs) == n {
			return nil, fmt.Errorf("%w: more than the %d lines %s announces", ErrBadBatch, n, BatchHeader)
		}
		envs = append(envs, rest[:i:i])
		rest = rest[i+1:]
	}
	if len(envs) != n {
		return nil, fmt.Errorf("%w: %d lines, %s announces %d", ErrBadBatch, len(envs), BatchHeader, n)
	}
	return envs, nil
}

// BatchMessage builds the message that publishes envs (signed envelopes of
// party) as one batch on party's subject.
func BatchMessage(party string, envs [][]byte) (*nats.Msg, error) {
	if !events.ValidPartyID(party) {
		return nil, fmt.Errorf("party %q: %w", party, ErrInvalidParty)
	}
	body, err := EncodeBatch(envs)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(DisclosureSubject(party))
	m.Data = body
	m.Header.Set(BatchHeader, strconv.Itoa(len(envs)))
	m.Header.Set(jetstream.MsgIDHeader, BatchMsgID(body))
	m.Header.Set(jetstream.ExpectedStreamHeader, Stream)
	return m, nil
}
