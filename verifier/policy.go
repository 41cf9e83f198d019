package verifier

// Evaluating a witness policy (events.WitnessPolicy, the covenant's
// tlog-policy) against a checkpoint: which of the policy's witnesses
// cosigned it (timestamped cosignature/v1 lines that verify under the
// witness's key), at what time each says it did, and whether that meets
// the quorum. The log's own signature is OpenCheckpoint's business; this
// runs on a checkpoint already opened with it.

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/events"
)

var (
	// ErrQuorumNotMet means the checkpoint's valid witness cosignatures do
	// not meet the policy's quorum.
	ErrQuorumNotMet = errors.New("verifier: witness quorum not met")
	// ErrBadWitnessCosignature means a signature line by a policy witness's
	// key does not verify, carries no timestamp, or is given twice: the
	// checkpoint is refused rather than read as merely uncosigned.
	ErrBadWitnessCosignature = errors.New("verifier: bad witness cosignature")
)

// WitnessCosignature is one policy witness's valid cosignature.
type WitnessCosignature struct {
	// Witness is the witness's name in the policy.
	Witness string
	// Time is the time the witness put in its cosignature (UTC, seconds).
	Time time.Time
}

// PolicyResult is what CheckWitnessPolicy found.
type PolicyResult struct {
	// Cosigned lists the policy's witnesses whose cosignature verifies, in
	// policy order.
	Cosigned []WitnessCosignature
	// Met is whether they meet the quorum.
	Met bool
}

// CheckWitnessPolicy evaluates policy against cp (a checkpoint opened with
// OpenCheckpoint). Signature lines by keys outside the policy are ignored.
// A line by a policy witness's key that does not verify, has no timestamp,
// or repeats that witness is refused with ErrBadWitnessCosignature. When
// the quorum is not met it returns the result and ErrQuorumNotMet, so the
// caller can say who did cosign.
func CheckWitnessPolicy(cp *Checkpoint, policy *events.WitnessPolicy) (*PolicyResult, error) {
	if cp == nil || policy == nil {
		return nil, errors.New("verifier: CheckWitnessPolicy needs a checkpoint and a policy")
	}
	verifiers := make([]note.Verifier, len(policy.Witnesses))
	for i, w := range policy.Witnesses {
		verifiers[i] = w.Verifier
	}
	split := bytes.LastIndex(cp.Note, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: no signature block", ErrMalformedCheckpoint)
	}
	if err := refuseRepeatedWitnessLines(cp.Note[split+2:], verifiers); err != nil {
		return nil, err
	}
	res := &PolicyResult{}
	n, err := note.Open(cp.Note, note.VerifierList(verifiers...))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		// No policy witness signed: an empty result.
	case errors.As(err, &invalid):
		return nil, fmt.Errorf("%w: %w", ErrBadWitnessCosignature, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	default:
		signed := map[string]time.Time{}
		for _, sig := range n.Sigs {
			t, err := fnote.CoSigV1Timestamp(sig)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrBadWitnessCosignature, sig.Name, err)
			}
			signed[fmt.Sprintf("%s+%08x", sig.Name, sig.Hash)] = t.UTC()
		}
		for _, w := range policy.Witnesses {
			if t, ok := signed[NoteKeyFingerprint(w.Verifier)]; ok {
				res.Cosigned = append(res.Cosigned, WitnessCosignature{Witness: w.Name, Time: t})
			}
		}
	}
	res.Met = policy.Met(func(name string) bool {
		for _, c := range res.Cosigned {
			if c.Witness == name {
				return true
			}
		}
		return false
	})
	if !res.Met {
		return res, fmt.Errorf("%w: %d of the policy's %d witnesses cosigned, quorum %s", ErrQuorumNotMet, len(res.Cosigned), len(policy.Witnesses), policy.Quorum)
	}
	return res, nil
}

// refuseRepeatedWitnessLines refuses two signature lines by one policy
// key: note.Open would verify the first and skip the rest, leaving two
// times for one witness.
func refuseRepeatedWitnessLines(sigBlock []byte, verifiers []note.Verifier) error {
	seen := map[string]bool{}
	for _, k := range signatureLineKeys(sigBlock) {
		for _, v := range verifiers {
			if v.Name() != k.name || v.KeyHash() != k.hash {
				continue
			}
			id := NoteKeyFingerprint(v)
			if seen[id] {
				return fmt.Errorf("%w: more than one line by %s", ErrBadWitnessCosignature, id)
			}
			seen[id] = true
		}
	}
	return nil
}
