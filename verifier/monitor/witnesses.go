package monitor

// This file is the monitor's watch on the witnesses (issue 20, "the
// monitor reads the witnesses' monitoring endpoints"). A witness cosigns
// whatever checkpoint signed by the log key extends what it holds, so
// someone holding the log key can get a witness to cosign a tree the log
// never shows: a split view. Each witness serves the newest checkpoint it
// cosigned at GET <url>/<hex SHA-256 of origin>/checkpoint; after each
// verified checkpoint of the log, the monitor reads it there and proves,
// from the log's own tiles, that the log's tree extends it:
//
//	witness checkpoint (size w)  --OpenLogSignedCheckpoint (log key)-->
//	  w <= log's verified size: consistency proof w -> log from the tiles,
//	                            verified against the witness's root
//	  w >  log's verified size: kept (in memory) and proved once the log's
//	                            verified checkpoint reaches w
//	--> a WitnessFork alarm when the proof fails: the witness holds a tree
//	    the log does not extend.
//
// A witness that is down, holds nothing of this log (404) or serves a
// checkpoint the log key did not sign is not the log's misbehaviour: that
// is logged and counted as an error, never an alarm.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spoor-ledger/spoor/verifier"
)

// WitnessEndpoint is a witness whose monitoring endpoint the monitor reads.
type WitnessEndpoint struct {
	// Name names the witness in alarms and logs (the policy's name, or the
	// URL).
	Name string
	// URL is the witness's prefix: the monitoring endpoint is
	// URL/<hex SHA-256 of origin>/checkpoint.
	URL string
}

// maxWitnessCheckpoint bounds a witness's answer: a checkpoint with a few
// signature lines.
const maxWitnessCheckpoint = verifier.MaxCheckpointSize

// witnessCheckpointPath is the monitoring endpoint's path below a
// witness's prefix for the log with origin.
func witnessCheckpointPath(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return "/" + hex.EncodeToString(h[:]) + "/checkpoint"
}

// checkWitnesses reads every witness's checkpoint and proves the log's
// verified checkpoint cp consistent with it (or keeps it for later when it
// is larger). It returns the first *Alarm; a witness that cannot be read
// is logged and skipped.
func (mon *Monitor) checkWitnesses(ctx context.Context, cp *verifier.Checkpoint) error {
	var first error
	for _, w := range mon.witnesses {
		err := mon.checkWitness(ctx, w, cp)
		var alarm *Alarm
		switch {
		case errors.As(err, &alarm):
			if first == nil {
				first = alarm
			}
		case err != nil:
			mon.m.witnessErrors.Inc()
			mon.log.Warn("couldn't check a witness's checkpoint", "witness", w.Name, "err", err)
		}
	}
	return first
}

// checkWitness checks one witness against cp.
func (mon *Monitor) checkWitness(ctx context.Context, w WitnessEndpoint, cp *verifier.Checkpoint) error {
	held, err := mon.fetchWitness(ctx, w)
	if err != nil {
		return err
	}
	if held != nil {
		if held.Size > cp.Size {
			if p := mon.pending[w.Name]; p == nil || p.Size < held.Size {
				mon.log.Info("a witness holds a larger tree than the log's verified checkpoint; it is checked once the log reaches it",
					"witness", w.Name, "witness_size", held.Size, "tree_size", cp.Size)
			}
			// The newest is enough: the witness checked that it extends
			// every one it held before.
			mon.pending[w.Name] = held
		} else if err := mon.proveWitness(ctx, w, held, cp); err != nil {
			return err
		}
	}
	if p := mon.pending[w.Name]; p != nil && p.Size <= cp.Size {
		if err := mon.proveWitness(ctx, w, p, cp); err != nil {
			return err
		}
		delete(mon.pending, w.Name)
	}
	return nil
}

// proveWitness proves that cp's tree extends the witness's checkpoint held
// (held.Size <= cp.Size) from the log's tiles.
func (mon *Monitor) proveWitness(ctx context.Context, w WitnessEndpoint, held, cp *verifier.Checkpoint) error {
	if ok := mon.proven[w.Name]; ok.size == held.Size && ok.root == held.Hash && ok.logSize == cp.Size {
		return nil // proved already against this very checkpoint
	}
	var err error
	if held.Size == cp.Size {
		if held.Hash != cp.Hash {
			err = fmt.Errorf("the same size with root %s", shortRoot(cp.Hash))
		}
	} else {
		var proof [][]byte
		proof, err = mon.client.ProveConsistency(ctx, held.Size, cp.Tree())
		if err != nil {
			if strings.Contains(err.Error(), "inconsistent tile") {
				return &Alarm{Kind: BadTiles, Detail: fmt.Sprintf("the tiles served do not match the log's own checkpoint of size %d: %v", cp.Size, err)}
			}
			return fmt.Errorf("couldn't compute the consistency proof from the tiles: %w", err)
		}
		err = verifier.VerifyConsistency(held.Size, cp.Size, held.Hash, cp.Hash, proof)
	}
	if err != nil {
		return &Alarm{Kind: WitnessFork, Witness: w.Name, Detail: fmt.Sprintf(
			"witness %s holds a checkpoint signed by the log key, size %d root %s, that the log's tree of size %d (root %s) does not extend: %v",
			w.Name, held.Size, shortRoot(held.Hash), cp.Size, shortRoot(cp.Hash), err)}
	}
	mon.proven[w.Name] = provenWitness{size: held.Size, root: held.Hash, logSize: cp.Size}
	return nil
}

// provenWitness remembers the last witness checkpoint proved, and against
// which size of the log, so that an unchanged pair is not proved again.
type provenWitness struct {
	size, logSize uint64
	root          [32]byte
}

// fetchWitness reads the checkpoint a witness holds for the log: nil when
// it holds none (404).
func (mon *Monitor) fetchWitness(ctx context.Context, w WitnessEndpoint) (*verifier.Checkpoint, error) {
	u := strings.TrimRight(w.URL, "/") + witnessCheckpointPath(mon.client.Keys.Log.Name())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	hc := mon.client.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil
	default:
		return nil, fmt.Errorf("witness %s: GET %s: %s", w.Name, u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessCheckpoint+1))
	if err != nil {
		return nil, fmt.Errorf("witness %s: reading the checkpoint: %w", w.Name, err)
	}
	cp, err := verifier.OpenLogSignedCheckpoint(b, mon.client.Keys.Log)
	if err != nil {
		return nil, fmt.Errorf("witness %s serves a checkpoint that is not this log's (not the log's misbehaviour): %w", w.Name, err)
	}
	return cp, nil
}
