package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spoor-ledger/spoor/verifier"
)

// TestLDVReadAPI: POST /processing-activities answers a query by trace id
// with the disclosure linked to its span (trace and span id, leaf index,
// envelope hash), keeps a desk to its scope, pages with a cursor, and
// refuses a query without a filter, a UUID trace id and a BSN as subject
// (without repeating it), always with the API-Version header.
func TestLDVReadAPI(t *testing.T) {
	f := newAuthzFixture(t, "amersfoort")
	post := func(auth, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/processing-activities", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden &&
			resp.Header.Get("API-Version") != verifier.LDVAPIVersion {
			t.Errorf("answer %d without API-Version", resp.StatusCode)
		}
		return resp.StatusCode, b
	}
	decode := func(b []byte) verifier.LDVQueryResponse {
		t.Helper()
		var r verifier.LDVQueryResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return r
	}
	d := f.ownEvent
	q := fmt.Sprintf(`{"traceId":%q}`, d.TraceID)
	code, b := post(f.auth["fg"], q)
	if code != http.StatusOK {
		t.Fatalf("fg: %d %s", code, b)
	}
	r := decode(b)
	found := false
	for _, pa := range r.ProcessingActivities {
		if pa.Attributes["dpl.spoor.event_id"] == d.ID {
			found = true
			if pa.TraceID != d.TraceID || pa.SpanID != d.SpanID || pa.Attributes["dpl.core.processing_activity_id"] != d.ProcessingActivity ||
				pa.Attributes["dpl.core.data_subject_id"] != d.Subject.Pseudonym || pa.Attributes["dpl.spoor.leaf_index"] == nil {
				t.Errorf("the record does not link to its span: %+v", pa)
			}
		}
	}
	if !found || r.Metadata.LogbookID == "" {
		t.Fatalf("the FG's answer lacks the event: %s", b)
	}
	// The own party's desk finds it; another party's desk, answering for
	// another party, does not.
	if code, b := post(f.auth["own-party desk"], q); code != http.StatusOK || !strings.Contains(string(b), d.ID) {
		t.Errorf("own desk: %d %s", code, b)
	}
	if code, b := post(f.auth["other-party desk"], q); code != http.StatusOK || strings.Contains(string(b), d.ID) || len(decode(b).ProcessingActivities) != 0 {
		t.Errorf("other desk sees another party's disclosures: %d %s", code, b)
	}
	// Paging: the own party's disclosures about the child, one per page.
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		body := fmt.Sprintf(`{"dpl.core.data_subject_id":%q,"limit":1,"cursor":%q}`, f.child, cursor)
		code, b := post(f.auth["fg"], body)
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, code, b)
		}
		r := decode(b)
		if len(r.ProcessingActivities) > 1 {
			t.Fatalf("page %d has %d records, the limit is 1", page, len(r.ProcessingActivities))
		}
		for _, pa := range r.ProcessingActivities {
			id := pa.Attributes["dpl.spoor.event_id"].(string)
			if seen[id] {
				t.Fatalf("event %s on two pages", id)
			}
			seen[id] = true
		}
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
		if page > 200 {
			t.Fatal("paging does not end")
		}
	}
	// The Link header's form: the cursor in the query, the body as before.
	code, b = post(f.auth["fg"], fmt.Sprintf(`{"dpl.core.data_subject_id":%q,"limit":1}`, f.child))
	first := decode(b)
	if code != http.StatusOK || first.NextCursor == "" {
		t.Fatalf("first page: %d %s", code, b)
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/processing-activities?cursor="+first.NextCursor,
		strings.NewReader(fmt.Sprintf(`{"dpl.core.data_subject_id":%q,"limit":1}`, f.child)))
	req.Header.Set("Authorization", f.auth["fg"])
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if second := decode(b); len(second.ProcessingActivities) != 1 || len(first.ProcessingActivities) != 1 ||
		second.ProcessingActivities[0].Attributes["dpl.spoor.event_id"] == first.ProcessingActivities[0].Attributes["dpl.spoor.event_id"] {
		t.Errorf("the cursor in the query does not give the next page: %s", b)
	}
	if len(seen) < 2 {
		t.Errorf("paging saw %d disclosures about the child, want several", len(seen))
	}
	bsn := f.env.Gen.Children()[0].BSN
	for _, c := range []struct{ name, body, code string }{
		{"no filter", `{"startTime":"2020-01-01T00:00:00Z"}`, "no_filter"},
		{"empty", `{}`, "no_filter"},
		{"uuid trace", `{"traceId":"ef4e77b9-b03b-585f-b613-5fcf8d8555fb"}`, "bad_trace_id"},
		{"bsn", fmt.Sprintf(`{"dpl.core.data_subject_id":%q}`, bsn), "bsn_refused"},
		{"unknown member", fmt.Sprintf(`{"traceId":%q,"dataSubjectId":%q}`, d.TraceID, bsn), "bad_request"},
		{"limit", fmt.Sprintf(`{"traceId":%q,"limit":5000}`, d.TraceID), "bad_limit"},
	} {
		code, b := post(f.auth["fg"], c.body)
		if code != http.StatusBadRequest || !strings.Contains(string(b), `"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want 400 %s", c.name, code, b, c.code)
		}
		f.noPersonalData(c.name, b)
	}
}
