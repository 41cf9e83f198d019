package httpapi

import (
	"errors"
	"net/http"

	"github.com/spoor-ledger/spoor/verifier"
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
	page, next, err := s.l.CheckpointPage(r.Context(), from, int(limit))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	resp := CheckpointsResponse{Checkpoints: make([]CheckpointEntry, 0, len(page))}
	for _, cp := range page {
		resp.Checkpoints = append(resp.Checkpoints, CheckpointEntry{Seq: cp.Seq, Note: string(cp.Note)})
	}
	if next != 0 {
		resp.Next = &next
	}
	writeJSON(w, resp)
}
