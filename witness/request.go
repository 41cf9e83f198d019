package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// This file is the wire format of a C2SP tlog-witness add-checkpoint
// request, apart from the witness that acts on it (as age keeps its header
// format apart from age.go): parse and marshal, bounded and fuzzed.
//
//	old <size>\n
//	<base64 of a 32-byte consistency proof hash>\n   (0 to 63 lines)
//	\n
//	<the checkpoint: a signed note>

// Limits of a request, from the specification.
const (
	// MaxRequestBytes is the largest request body the witness reads; a
	// larger one is answered 413.
	MaxRequestBytes = 16 << 10
	// MaxProofLines is the most consistency proof hashes a request may
	// carry (a proof between two trees of up to 2^63 leaves needs fewer).
	MaxProofLines = 63
)

// Errors of the request format: both are answered 400.
var (
	// ErrMalformedRequest: the body is not old line, proof lines, blank
	// line and checkpoint.
	ErrMalformedRequest = errors.New("witness: malformed add-checkpoint request")
	// ErrTooManyProofLines: more than MaxProofLines proof lines.
	ErrTooManyProofLines = errors.New("witness: more than 63 consistency proof lines")
)

// AddCheckpointRequest is one add-checkpoint request.
type AddCheckpointRequest struct {
	// OldSize is the size of the checkpoint the client believes the
	// witness cosigned last for this log (0 if none).
	OldSize uint64
	// Proof proves that the tree of OldSize is a prefix of the
	// checkpoint's tree; empty when OldSize is 0 or equals its size.
	Proof [][]byte
	// Checkpoint is the signed note to cosign, as sent.
	Checkpoint []byte
}

// ParseAddCheckpoint parses a request body strictly: "old " and a decimal
// size without leading zeros, each proof hash in standard padded base64 of
// exactly 32 bytes, an empty line, then a non-empty checkpoint.
func ParseAddCheckpoint(body []byte) (*AddCheckpointRequest, error) {
	if len(body) > MaxRequestBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformedRequest, MaxRequestBytes)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no old size line", ErrMalformedRequest)
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w: the first line is not \"old <size>\"", ErrMalformedRequest)
	}
	oldSize, err := parseSize(num)
	if err != nil {
		return nil, err
	}
	req := &AddCheckpointRequest{OldSize: oldSize, Proof: [][]byte{}}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformedRequest)
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == MaxProofLines {
			return nil, ErrTooManyProofLines
		}
		// The decoder skips \r and \n even in Strict mode: refuse them, or
		// two byte strings would parse to one request.
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != 32 || bytes.ContainsAny(line, "\r\n") {
			return nil, fmt.Errorf("%w: proof line %d is not a 32-byte hash in standard base64", ErrMalformedRequest, len(req.Proof)+1)
		}
		req.Proof = append(req.Proof, h)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint", ErrMalformedRequest)
	}
	req.Checkpoint = rest
	return req, nil
}

// parseSize parses a decimal tree size without sign or leading zeros.
func parseSize(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("%w: the size is not a decimal number without leading zeros", ErrMalformedRequest)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: the size is not a decimal number", ErrMalformedRequest)
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: the size is out of range", ErrMalformedRequest)
	}
	return n, nil
}

// Marshal returns the request body.
func (r *AddCheckpointRequest) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}
