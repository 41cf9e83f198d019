// Package replication keeps standby ledgers in step with the active one
// over NATS JetStream, and decides which ledger is the active one.
//
// Data flow: the active ledger's sequencer hands each committed batch to a
// Publisher (a ledger.Replicator), which writes the data keys the batch
// needs to the KV bucket SPOOR_DATAKEYS and then publishes the batch's
// parts on the stream SPOOR_LOG (subject Subject(origin)), each with the
// stream sequence it must follow (Nats-Expected-Last-Sequence): a second,
// stale active fails that check and halts. A standby's Follower reads the
// stream from the sequence after the last one its store holds and applies
// each batch with ledger.Apply, which checks it against its checkpoint
// before storing it. The Lease (KV bucket SPOOR_LEASE, one key per origin,
// updated by compare-and-set on its revision) says who is active: the
// active renews it every TTL/3 and stops publishing before it could have
// expired; a standby takes it once it has expired, applies the rest of the
// stream (Follower.CatchUp) and is promoted (ledger.Promote), continuing
// the same tree with the same keys.
//
// What lies in NATS: SPOOR_LOG holds every stored record of the last
// MaxAge (default 7 days): leaf records, envelopes sealed under their data
// keys, and the indices (pseudonyms among them) in the clear. SPOOR_DATAKEYS
// holds the raw data keys until retention destroys them, when they are
// purged from the bucket too (KeySync). Only the ledger's NATS user may read
// either (deploy/nats/accounts.conf).
package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the replication stream and buckets.
const (
	LogStream      = "SPOOR_LOG"
	DataKeysBucket = "SPOOR_DATAKEYS"
	LeaseBucket    = "SPOOR_LEASE"
)

// Defaults of Config.
const (
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultLeaseTTL = 10 * time.Second
)

// Errors callers branch on.
var (
	// ErrFenced means the stream had moved on past where this ledger
	// expected it: another ledger is (or was) the active one.
	ErrFenced = errors.New("replication: fenced: the stream has moved past this ledger")
	// ErrLeaseLost means this ledger no longer holds the lease.
	ErrLeaseLost = errors.New("replication: lease lost")
	// ErrNeedBackup means the stream no longer holds the batches after
	// this store's position (they are older than its MaxAge): start from
	// a newer backup (spoor backup) of another ledger.
	ErrNeedBackup = errors.New("replication: the stream no longer reaches back to this store; restore a newer backup")
	// ErrDiverged means this store holds a batch the stream does not.
	ErrDiverged = errors.New("replication: this store and the stream disagree")
)

// Subject is the subject of origin's batches on LogStream: a hash, so that
// the origin's text never needs escaping in a subject.
func Subject(origin string) string {
	h := sha256.Sum256([]byte("spoor/log-subject/v1\x00" + origin))
	return "spoor.log." + hex.EncodeToString(h[:8])
}

// leaseKey is origin's key in LeaseBucket.
func leaseKey(origin string) string { return Subject(origin)[len("spoor.log."):] }

// Config is the replication setup of one log. Its zero value (with
// Origin) is a single-node default.
type Config struct {
	// Origin is the log's origin.
	Origin string
	// Replicas of the stream and the buckets: 3 in a cluster. Default 1.
	Replicas int
	// MaxAge bounds how long a batch stays on LogStream, and so how long
	// sealed envelopes and pseudonyms linger in NATS. A standby that falls
	// further behind must start from a backup. Default 7 days.
	MaxAge time.Duration
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	return c
}

// Setup is what Ensure made: the stream and the two buckets.
type Setup struct {
	JS       jetstream.JetStream
	Stream   jetstream.Stream
	DataKeys jetstream.KeyValue
	Leases   jetstream.KeyValue
	Subject  string
	cfg      Config
}

// Ensure creates or updates LogStream (one subject per origin; limits
// retention by MaxAge; no message may be deleted singly) and the buckets
// DataKeysBucket and LeaseBucket, with cfg.Replicas each. Both the active
// and the standbys call it; it is idempotent.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (*Setup, error) {
	if cfg.Origin == "" {
		return nil, errors.New("replication: Config needs Origin")
	}
	cfg = cfg.withDefaults()
	subject := Subject(cfg.Origin)
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        LogStream,
		Description: "Spoor: committed ledger batches, for standby ledgers",
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		DenyDelete:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't create or update stream %s: %w", LogStream, err)
	}
	dk, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      DataKeysBucket,
		Description: "Spoor: data keys of the sealed envelopes, for standby ledgers; purged when destroyed",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't create or update bucket %s: %w", DataKeysBucket, err)
	}
	ls, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "Spoor: which ledger is the active one, per origin",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't create or update bucket %s: %w", LeaseBucket, err)
	}
	return &Setup{JS: js, Stream: st, DataKeys: dk, Leases: ls, Subject: subject, cfg: cfg}, nil
}

// bounds asks the stream for its first and last sequence.
func (s *Setup) bounds(ctx context.Context) (first, last uint64, err error) {
	info, err := s.Stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("couldn't read stream %s: %w", LogStream, err)
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// isWrongLastSeq reports whether err is JetStream's "wrong last sequence"
// answer to an expected-last-sequence publish (10071, or 10164 on a
// replicated stream).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
