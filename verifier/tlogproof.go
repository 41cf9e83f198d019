package verifier

// The C2SP tlog-proof@v1 format (c2sp.org/tlog-proof): an offline proof that
// one entry is in the log, for tools not written here. It is the header
// line, an optional "extra" line, "index N", the inclusion proof's hashes
// one per line, a blank line and the checkpoint verbatim, with the
// witnesses' cosignatures when the log has a policy. Spoor's leaf is its
// leaf record, so the extra data is the leaf record's bytes: with them a
// tool computes the leaf hash (SHA-256 of 0x00 || record, RFC 6962) and
// checks the proof against the checkpoint under the covenant's policy;
// the record's body hash is the SHA-256 of the event's envelope, which
// binds the proof to the event. The extra data is not authenticated by
// the format itself: VerifyTlogProof trusts it only because its hash is
// the proven leaf.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spoor-ledger/spoor/events"
)

// TlogProofHeader is the first line of a tlog-proof@v1 file.
const TlogProofHeader = "c2sp.org/tlog-proof@v1"

// ErrTlogProof is wrapped by every error of ParseTlogProof and
// VerifyTlogProof about the proof itself.
var ErrTlogProof = errors.New("verifier: invalid tlog-proof")

// maxTlogProofBytes bounds a proof file: 64 hashes, a leaf record and a
// checkpoint with a few dozen cosignatures fit in far less.
const maxTlogProofBytes = 64 << 10

// TlogProof is a parsed tlog-proof@v1 file.
type TlogProof struct {
	// Extra is the opaque extra data (Spoor: the leaf record); nil when
	// the file has none.
	Extra []byte
	Index uint64
	// Proof is the inclusion proof, from the leaf's sibling up.
	Proof [][]byte
	// Checkpoint is the signed checkpoint, verbatim.
	Checkpoint []byte
}

// Marshal returns the file's bytes.
func (p *TlogProof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(TlogProofHeader + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for _, h := range p.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseTlogProof parses a tlog-proof@v1 file strictly: the header, at most
// one extra line, an index without leading zeros, 32-byte hashes (at most
// 63: a tree of 2^63 leaves), a blank line and a checkpoint, which is not
// opened here (VerifyTlogProof does).
func ParseTlogProof(data []byte) (*TlogProof, error) {
	bad := func(format string, args ...any) (*TlogProof, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrTlogProof}, args...)...)
	}
	if len(data) > maxTlogProofBytes {
		return bad("%d bytes, at most %d", len(data), maxTlogProofBytes)
	}
	head, checkpoint, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return bad("no blank line before the checkpoint")
	}
	if len(checkpoint) == 0 {
		return bad("no checkpoint")
	}
	if strings.ContainsRune(string(head), '\r') {
		// The base64 decoder skips \r even in Strict mode: refuse it, or
		// two files would parse to one proof.
		return bad("a carriage return before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != TlogProofHeader {
		return bad("the first line is not %q", TlogProofHeader)
	}
	lines = lines[1:]
	p := &TlogProof{Checkpoint: checkpoint}
	if len(lines) > 0 {
		if rest, ok := strings.CutPrefix(lines[0], "extra "); ok {
			extra, err := base64.StdEncoding.Strict().DecodeString(rest)
			if err != nil || len(extra) == 0 {
				return bad("the extra line is not base64")
			}
			p.Extra = extra
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return bad("no index line")
	}
	idx, ok := strings.CutPrefix(lines[0], "index ")
	if !ok || idx == "" || (len(idx) > 1 && idx[0] == '0') || strings.TrimLeft(idx, "0123456789") != "" {
		return bad("the index line is not \"index N\"")
	}
	n, err := strconv.ParseUint(idx, 10, 63)
	if err != nil {
		return bad("the index: %v", err)
	}
	p.Index = n
	if len(lines)-1 > 63 {
		return bad("%d proof hashes, at most 63", len(lines)-1)
	}
	for i, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 {
			return bad("proof line %d is not a base64 SHA-256 hash", i+1)
		}
		p.Proof = append(p.Proof, h)
	}
	return p, nil
}

// VerifiedTlogProof is what a tlog-proof showed.
type VerifiedTlogProof struct {
	Checkpoint *Checkpoint
	// LeafRecord is the proven leaf record (from the extra data).
	LeafRecord *LeafRecord
	// Witnesses is the policy's verdict; nil when no policy applies.
	Witnesses *PolicyResult
}

// VerifyTlogProof checks p: its checkpoint opens with the log's keys, the
// leaf record in its extra data is at its index in that tree, and, when
// policy is given, the checkpoint meets the policy's quorum
// (ErrQuorumNotMet otherwise). The policy is the covenant's, which the
// caller took from a covenant chain it trusts (or its own).
func VerifyTlogProof(p *TlogProof, keys *LogKeys, policy *events.WitnessPolicy) (*VerifiedTlogProof, error) {
	if p.Extra == nil {
		return nil, fmt.Errorf("%w: no extra data: a Spoor proof carries the leaf record there", ErrTlogProof)
	}
	rec, err := ParseLeafRecord(p.Extra)
	if err != nil {
		return nil, fmt.Errorf("%w: the extra data is not a leaf record: %w", ErrTlogProof, err)
	}
	cp, err := OpenCheckpoint(p.Checkpoint, keys)
	if err != nil {
		return nil, err
	}
	if p.Index >= cp.Size {
		return nil, fmt.Errorf("%w: index %d is not in a tree of size %d", ErrInclusion, p.Index, cp.Size)
	}
	if err := VerifyInclusion(p.Index, cp.Size, LeafHash(p.Extra), p.Proof, cp.Hash); err != nil {
		return nil, err
	}
	v := &VerifiedTlogProof{Checkpoint: cp, LeafRecord: rec}
	if policy != nil {
		res, err := CheckWitnessPolicy(cp, policy)
		if err != nil {
			return nil, err
		}
		v.Witnesses = res
	}
	return v, nil
}
