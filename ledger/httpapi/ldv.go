package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// The LDV read API (docs/ldv.md): POST /processing-activities answers the
// FG (every disclosure) and a desk user (the disclosures of the parties in
// the desk's scope) with disclosures as Logboek Dataverwerkingen processing
// records, found by trace id, processing activity or subject pseudonym, so
// that a Spoor record links to the organisation's own LDV log through its
// trace and span ids. Its errors are RFC 9457 problems, as the extension's
// OpenAPI file asks.

var (
	traceIDRE   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	pseudonymRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// possibleNumberRE is what a BSN or onderwijsnummer sent as the subject
	// would look like: it is refused without being repeated.
	possibleNumberRE = regexp.MustCompile(`^\s*[0-9]{8,10}\s*$`)
)

// maxLDVQueryBody bounds the request body of the read API.
const maxLDVQueryBody = 16 << 10

// ldvProblem writes an RFC 9457 problem.
func ldvProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://spoor.example/problems/" + code, "title": code, "status": status, "detail": detail,
	})
}

// processingActivities is POST /processing-activities.
func (s *Server) processingActivities(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("API-Version", verifier.LDVAPIVersion)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLDVQueryBody))
	if err != nil {
		ldvProblem(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("the body must be a JSON object of at most %d bytes", maxLDVQueryBody))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req verifier.LDVQueryRequest
	if err := dec.Decode(&req); err != nil || dec.More() {
		// A misspelt filter must not widen the answer; the decoder's words
		// may quote the body, so they are not repeated.
		ldvProblem(w, http.StatusBadRequest, "bad_request", "the body must be one JSON object with only traceId, dpl.core.processing_activity_id, dpl.core.data_subject_id, dpl.core.data_subject_id_type, startTime, endTime, limit and cursor")
		return
	}
	q := ledger.LDVQuery{TraceID: req.TraceID, ProcessingActivity: req.ProcessingActivityID, Pseudonym: req.DataSubjectID, Limit: req.Limit}
	switch {
	case req.TraceID == "" && req.ProcessingActivityID == "" && req.DataSubjectID == "":
		ldvProblem(w, http.StatusBadRequest, "no_filter", "give at least one of traceId, dpl.core.processing_activity_id and dpl.core.data_subject_id (LDV extension lezen)")
		return
	case req.TraceID != "" && !traceIDRE.MatchString(req.TraceID):
		ldvProblem(w, http.StatusBadRequest, "bad_trace_id", "traceId is the W3C trace id: 32 lower-case hex characters, without dashes (docs/ldv.md, deviation 1)")
		return
	case possibleNumberRE.MatchString(req.DataSubjectID):
		ldvProblem(w, http.StatusBadRequest, "bsn_refused", "dpl.core.data_subject_id is Spoor's pseudonym (spoor pseudonym), never a BSN or onderwijsnummer; the number was not kept")
		return
	case req.DataSubjectID != "" && !pseudonymRE.MatchString(req.DataSubjectID):
		ldvProblem(w, http.StatusBadRequest, "bad_subject", "dpl.core.data_subject_id is Spoor's pseudonym: 64 lower-case hex characters")
		return
	case req.DataSubjectIDType != "" && req.DataSubjectIDType != verifier.LDVSubjectType:
		ldvProblem(w, http.StatusBadRequest, "bad_subject", "dpl.core.data_subject_id_type, when given, is "+verifier.LDVSubjectType)
		return
	case req.Limit < 0 || req.Limit > ledger.MaxLDVLimit:
		ldvProblem(w, http.StatusBadRequest, "bad_limit", fmt.Sprintf("limit is 1 to %d (default %d)", ledger.MaxLDVLimit, ledger.DefaultLDVLimit))
		return
	}
	for _, t := range []struct {
		name, v string
		into    *time.Time
	}{{"startTime", req.StartTime, &q.From}, {"endTime", req.EndTime, &q.To}} {
		if t.v == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			ldvProblem(w, http.StatusBadRequest, "bad_time", t.name+" is an RFC 3339 time (docs/ldv.md, deviation 4)")
			return
		}
		*t.into = tm
	}
	if req.Cursor == "" {
		// The Link header's form: the same body, the cursor in the query.
		req.Cursor = r.URL.Query().Get("cursor")
	}
	if req.Cursor != "" {
		n, err := strconv.ParseUint(req.Cursor, 10, 64)
		if err != nil {
			ldvProblem(w, http.StatusBadRequest, "bad_cursor", "cursor is the nextCursor of the previous page")
			return
		}
		q.Start = n
	}
	c := callerOf(r)
	if c.Role == RoleDesk {
		// Fail closed: the guard gave every desk user its scope, and an
		// empty one answers nothing.
		q.Disclosers = append([]string{}, c.Scope.Parties...)
	}
	recs, next, more, err := s.l.ProcessingActivities(r.Context(), q)
	if errors.Is(err, ledger.ErrNoLDVFilter) {
		ldvProblem(w, http.StatusBadRequest, "no_filter", err.Error())
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	sc, _ := s.l.Covenant()
	resp := verifier.LDVQueryResponse{
		Metadata:             verifier.LDVMetadata{LogbookID: s.l.Origin(), OrganizationName: sc.Covenant.Name},
		ProcessingActivities: make([]verifier.LDVProcessingActivity, 0, len(recs)),
	}
	for _, rec := range recs {
		resp.ProcessingActivities = append(resp.ProcessingActivities, ldvRecord(rec))
	}
	if more {
		resp.NextCursor = strconv.FormatUint(next, 10)
		w.Header().Set("Link", fmt.Sprintf(`</processing-activities?cursor=%d>; rel="next"`, next))
	}
	writeJSON(w, resp)
}

// ldvRecord is one disclosure as an LDV processing record (docs/ldv.md).
func ldvRecord(rec ledger.LDVRecord) verifier.LDVProcessingActivity {
	d := rec.Disclosure
	at := d.OccurredAt.UTC().Format(time.RFC3339Nano)
	attrs := map[string]any{
		"dpl.core.processing_activity_id": d.ProcessingActivity,
		"dpl.core.data_subject_id":        d.Subject.Pseudonym,
		"dpl.core.data_subject_id_type":   verifier.LDVSubjectType,
		"dpl.spoor.subject.id_type":       d.Subject.IDType,
		"dpl.spoor.subject.key_id":        d.Subject.KeyID,
		"dpl.spoor.discloser":             d.Discloser,
		"dpl.spoor.recipients":            d.Recipients,
		"dpl.spoor.categories":            d.Categories,
		"dpl.spoor.purpose":               d.Purpose,
		"dpl.spoor.legal_basis.ground":    d.LegalBasis.Ground,
		"dpl.spoor.subject_age_band":      d.SubjectAgeBand,
		"dpl.spoor.channel":               d.Channel,
		"dpl.spoor.event_id":              d.ID,
		"dpl.spoor.leaf_index":            rec.Index,
		"dpl.spoor.envelope_sha256":       hex.EncodeToString(rec.EnvelopeSHA256[:]),
	}
	if d.LegalBasis.Exception != "" {
		attrs["dpl.spoor.legal_basis.exception"] = d.LegalBasis.Exception
	}
	if d.LegalBasis.Statute != "" {
		attrs["dpl.spoor.legal_basis.statute"] = d.LegalBasis.Statute
	}
	if d.CaseRef != "" {
		attrs["dpl.spoor.case_ref"] = d.CaseRef
	}
	if d.Corrects != "" {
		attrs["dpl.spoor.corrects"] = d.Corrects
	}
	return verifier.LDVProcessingActivity{
		TraceID: d.TraceID, SpanID: d.SpanID, Status: "Unset", Name: "spoor.disclosure",
		StartTime: at, EndTime: at, Attributes: attrs,
	}
}
