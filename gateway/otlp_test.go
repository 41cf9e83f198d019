package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
	"github.com/spoor-ledger/spoor/verifier"
)

// ldvDisclosure is the attributes of a valid LDV span of a disclosure by
// partyA about bsn, with Spoor's extension; edit changes them first
// (a nil value deletes).
func ldvDisclosure(edit map[string]attribute.Value) []attribute.KeyValue {
	m := map[string]attribute.Value{
		gateway.AttrProcessingActivity:  attribute.StringValue("leerplicht-verzuimmelding"),
		gateway.AttrSubjectIDType:       attribute.StringValue("BSN"),
		gateway.AttrSubjectID:           attribute.StringValue(bsn),
		"dpl.spoor.recipients":          attribute.StringSliceValue([]string{partyB}),
		"dpl.spoor.categories":          attribute.StringSliceValue([]string{"identificatie", "onderwijsgegevens"}),
		"dpl.spoor.purpose":             attribute.StringValue("verzuim-en-leerplicht"),
		"dpl.spoor.legal_basis.ground":  attribute.StringValue("c"),
		"dpl.spoor.legal_basis.statute": attribute.StringValue("leerplichtwet-21"),
		"dpl.spoor.subject_age_band":    attribute.StringValue("12-15"),
		"dpl.spoor.justification":       attribute.StringValue("Verzuim boven de wettelijke grens gemeld"),
		"dpl.spoor.channel":             attribute.StringValue("system"),
		"dpl.spoor.actor.role":          attribute.StringValue("leerplichtambtenaar"),
		"dpl.spoor.actor.staff_id":      attribute.StringValue("lpa-0042"),
		"service.component":             attribute.StringValue("leerplicht"),
		"dpl.read.externalReadAPI_id":   attribute.StringValue("https://ldv.example/lezen"),
	}
	for k, v := range edit {
		if v.Type() == attribute.INVALID {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	var out []attribute.KeyValue
	for k, v := range m {
		out = append(out, attribute.KeyValue{Key: attribute.Key(k), Value: v})
	}
	return out
}

// span is one span to make: its name and attributes, and its status.
type span struct {
	name   string
	attrs  []attribute.KeyValue
	failed bool
}

// makeSpans records the spans with the official SDK under one trace and
// returns them ended, as a batch processor would hand them to an exporter.
func makeSpans(t *testing.T, spans []span) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("spoor-test/ldv")
	ctx, root := tr.Start(context.Background(), "verzuimmelding")
	for _, s := range spans {
		_, sp := tr.Start(ctx, s.name, trace.WithAttributes(s.attrs...))
		if s.failed {
			sp.SetStatus(codes.Error, "database down")
		}
		sp.End()
	}
	root.End()
	return rec.Ended()
}

// TestOTLPIntake: Go's official OpenTelemetry SDK and OTLP/HTTP exporter
// send LDV spans to the gateway in front of a real ledger. The disclosures
// are logged (by BSN and by pseudonym); a malformed span, a foreign
// identifier, a number failing the elfproef and a failed action come back in
// partial_success with their reasons; spans that are no disclosure are
// counted and ignored; a second export of the same spans lands on the same
// events. No number in any answer, log line or store byte.
func TestOTLPIntake(t *testing.T) {
	r := newRig(t, true, waitLong)
	pseudonym, err := events.Pseudonym(r.env.Demo.SubjectKey, events.IDTypeBSN, bsn)
	if err != nil {
		t.Fatal(err)
	}
	spans := makeSpans(t, []span{
		{name: "verzuim melden", attrs: ldvDisclosure(nil)},
		{name: "verzuim melden (pseudoniem)", attrs: ldvDisclosure(map[string]attribute.Value{
			gateway.AttrSubjectIDType:    attribute.StringValue(gateway.SubjectTypePseudonym),
			gateway.AttrSubjectID:        attribute.StringValue(pseudonym),
			"dpl.spoor.subject.id_type":  attribute.StringValue("bsn"),
			"dpl.spoor.subject.key_id":   attribute.StringValue(r.env.Demo.SubjectKey.ID),
			"dpl.spoor.subject_age_band": attribute.StringValue("under-12"),
		})},
		{name: "dossier lezen", attrs: []attribute.KeyValue{
			attribute.String(gateway.AttrProcessingActivity, "leerplicht-verzuimmelding"),
			attribute.String(gateway.AttrSubjectIDType, "BSN"),
			attribute.String(gateway.AttrSubjectID, bsn),
		}},
		{name: "malformed", attrs: ldvDisclosure(map[string]attribute.Value{"dpl.spoor.recipients": attribute.StringValue(partyB)})},
		{name: "foreign", attrs: ldvDisclosure(map[string]attribute.Value{gateway.AttrSubjectIDType: attribute.StringValue("personeelsnummer")})},
		{name: "elfproef", attrs: ldvDisclosure(map[string]attribute.Value{gateway.AttrSubjectID: attribute.StringValue(badBSN)})},
		{name: "failed", attrs: ldvDisclosure(nil), failed: true},
	})
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(r.http.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tokenA}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()
	size := r.l.Head().Size
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// The exporter returns a partial_success as its error.
	checkPartial := func(err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "partial success") {
			t.Fatalf("export: %v, want a partial success", err)
		}
		msg := err.Error()
		for _, want := range []string{"4 spans rejected", gateway.SpanBadAttribute, gateway.SpanForeignIdentifier, gateway.CodeInvalidNumber, gateway.SpanStatusError} {
			if !strings.Contains(msg, want) {
				t.Errorf("partial success %q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, bsn) || strings.Contains(msg, badBSN) || strings.Contains(msg, "personeelsnummer") {
			t.Errorf("partial success repeats a value of a span: %s", msg)
		}
	}
	checkPartial(exp.ExportSpans(ctx, spans))
	if got := r.l.Head().Size; got != size+2 {
		t.Fatalf("the ledger grew by %d leaves, want the 2 disclosures", got-size)
	}
	// Each disclosure is the span's: trace and span id, processing
	// activity, the subject's pseudonym, the client's party.
	for i, sp := range spans[:2] {
		id := events.KeyedEventID(r.env.Demo.Parties[partyA].SaltSecret, partyA,
			"otlp/"+sp.SpanContext().TraceID().String()+"/"+sp.SpanContext().SpanID().String())
		e, err := r.l.FindEvent(ctx, partyA, id)
		if err != nil {
			t.Fatalf("span %d: event %s: %v", i, id, err)
		}
		env, err := r.l.Entry(ctx, e.Index)
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := events.Open(env, r.env.Demo.Signed.Covenant.Origin, r.env.Demo.Signed.Covenant)
		if err != nil {
			t.Fatal(err)
		}
		if d.TraceID != sp.SpanContext().TraceID().String() || d.SpanID != sp.SpanContext().SpanID().String() ||
			d.ProcessingActivity != "leerplicht-verzuimmelding" || d.Subject.Pseudonym != pseudonym || d.Discloser != partyA ||
			!d.OccurredAt.Equal(sp.EndTime().UTC().Truncate(time.Millisecond)) {
			t.Errorf("span %d became %+v", i, d)
		}
	}
	// The LDV read API on the ledger links each Spoor record to the span it
	// came from: a query by the trace id answers both disclosures, each with
	// its span id and its leaf.
	tid := spans[0].SpanContext().TraceID().String()
	q, err := http.NewRequest(http.MethodPost, r.ledgerHTTP.URL+"/processing-activities", strings.NewReader(`{"traceId":"`+tid+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	q.Header.Set("Authorization", "Bearer "+fgToken)
	qr, err := http.DefaultClient.Do(q)
	if err != nil {
		t.Fatal(err)
	}
	var read verifier.LDVQueryResponse
	err = json.NewDecoder(qr.Body).Decode(&read)
	qr.Body.Close()
	if err != nil || qr.StatusCode != http.StatusOK {
		t.Fatalf("read API: %d %v", qr.StatusCode, err)
	}
	if len(read.ProcessingActivities) != 2 {
		t.Fatalf("the read API answers %d records for the trace, want the 2 disclosures", len(read.ProcessingActivities))
	}
	bySpan := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range spans[:2] {
		bySpan[sp.SpanContext().SpanID().String()] = sp
	}
	for i, pa := range read.ProcessingActivities {
		sp, ok := bySpan[pa.SpanID]
		if !ok {
			t.Fatalf("record %d names span %s, which is none of the disclosures", i, pa.SpanID)
		}
		delete(bySpan, pa.SpanID)
		e, err := r.l.FindEvent(ctx, partyA, pa.Attributes["dpl.spoor.event_id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if pa.TraceID != tid || pa.SpanID != sp.SpanContext().SpanID().String() || pa.Attributes["dpl.spoor.leaf_index"] != float64(e.Index) ||
			pa.Attributes["dpl.core.data_subject_id"] != pseudonym {
			t.Errorf("record %d does not link to span %s: %+v", i, sp.SpanContext().SpanID(), pa)
		}
	}
	// An exporter's retry is the same events: nothing new is logged.
	checkPartial(exp.ExportSpans(ctx, spans))
	if got := r.l.Head().Size; got != size+2 {
		t.Errorf("a second export grew the ledger by %d leaves", got-size-2)
	}
	metrics := gatherText(t, r.gw)
	for _, want := range []string{
		`spoor_gateway_otlp_spans_ignored_total{kind="not_disclosure"} 2`,
		`spoor_gateway_otlp_spans_ignored_total{kind="not_ldv"} 2`, // the root span, twice
		`spoor_gateway_otlp_spans_refused_total{reason="foreign_identifier"} 2`,
		`spoor_gateway_otlp_spans_committed_total 4`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	r.checkNoNumberStored()
}

// TestOTLPJSONAndErrors: OTLP/JSON (hex ids) is accepted as protobuf is;
// a body that is no export request, a wrong media type and a missing token
// are refused, and nothing repeats the body.
func TestOTLPJSONAndErrors(t *testing.T) {
	r := newRig(t, true, waitLong)
	end := time.Now().Add(-time.Minute).UnixNano()
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"leerplicht"}}]},
	  "scopeSpans":[{"scope":{"name":"x"},"spans":[
	    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"verzuim melden","kind":1,
	     "startTimeUnixNano":"` + itoa(end-1000) + `","endTimeUnixNano":"` + itoa(end) + `","someFutureField":true,
	     "attributes":[
	      {"key":"dpl.core.processing_activity_id","value":{"stringValue":"leerplicht-verzuimmelding"}},
	      {"key":"dpl.core.data_subject_id_type","value":{"stringValue":"bsn"}},
	      {"key":"dpl.core.data_subject_id","value":{"stringValue":"` + bsn + `"}},
	      {"key":"dpl.spoor.recipients","value":{"arrayValue":{"values":[{"stringValue":"` + partyB + `"}]}}},
	      {"key":"dpl.spoor.categories","value":{"arrayValue":{"values":[{"stringValue":"identificatie"}]}}},
	      {"key":"dpl.spoor.purpose","value":{"stringValue":"verzuim-en-leerplicht"}},
	      {"key":"dpl.spoor.legal_basis.ground","value":{"stringValue":"c"}},
	      {"key":"dpl.spoor.legal_basis.statute","value":{"stringValue":"leerplichtwet-21"}},
	      {"key":"dpl.spoor.subject_age_band","value":{"stringValue":"12-15"}},
	      {"key":"dpl.spoor.justification","value":{"stringValue":"Verzuim gemeld"}},
	      {"key":"dpl.spoor.channel","value":{"stringValue":"system"}},
	      {"key":"dpl.spoor.actor.role","value":{"stringValue":"leerplichtambtenaar"}},
	      {"key":"dpl.spoor.actor.staff_id","value":{"stringValue":"lpa-0042"}},
	      {"key":"dpl.spoor.colour","value":{"stringValue":"blue"}}]},
	    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"ok",
	     "startTimeUnixNano":"` + itoa(end-1000) + `","endTimeUnixNano":"` + itoa(end) + `",
	     "attributes":[
	      {"key":"dpl.core.processing_activity_id","value":{"stringValue":"leerplicht-verzuimmelding"}},
	      {"key":"dpl.core.data_subject_id_type","value":{"stringValue":"bsn"}},
	      {"key":"dpl.core.data_subject_id","value":{"stringValue":"` + bsn + `"}},
	      {"key":"dpl.spoor.recipients","value":{"arrayValue":{"values":[{"stringValue":"` + partyB + `"}]}}},
	      {"key":"dpl.spoor.categories","value":{"arrayValue":{"values":[{"stringValue":"identificatie"}]}}},
	      {"key":"dpl.spoor.purpose","value":{"stringValue":"verzuim-en-leerplicht"}},
	      {"key":"dpl.spoor.legal_basis.ground","value":{"stringValue":"c"}},
	      {"key":"dpl.spoor.legal_basis.statute","value":{"stringValue":"leerplichtwet-21"}},
	      {"key":"dpl.spoor.subject_age_band","value":{"stringValue":"12-15"}},
	      {"key":"dpl.spoor.justification","value":{"stringValue":"Verzuim gemeld"}},
	      {"key":"dpl.spoor.channel","value":{"stringValue":"system"}},
	      {"key":"dpl.spoor.actor.role","value":{"stringValue":"leerplichtambtenaar"}},
	      {"key":"dpl.spoor.actor.staff_id","value":{"stringValue":"lpa-0042"}}]}]}]}]}`
	size := r.l.Head().Size
	resp := r.postTraces(tokenA, "application/json", []byte(body))
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s: %s", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	var out coltracepb.ExportTraceServiceResponse
	if err := protojson.Unmarshal(resp.body, &out); err != nil {
		t.Fatalf("answer %s: %v", resp.body, err)
	}
	if out.GetPartialSuccess().GetRejectedSpans() != 1 || !strings.Contains(out.GetPartialSuccess().GetErrorMessage(), "dpl.spoor.colour") ||
		!strings.Contains(out.GetPartialSuccess().GetErrorMessage(), "eee19b7ec3c1b174") {
		t.Errorf("partial success %s", resp.body)
	}
	if got := r.l.Head().Size; got != size+1 {
		t.Errorf("the ledger grew by %d, want 1", got-size)
	}
	for _, c := range []struct {
		name, token, ctype string
		body               []byte
		status             int
	}{
		{"not protobuf", tokenA, "application/x-protobuf", []byte(bsn + "\xff\xff\xff"), http.StatusBadRequest},
		{"not JSON", tokenA, "application/json", []byte(`{"resourceSpans":[{"x":` + bsn), http.StatusBadRequest},
		{"bad JSON value", tokenA, "application/json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"` + bsn + `x"}]}]}]}`), http.StatusBadRequest},
		{"bad hex id", tokenA, "application/json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"` + bsn + `z"}]}]}]}`), http.StatusBadRequest},
		{"media type", tokenA, "text/plain", []byte("x"), http.StatusUnsupportedMediaType},
		{"no token", "", "application/x-protobuf", nil, http.StatusUnauthorized},
	} {
		got := r.postTraces(c.token, c.ctype, c.body)
		if got.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, got.status, c.status, got.body)
		}
	}
	r.checkNoNumberStored()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// gatherText is the gateway's metrics in the text format.
func gatherText(t *testing.T, g *gateway.Gateway) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func (r *rig) postTraces(token, contentType string, body []byte) response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.http.URL+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	return r.do(req)
}
