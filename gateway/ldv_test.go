package gateway_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/gateway"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The fixed party, origin, keys and covenant the span vectors are mapped
// under, so that the golden disclosures are reproducible.
var (
	vectorKey   = events.SubjectKey{ID: "k1", Secret: bytes.Repeat([]byte{0x5a}, events.SubjectKeySize)}
	vectorSalt  = bytes.Repeat([]byte{0xa5}, 32)
	vectorCov   = &events.Covenant{Version: 1, SubjectKeys: []string{"k1"}}
	vectorParty = "gemeente-amersfoort"
	vectorLog   = "spoor.example/amersfoort"
)

// spanOutcome is one span's line of the golden file: its class, and the
// disclosure it maps to or the reason it is refused.
type spanOutcome struct {
	Name       string             `json:"name"`
	Class      string             `json:"class"`
	Refused    string             `json:"refused,omitempty"`
	Detail     string             `json:"detail,omitempty"`
	Disclosure *events.Disclosure `json:"disclosure,omitempty"`
}

// mapVector maps one span as the gateway does, up to the unsigned
// disclosure (no covenant vocabulary checks: those are the covenant's).
func mapVector(sp *tracepb.Span) spanOutcome {
	out := spanOutcome{Name: sp.GetName()}
	switch gateway.ClassifySpan(sp) {
	case gateway.SpanNotLDV:
		out.Class = "not_ldv"
		return out
	case gateway.SpanNotDisclosure:
		out.Class = "not_disclosure"
		return out
	}
	out.Class = "disclosure"
	in, se := gateway.MapSpan(sp)
	if se != nil {
		out.Refused, out.Detail = se.Code, se.Detail
		return out
	}
	id := events.KeyedEventID(vectorSalt, vectorParty, in.IdempotencyKey())
	d, fes := in.Disclosure(1, vectorParty, vectorLog, id, vectorKey, vectorCov)
	if len(fes) > 0 {
		out.Refused, out.Detail = fes[0].Code, fes[0].Field+" "+fes[0].Detail
		return out
	}
	out.Disclosure = d
	return out
}

// TestSpanVectors maps the spans of testdata/ldv-spans.json (OTLP/JSON, one
// span per case of docs/ldv.md) and compares the outcome with
// testdata/ldv-spans.golden.json; the protobuf form of the same request
// maps the same. No outcome holds the numbers of the spans.
func TestSpanVectors(t *testing.T) {
	body, err := os.ReadFile("testdata/ldv-spans.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := gateway.DecodeTraces(body, true)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	req2, err := gateway.DecodeTraces(pb, false)
	if err != nil {
		t.Fatal(err)
	}
	var got, got2 []spanOutcome
	for _, sp := range req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans() {
		got = append(got, mapVector(sp))
	}
	for _, sp := range req2.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans() {
		got2 = append(got2, mapVector(sp))
	}
	b, err := json.MarshalIndent(got, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	b2, _ := json.MarshalIndent(got2, "", " ")
	if !bytes.Equal(b[:len(b)-1], b2) {
		t.Error("the protobuf form of the request maps otherwise than its OTLP/JSON form")
	}
	for _, n := range []string{bsn, badBSN, "100000004"} {
		if bytes.Contains(b, []byte(n)) {
			t.Errorf("an outcome holds number %s", n)
		}
	}
	const golden = "testdata/ldv-spans.golden.json"
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("span outcomes differ from %s (go test -run TestSpanVectors -update to rewrite):\n%s", golden, b)
	}
	classes := map[string]int{}
	for _, o := range got {
		classes[o.Class+"/"+map[bool]string{true: "mapped", false: "refused"}[o.Disclosure != nil]]++
	}
	if classes["disclosure/mapped"] < 4 || classes["disclosure/refused"] < 8 || classes["not_ldv/refused"] != 1 || classes["not_disclosure/refused"] != 1 {
		t.Errorf("the vectors do not cover every case: %v", classes)
	}
}

// FuzzMapSpan feeds the span mapping any span (protobuf bytes; the seeds
// are the vectors'): it must not panic, a refusal must never repeat a run
// of nine digits of the span, and a mapped span's disclosure must carry
// the span's ids and no number but as a pseudonym.
func FuzzMapSpan(f *testing.F) {
	body, err := os.ReadFile("testdata/ldv-spans.json")
	if err != nil {
		f.Fatal(err)
	}
	req, err := gateway.DecodeTraces(body, true)
	if err != nil {
		f.Fatal(err)
	}
	for _, sp := range req.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans() {
		b, err := proto.Marshal(sp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sp := &tracepb.Span{}
		if proto.Unmarshal(b, sp) != nil {
			return
		}
		numbers := numberRE.FindAllString(string(b), -1)
		o := mapVector(sp)
		text := o.Refused + " " + o.Detail
		for _, n := range numbers {
			if strings.Contains(text, n) {
				t.Fatalf("refusal %q repeats %s", text, n)
			}
		}
		if d := o.Disclosure; d != nil {
			if len(d.TraceID) != 32 || len(d.SpanID) != 16 {
				t.Fatalf("mapped ids %q %q", d.TraceID, d.SpanID)
			}
			if d.Subject.KeyID != vectorKey.ID {
				t.Fatalf("subject key %q", d.Subject.KeyID)
			}
		}
	})
}

// FuzzDecodeTraces feeds the OTLP request decoding (OTLP/JSON with its hex
// ids, and protobuf) anything: it must not panic, and what it decodes maps
// span by span without panicking.
func FuzzDecodeTraces(f *testing.F) {
	body, err := os.ReadFile("testdata/ldv-spans.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, true)
	req, err := gateway.DecodeTraces(body, true)
	if err != nil {
		f.Fatal(err)
	}
	pb, err := proto.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, b []byte, isJSON bool) {
		req, err := gateway.DecodeTraces(b, isJSON)
		if err != nil {
			return
		}
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					mapVector(sp)
				}
			}
		}
	})
}
