package httpapi_test

// FuzzHTTPAPI sends random methods, paths, queries, tokens and bodies to
// the handler of a real ledger. Whatever arrives, the handler never panics
// and never answers 5xx (every bad request is the client's fault and says
// so with a 4xx), and an answer to a request without a token never carries
// an envelope or a pseudonym. The seed corpus is in testdata/fuzz.

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
)

// fuzzMethods and fuzzTokens are what the fuzzer's small integers choose
// from: every method the API routes, and a token of each role.
var (
	fuzzMethods = []string{"GET", "POST", "HEAD", "DELETE", "PUT", "OPTIONS"}
	fuzzTokens  = []string{"", "Bearer fuzz-fg", "Bearer fuzz-desk-1", "Bearer fuzz-desk-2", "Bearer fuzz-party", "Bearer nonsense", "Basic Zm9vOmJhcg==", "Bearer "}
)

func FuzzHTTPAPI(f *testing.F) {
	e := testledger.New(f)
	l, s := e.Open(f, ledger.Config{IdleCosign: -1})
	f.Cleanup(func() { l.Close(); s.Close() })
	ctx := context.Background()

	// A few events, so that ids, proofs, tiles and entries exist; and the
	// things no public answer may contain: each pseudonym and each
	// envelope's payload.
	var secrets []string
	var ids []string
	var party string
	subs := make([]ledger.Submission, 40)
	for i := range subs {
		env, d := e.Event(f)
		subs[i] = e.Submission(f, l, env)
		ids = append(ids, d.ID)
		party = d.Discloser
		pe, err := events.ParseEnvelope(env)
		if err != nil {
			f.Fatal(err)
		}
		secrets = append(secrets, d.Subject.Pseudonym, base64.StdEncoding.EncodeToString(pe.Payload))
	}
	p, err := l.Submit(ctx, subs)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		f.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Metrics()...)
	h := httpapi.New(httpapi.Config{
		Ledger: l, Gatherer: reg, AccessLimit: 100000,
		Tokens: map[[32]byte]httpapi.Principal{
			httpapi.TokenHash("fuzz-fg"):     {Role: httpapi.RoleFG, Name: "fg"},
			httpapi.TokenHash("fuzz-desk-1"): {Role: httpapi.RoleDesk, Name: "desk-1"},
			httpapi.TokenHash("fuzz-desk-2"): {Role: httpapi.RoleDesk, Name: "desk-2"},
			httpapi.TokenHash("fuzz-party"):  {Role: httpapi.RoleParty, Name: "party", Party: party},
		},
	})

	id := ids[0]
	pseudonym := secrets[0]
	for _, seed := range []struct {
		method, token uint8
		path, query   string
		body          []byte
	}{
		{0, 0, "/checkpoint", "", nil},
		{0, 0, "/tile/0/000.p/41", "", nil},
		{0, 0, "/tile/entries/000.p/41", "", nil},
		{0, 0, "/tile/1/x001/x234/067.p/7", "", nil},
		{0, 0, "/v1/proof/inclusion", "index=3&size=20", nil},
		{0, 0, "/v1/proof/inclusion", "event_id=" + id, nil},
		{0, 0, "/v1/proof/consistency", "old=1&new=41", nil},
		{0, 0, "/v1/events/" + id + "/status", "", nil},
		{0, 4, "/v1/events/" + id, "", nil},
		{0, 1, "/v1/entries", "from=0&limit=5", nil},
		{0, 1, "/v1/checkpoints", "from=1&limit=2", nil},
		{0, 0, "/healthz", "", nil},
		{0, 0, "/metrics", "", nil},
		{1, 2, "/v1/inzage", "", []byte(`{"id_type":"bsn","pseudonyms":[{"key_id":"k1","pseudonym":"` + pseudonym + `"}],"relation":"parent","child_16_or_older":false}`)},
		{1, 3, "/v1/inzage/" + id + "/release", "", []byte(`{"withheld":[{"index":1,"ground":"avg-23"}]}`)},
		{0, 2, "/v1/inzage/" + id, "", nil},
		{0, 0, "/tile/entries/x999/x999/x999/x999/x999/x999/999", "", nil},
		{0, 0, "/v1/proof/inclusion", "index=18446744073709551615", nil},
		{0, 0, "/v1/events/%2e%2e/status", "", nil},
	} {
		f.Add(seed.method, seed.token, seed.path, seed.query, seed.body)
	}

	f.Fuzz(func(t *testing.T, method, token uint8, path, query string, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		u := &url.URL{Path: path, RawQuery: query}
		if !strings.HasPrefix(path, "/") {
			u.Path = "/" + path
		}
		req := &http.Request{
			Method:     fuzzMethods[int(method)%len(fuzzMethods)],
			URL:        u,
			RequestURI: u.RequestURI(),
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "spoor.test",
		}
		req = req.WithContext(context.Background())
		auth := fuzzTokens[int(token)%len(fuzzTokens)]
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", req.Method, u.RequestURI(), auth, rec.Code, rec.Body.String())
		}
		if auth == "" {
			for _, s := range secrets {
				if strings.Contains(rec.Body.String(), s) {
					t.Fatalf("%s %s without a token answered with an envelope or a pseudonym", req.Method, u.RequestURI())
				}
			}
		}
	})
}
