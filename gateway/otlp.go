package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/parallel"
)

// This file is the OTLP/HTTP intake (POST /v1/traces): an organisation's
// OpenTelemetry SDK or collector exports the spans of its Logboek
// Dataverwerkingen, and each span that claims to be a disclosure (ldv.go)
// is recorded as one, through the same steps as POST /v1/disclosures
// (pseudonymised, an id derived from the span, signed with the client's
// party's key, checked as ingest would, published, its receipt awaited).
// Unlike POST /v1/disclosures a batch is not all or nothing: OTLP answers
// with partial_success, so the spans that map are recorded and the others
// are refused with their reasons. LDV requires the Logboek to acknowledge
// every record, so the answer is sent only once each span is committed or
// refused; when the ledger has not committed every span within ReceiptWait
// the answer is 503 with Retry-After, which an exporter retries, and the
// retry lands on the same events (the id comes from the trace and span
// ids).

// The media types of OTLP/HTTP.
const (
	mediaProtobuf = "application/x-protobuf"
)

// maxRefusalsNamed bounds how many refused spans error_message names.
const maxRefusalsNamed = 20

// otlpSpan is one span of a request on its way through the intake.
type otlpSpan struct {
	n      int // the span's place in the request, from 1
	spanID string
	pr     *prepared
	refuse *SpanError
}

// postTraces is POST /v1/traces.
func (g *Gateway) postTraces(w http.ResponseWriter, r *http.Request, c Client) {
	party := g.parties[c.Party]
	log := g.log.With("client", c.Name, "party", c.Party)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	jsonBody := mt == mediaJSON
	if err != nil || (mt != mediaProtobuf && !jsonBody) {
		g.metrics.problem(ProblemUnsupportedMediaType)
		otlpStatus(w, jsonBody, http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type must be application/x-protobuf or application/json (OTLP/HTTP)")
		return
	}
	body, err := readOTLPBody(w, r, g.cfg.MaxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			otlpStatus(w, jsonBody, http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf("the body may be at most %d bytes; export smaller batches", g.cfg.MaxBody))
			return
		}
		otlpStatus(w, jsonBody, http.StatusBadRequest, codes.InvalidArgument, "couldn't read the body: "+err.Error())
		return
	}
	req, err := DecodeTraces(body, jsonBody)
	if err != nil {
		g.metrics.problem(ProblemMalformedJSON)
		log.Info("refused", "problem", "malformed_otlp")
		// The decoder's words may quote the body, which may hold a number.
		otlpStatus(w, jsonBody, http.StatusBadRequest, codes.InvalidArgument, "the body is no ExportTraceServiceRequest in "+map[bool]string{true: "OTLP/JSON", false: "protobuf"}[jsonBody])
		return
	}
	spans, ignored := g.prepareSpans(party, c, req)
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.ReceiptWait)
	defer cancel()
	var ps []*prepared
	for _, s := range spans {
		if s.pr != nil {
			ps = append(ps, s.pr)
		}
	}
	todo, _ := g.lookup(ctx, party, c, ps)
	if err := g.publishAndWait(ctx, log, party, todo); err != nil {
		g.metrics.problem(ProblemBusUnavailable)
		w.Header().Set("Retry-After", "1")
		otlpStatus(w, jsonBody, http.StatusServiceUnavailable, codes.Unavailable, "the bus did not acknowledge every span; retry the export: each span is recorded at most once")
		return
	}
	counts := map[natsbus.ReceiptStatus]int{}
	for _, s := range spans {
		if s.pr == nil {
			continue
		}
		res := s.pr.result
		counts[res.Status]++
		switch res.Status {
		case natsbus.ReceiptPending:
		case natsbus.ReceiptRejected:
			s.refuse = &SpanError{string(res.Reason), "refused by the ledger"}
		case natsbus.ReceiptIDConflict:
			s.refuse = &SpanError{ProblemIdempotencyConflict, fmt.Sprintf("the ledger holds event %s of this trace and span id with another disclosure", res.EventID)}
		}
	}
	if counts[natsbus.ReceiptPending] > 0 {
		// LDV: no acknowledgement before the record is written.
		log.Info("answered", "spans", len(spans), "pending", counts[natsbus.ReceiptPending])
		w.Header().Set("Retry-After", "1")
		otlpStatus(w, jsonBody, http.StatusServiceUnavailable, codes.Unavailable,
			fmt.Sprintf("%d spans are not yet committed by the ledger; retry the export: each span is recorded at most once", counts[natsbus.ReceiptPending]))
		return
	}
	var refused []string
	reasons := map[string]int{}
	for _, s := range spans {
		if s.refuse == nil {
			continue
		}
		reasons[s.refuse.Code]++
		g.metrics.spansRefused.WithLabelValues(s.refuse.Code).Inc()
		if len(refused) < maxRefusalsNamed {
			refused = append(refused, fmt.Sprintf("span %d (span_id %s): %s", s.n, s.spanID, s.refuse.Error()))
		}
	}
	committed := counts[natsbus.ReceiptCommitted]
	g.metrics.spansCommitted.Add(float64(committed))
	resp := &coltracepb.ExportTraceServiceResponse{}
	nRefused := 0
	for _, n := range reasons {
		nRefused += n
	}
	if nRefused > 0 {
		msg := strings.Join(refused, "; ")
		if nRefused > len(refused) {
			msg += fmt.Sprintf("; and %d more", nRefused-len(refused))
		}
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: int64(nRefused), ErrorMessage: msg}
	}
	log.Info("answered", "spans", len(spans)+ignored, "committed", committed, "refused", nRefused, "ignored", ignored, "reasons", reasonList(reasons))
	writeOTLP(w, jsonBody, http.StatusOK, resp)
}

// prepareSpans classifies, maps, pseudonymises, signs and checks every span
// of req on every core; it returns the disclosure claims (each prepared or
// refused) in request order, and how many spans it ignored.
func (g *Gateway) prepareSpans(party *partyPublisher, c Client, req *coltracepb.ExportTraceServiceRequest) ([]*otlpSpan, int) {
	var all []*tracepb.Span
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			all = append(all, ss.GetSpans()...)
		}
	}
	cov := g.covenant()
	now := g.cfg.Now()
	out := make([]*otlpSpan, len(all))
	parallel.For(len(all), 0, 16, func(i int) {
		sp := all[i]
		switch ClassifySpan(sp) {
		case SpanNotLDV:
			g.metrics.spansIgnored.WithLabelValues("not_ldv").Inc()
			return
		case SpanNotDisclosure:
			g.metrics.spansIgnored.WithLabelValues("not_disclosure").Inc()
			return
		}
		s := &otlpSpan{n: i + 1, spanID: hex.EncodeToString(sp.GetSpanId())}
		if len(s.spanID) != 16 {
			s.spanID = "invalid"
		}
		out[i] = s
		in, se := MapSpan(sp)
		if se != nil {
			s.refuse = se
			return
		}
		id := events.KeyedEventID(party.key.SaltSecret, party.key.Party, in.IdempotencyKey())
		d, fes := in.Disclosure(s.n, party.key.Party, cov.Origin, id, g.cfg.SubjectKey, cov)
		if len(fes) == 0 {
			s.pr, fes = g.check(s.n, cov, party.key, d, now)
		}
		if len(fes) > 0 {
			s.pr = nil
			s.refuse = spanErrorOf(fes)
		}
	})
	var spans []*otlpSpan
	for _, s := range out {
		if s != nil {
			spans = append(spans, s)
		}
	}
	return spans, len(all) - len(spans)
}

// spanErrorOf words a span's FieldErrors (which never repeat a value) as
// one SpanError under the first one's code.
func spanErrorOf(fes []*FieldError) *SpanError {
	parts := make([]string, len(fes))
	for i, fe := range fes {
		parts[i] = fe.Detail
		if fe.Field != "" {
			parts[i] = fe.Field + " " + fe.Detail
		}
	}
	return &SpanError{Code: fes[0].Code, Detail: strings.Join(parts, "; ")}
}

// reasonList is the refusals' codes and counts for the log line.
func reasonList(reasons map[string]int) string {
	var parts []string
	for code, n := range reasons {
		parts = append(parts, code+"="+strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

// readOTLPBody reads the body, gunzipped if it says so, at most max bytes
// either way.
func readOTLPBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	var rd io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("bad gzip: %w", err)
		}
		defer zr.Close()
		rd = io.LimitReader(zr, max+1)
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	b, err := io.ReadAll(rd)
	if err == nil && int64(len(b)) > max {
		return nil, &http.MaxBytesError{Limit: max}
	}
	return b, err
}

// DecodeTraces decodes an OTLP/HTTP trace export request, protobuf or
// OTLP/JSON. OTLP/JSON differs from protobuf's canonical JSON in the ids:
// trace and span ids are hex, not base64; they are turned into base64
// before protojson reads the rest. Unknown fields are ignored, as OTLP
// asks of receivers.
func DecodeTraces(body []byte, isJSON bool) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if !isJSON {
		if err := proto.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("protobuf: %w", err)
		}
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if err := hexIDsToBase64(doc, 0); err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("OTLP/JSON: %w", err)
	}
	return req, nil
}

// otlpIDFields are the members of OTLP/JSON that hold hex ids.
var otlpIDFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// hexIDsToBase64 rewrites, in place, every id member of an OTLP/JSON
// document from hex to base64.
func hexIDsToBase64(v any, depth int) error {
	if depth > 64 {
		return errors.New("OTLP/JSON: nested too deeply")
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok && otlpIDFields[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("OTLP/JSON: %s must be hex", k)
				}
				t[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexIDsToBase64(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := hexIDsToBase64(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeOTLP writes an OTLP message in the request's encoding.
func writeOTLP(w http.ResponseWriter, isJSON bool, code int, m proto.Message) {
	var b []byte
	var err error
	if isJSON {
		w.Header().Set("Content-Type", mediaJSON)
		b, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", mediaProtobuf)
		b, err = proto.Marshal(m)
	}
	if err != nil {
		code, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// otlpStatus writes an OTLP/HTTP error: a google.rpc.Status in the
// request's encoding.
func otlpStatus(w http.ResponseWriter, isJSON bool, httpCode int, code codes.Code, msg string) {
	writeOTLP(w, isJSON, httpCode, &status.Status{Code: int32(code), Message: msg})
}
