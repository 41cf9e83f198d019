package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// maxCheckpointPage is the most checkpoints one page of /v1/checkpoints
// holds: a signed checkpoint is about 300 bytes.
const maxCheckpointPage = 1000

// CheckpointEntry and CheckpointsResponse are an element and a page of
// /v1/checkpoints (the verifier's format, which audit.HTTPSource reads).
type (
	CheckpointEntry     = verifier.CheckpointEntry
	CheckpointsResponse = verifier.CheckpointsResponse
)

// checkpoints pages through every kept checkpoint, oldest first, for the
// FG's audit, which compares each with the tree and with the one before
// it. GET /v1/checkpoints?from=SEQ&limit=N (role fg).
func (s *Server) checkpoints(w http.ResponseWriter, r *http.Request) {
	s.checkpointList(w, r, s.l.CheckpointPage)
}

// witnessedCheckpoints pages through every stored witnessed checkpoint
// (the kept checkpoint of that number with the cosignature lines of the
// witnesses that met the policy), oldest first, for the FG's audit of the
// witness policy and of the entries' times.
// GET /v1/witnessed-checkpoints?from=SEQ&limit=N (role fg).
func (s *Server) witnessedCheckpoints(w http.ResponseWriter, r *http.Request) {
	s.checkpointList(w, r, s.l.WitnessedCheckpointPage)
}

// checkpointList serves one page of a list of checkpoints read by page.
func (s *Server) checkpointList(w http.ResponseWriter, r *http.Request,
	page func(ctx context.Context, from uint64, limit int) ([]audit.StoredCheckpoint, uint64, error)) {
	from, _, err1 := parseUint(r, "from")
	limit, hasLimit, err2 := parseUint(r, "limit")
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", err.Error())
		return
	}
	if !hasLimit || limit > maxCheckpointPage {
		limit = maxCheckpointPage
	}
	if limit == 0 {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "limit must be at least 1")
		return
	}
	cps, next, err := page(r.Context(), from, int(limit))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	resp := CheckpointsResponse{Checkpoints: make([]CheckpointEntry, 0, len(cps))}
	for _, cp := range cps {
		resp.Checkpoints = append(resp.Checkpoints, CheckpointEntry{Seq: cp.Seq, Note: string(cp.Note)})
	}
	if next != 0 {
		resp.Next = &next
	}
	writeJSON(w, resp)
}
