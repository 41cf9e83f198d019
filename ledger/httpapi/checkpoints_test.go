package httpapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

const cpTestFGToken = "fg-test-token"

// cpTestServer runs a real ledger with n events, submitted one batch per
// 25, behind the HTTP API.
func cpTestServer(t *testing.T, n int) (*testledger.Env, *ledger.Ledger, *pebblestore.Store, *httptest.Server) {
	t.Helper()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	t.Cleanup(func() { l.Close(); s.Close() })
	ctx := context.Background()
	for done := 0; done < n; done += 25 {
		subs := make([]ledger.Submission, min(25, n-done))
		for i := range subs {
			env, _ := e.Event(t)
			subs[i] = e.Submission(t, l, env)
		}
		p, err := l.Submit(ctx, subs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Tokens: map[[32]byte]httpapi.Principal{
		httpapi.TokenHash(cpTestFGToken): {Role: httpapi.RoleFG, Name: "fg"},
		httpapi.TokenHash("desk-token"):  {Role: httpapi.RoleDesk, Name: "desk"},
	}}))
	t.Cleanup(srv.Close)
	return e, l, s, srv
}

func cpGet(t *testing.T, url, token string) (*http.Response, httpapi.CheckpointsResponse) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body httpapi.CheckpointsResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
	}
	return resp, body
}

func TestCheckpointsEndpoint(t *testing.T) {
	e, _, _, srv := cpTestServer(t, 100)

	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"desk-token", http.StatusForbidden}} {
		if resp, _ := cpGet(t, srv.URL+"/v1/checkpoints", tc.token); resp.StatusCode != tc.want {
			t.Errorf("token %q: status %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	for _, q := range []string{"?limit=0", "?from=x", "?limit=-1"} {
		if resp, _ := cpGet(t, srv.URL+"/v1/checkpoints"+q, cpTestFGToken); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}

	// Pages of 2: checkpoints 1..5 (the covenant's, then four batches),
	// each verifying, sizes growing.
	var seqs []uint64
	var last uint64
	url := srv.URL + "/v1/checkpoints?limit=2"
	for {
		resp, page := cpGet(t, url, cpTestFGToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, c := range page.Checkpoints {
			cp, err := verifier.OpenCheckpoint([]byte(c.Note), e.Keys)
			if err != nil {
				t.Fatalf("checkpoint %d: %v", c.Seq, err)
			}
			if cp.Size <= last {
				t.Errorf("checkpoint %d has size %d after %d", c.Seq, cp.Size, last)
			}
			last = cp.Size
			seqs = append(seqs, c.Seq)
		}
		if page.Next == nil {
			break
		}
		url = srv.URL + "/v1/checkpoints?limit=2&from=" + strconv.FormatUint(*page.Next, 10)
	}
	if len(seqs) != 5 || seqs[0] != 1 || seqs[4] != 5 || last != 101 {
		t.Fatalf("checkpoints %v, last size %d", seqs, last)
	}
	// A start beyond the last one is an empty last page.
	if resp, page := cpGet(t, srv.URL+"/v1/checkpoints?from=99", cpTestFGToken); resp.StatusCode != http.StatusOK ||
		len(page.Checkpoints) != 0 || page.Next != nil {
		t.Errorf("from=99: status %d, page %+v", resp.StatusCode, page)
	}
}

// TestAuditOverHTTP runs the FG's audit against a running ledger through
// /v1/checkpoints, /v1/entries and the tiles.
func TestAuditOverHTTP(t *testing.T) {
	e, _, s, srv := cpTestServer(t, 270)
	src := &audit.HTTPSource{URL: srv.URL, Token: cpTestFGToken, PageSize: 128}
	cfg := audit.Config{Keys: e.Keys, AdminVkey: e.Demo.AdminVkey}
	ctx := context.Background()

	rep, err := audit.Run(ctx, src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.TreeSize != 271 || rep.Entries.Disclosures != 270 || rep.Checkpoints.Verified != 12 {
		t.Fatalf("ok %v, size %d, entries %+v, checkpoints %+v, problems %v", rep.OK, rep.TreeSize, rep.Entries, rep.Checkpoints, rep.Problems)
	}

	// The wrong token is refused with a clear error.
	bad := &audit.HTTPSource{URL: srv.URL, Token: "desk-token"}
	if _, err := audit.Run(ctx, bad, cfg); !errors.Is(err, audit.ErrUnauthorized) {
		t.Fatalf("desk token: %v", err)
	}

	// Changes to the running ledger's store. A leaf record removed: the
	// page that holds it is read one entry at a time, and the audit names
	// it. Two stored envelopes altered (in the second entry bundle, as the
	// first one lacks a leaf record now): one stays JSON (a changed base64
	// character), one is no longer JSON. The API serves an envelope's
	// exact bytes, so the audit finds both by their hash.
	const deleted, altered, broken = 150, 260, 261
	var b ledger.Batch
	b.Delete(binary.BigEndian.AppendUint64([]byte{'l'}, deleted))
	for _, idx := range []uint64{altered, broken} {
		k := binary.BigEndian.AppendUint64([]byte{'e'}, idx)
		env, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if idx == altered {
			i := bytes.Index(env, []byte(`"payload":"`)) + len(`"payload":"`) + 10
			if env[i] == 'A' { // another base64 letter
				env[i] = 'B'
			} else {
				env[i] = 'A'
			}
		} else {
			env[0] = 'X'
		}
		b.Set(k, env)
	}
	if err := s.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	rep, err = audit.Run(ctx, src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range rep.Problems {
		got[fmt.Sprintf("%s %d", p.Check, *p.Leaf)] = true
	}
	want := []string{fmt.Sprintf("leaf-missing %d", deleted), fmt.Sprintf("body-hash %d", altered), fmt.Sprintf("body-hash %d", broken)}
	if len(rep.Problems) != len(want) || !got[want[0]] || !got[want[1]] || !got[want[2]] {
		t.Fatalf("problems %v, want %v", rep.Problems, want)
	}
}
