package httpapi

// The FG's reads of the subject index (issue 22), for the audit's
// recomputation of the last index head over HTTP (verifier/audit's
// HTTPSource): the stored lists, paged, and the map keys of the (child,
// party) pairs the audit found in the envelopes, with their VRF proofs.
// FG only: the lists say which leaves concern one child at one party, as
// the envelopes the FG already reads do.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// indexLists serves GET /v1/index/lists?after=<map key>&limit=N.
func (s *Server) indexLists(w http.ResponseWriter, r *http.Request) {
	var after *vsi.MapKey
	if a := r.URL.Query().Get("after"); a != "" {
		var k vsi.MapKey
		if b, err := hex.DecodeString(a); err != nil || len(b) != len(k) {
			s.fail(w, r, http.StatusBadRequest, "bad_parameter", "after must be a map key: 64 hex characters")
			return
		} else {
			copy(k[:], b)
		}
		after = &k
	}
	limit, hasLimit, err := parseUint(r, "limit")
	if err != nil || (hasLimit && limit == 0) {
		s.fail(w, r, http.StatusBadRequest, "bad_parameter", "limit must be a number of at least 1")
		return
	}
	if !hasLimit || limit > 1000 {
		limit = 1000
	}
	lists, next, err := s.l.IndexListPage(r.Context(), after, int(limit))
	if errors.Is(err, ledger.ErrIndexOff) {
		s.fail(w, r, http.StatusNotFound, "index_off", "this ledger keeps no subject index")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	resp := verifier.IndexListsResponse{Lists: lists}
	if resp.Lists == nil {
		resp.Lists = []verifier.IndexListEntry{}
	}
	if next != nil {
		resp.Next = hex.EncodeToString(next[:])
	}
	writeJSON(w, resp)
}

// indexMapKeys serves POST /v1/index/map-keys.
func (s *Server) indexMapKeys(w http.ResponseWriter, r *http.Request) {
	var req verifier.IndexMapKeysRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Pairs) > verifier.MaxIndexMapKeys {
		s.fail(w, r, http.StatusBadRequest, "bad_request", "body must be JSON {pairs: [{id_type, key_id, pseudonym, party}]}, at most 1000 pairs")
		return
	}
	pairs := make([]audit.IndexPair, len(req.Pairs))
	for i, p := range req.Pairs {
		ik, err := vsi.DeriveIndexKey(p.IDType, p.KeyID, p.Pseudonym)
		if err == nil {
			_, err = vsi.MapKeyInput(ik, p.Party)
		}
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "bad_request", "a pair is not an identifier type, key id, pseudonym and party id")
			return
		}
		pairs[i] = audit.IndexPair{IDType: p.IDType, KeyID: p.KeyID, Pseudonym: p.Pseudonym, Party: p.Party}
	}
	mks, err := s.l.IndexMapKeys(r.Context(), pairs)
	if errors.Is(err, ledger.ErrIndexOff) {
		s.fail(w, r, http.StatusNotFound, "index_off", "this ledger keeps no subject index")
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	resp := verifier.IndexMapKeysResponse{MapKeys: make([]verifier.IndexMapKeyResponse, len(mks))}
	for i, m := range mks {
		resp.MapKeys[i] = verifier.IndexMapKeyResponse{MapKey: hex.EncodeToString(m.MapKey[:]), VRFProof: m.VRFProof}
	}
	writeJSON(w, resp)
}
