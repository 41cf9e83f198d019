package gateway_test

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// BenchmarkOTLPIntake posts b.N OTLP/HTTP protobuf exports of 512 LDV
// disclosure spans each (the SDK batch processor's default batch), from
// four clients at once, to a gateway in front of a real ledger (Pebble,
// ingest, embedded NATS); every export is answered only once each span is
// committed. The rate is spans per second committed; cpu-us/span is the
// CPU of the whole process (gateway, ledger, NATS and the clients).
//
//	go test -run XXX -bench OTLPIntake -benchtime 40x ./gateway/
func BenchmarkOTLPIntake(b *testing.B) {
	r := newRig(b, true, waitLong)
	const perRequest, clients = 512, 4
	end := uint64(time.Now().Add(-time.Hour).UnixNano())
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	list := func(k string, vs ...string) *commonpb.KeyValue {
		arr := &commonpb.ArrayValue{}
		for _, v := range vs {
			arr.Values = append(arr.Values, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}})
		}
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}}
	}
	bodies := make([][]byte, b.N)
	seq := uint64(0)
	for i := range bodies {
		ss := &tracepb.ScopeSpans{}
		for range perRequest {
			seq++
			tid, sid := make([]byte, 16), make([]byte, 8)
			binary.BigEndian.PutUint64(tid[8:], seq)
			tid[0] = 0x5b
			binary.BigEndian.PutUint64(sid, seq)
			ss.Spans = append(ss.Spans, &tracepb.Span{TraceId: tid, SpanId: sid, Name: "verzuim melden",
				StartTimeUnixNano: end - 1000, EndTimeUnixNano: end, Attributes: []*commonpb.KeyValue{
					str("dpl.core.processing_activity_id", "leerplicht-verzuimmelding"),
					str("dpl.core.data_subject_id_type", "BSN"),
					str("dpl.core.data_subject_id", testBSN(int(seq))),
					list("dpl.spoor.recipients", partyB),
					list("dpl.spoor.categories", "identificatie", "onderwijsgegevens"),
					str("dpl.spoor.purpose", "verzuim-en-leerplicht"),
					str("dpl.spoor.legal_basis.ground", "c"),
					str("dpl.spoor.legal_basis.statute", "leerplichtwet-21"),
					str("dpl.spoor.subject_age_band", "12-15"),
					str("dpl.spoor.justification", "Verzuim boven de wettelijke grens gemeld"),
					str("dpl.spoor.channel", "system"),
					str("dpl.spoor.actor.role", "leerplichtambtenaar"),
					str("dpl.spoor.actor.staff_id", "lpa-0042"),
				}})
		}
		req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
		var err error
		if bodies[i], err = proto.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				resp := r.postTraces(tokenA, "application/x-protobuf", bodies[i])
				var out coltracepb.ExportTraceServiceResponse
				if resp.status != http.StatusOK || proto.Unmarshal(resp.body, &out) != nil || out.PartialSuccess != nil {
					b.Errorf("status %d: %.300s", resp.status, bytes.ToValidUTF8(resp.body, nil))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	n := float64(b.N * perRequest)
	b.ReportMetric(n/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/span")
}
