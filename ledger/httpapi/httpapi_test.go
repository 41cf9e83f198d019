package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// Bearer tokens of the test server. A party's token is partyTokenPrefix
// followed by its id.
const (
	fgToken          = "token-van-de-fg"
	deskToken        = "token-van-de-privacybalie"
	partyTokenPrefix = "token-van-"
)

// apiEvent is a disclosure the test put in the log.
type apiEvent struct {
	d     *events.Disclosure
	env   []byte
	index uint64
}

// apiFixture is a real ledger on Pebble served by httpapi on a real HTTP
// server.
type apiFixture struct {
	t      *testing.T
	env    *testledger.Env
	l      *ledger.Ledger
	srv    *httptest.Server
	client *tlogclient.Client
	events []apiEvent
}

// newAPIFixture opens a ledger and serves it; cfg's Ledger, Tokens and
// (unless set) Gatherer are filled in. The ledger's metrics are registered
// with a registry of their own.
func newAPIFixture(t *testing.T, cfg httpapi.Config) *apiFixture {
	t.Helper()
	e := testledger.New(t)
	l, s := e.Open(t, ledger.Config{IdleCosign: -1})
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("ledger.Close: %v", err)
		}
		s.Close()
	})
	sc, _ := l.Covenant()
	tokens := map[[32]byte]httpapi.Principal{
		httpapi.TokenHash(fgToken):   {Role: httpapi.RoleFG, Name: "fg"},
		httpapi.TokenHash(deskToken): {Role: httpapi.RoleDesk, Name: "balie-1"},
	}
	for _, p := range sc.Covenant.Parties {
		tokens[httpapi.TokenHash(partyTokenPrefix+p.ID)] = httpapi.Principal{Role: httpapi.RoleParty, Party: p.ID, Name: p.ID}
	}
	cfg.Ledger, cfg.Tokens = l, tokens
	if cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(l.Metrics()...)
		cfg.Gatherer = reg
	}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	return &apiFixture{t: t, env: e, l: l, srv: srv, client: &tlogclient.Client{URL: srv.URL, HTTP: srv.Client(), Keys: e.Keys}}
}

// grow submits synthetic events until the tree has size leaves.
func (f *apiFixture) grow(size uint64) {
	f.t.Helper()
	ctx := context.Background()
	for f.l.Head().Size < size {
		n := min(100, size-f.l.Head().Size)
		subs := make([]ledger.Submission, n)
		evs := make([]apiEvent, n)
		for i := range subs {
			env, d := f.env.Event(f.t)
			subs[i] = f.env.Submission(f.t, f.l, env)
			evs[i] = apiEvent{d: d, env: env}
		}
		p, err := f.l.Submit(ctx, subs)
		if err != nil {
			f.t.Fatal(err)
		}
		out, err := p.Wait(ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		for i, o := range out {
			if o.Err != nil || o.Duplicate {
				f.t.Fatalf("outcome %+v for a new event", o)
			}
			evs[i].index = o.Index
		}
		f.events = append(f.events, evs...)
	}
	if got := f.l.Head().Size; got != size {
		f.t.Fatalf("tree size %d, want %d", got, size)
	}
}

// reject records a refused event, as ingest does, and returns its id.
func (f *apiFixture) reject(party string, reason events.Reason) string {
	f.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	ctx := context.Background()
	p, err := f.l.Submit(ctx, []ledger.Submission{{Reject: &ledger.Rejection{EventID: id, Party: party,
		Reason: reason, Message: string(reason) + ": signature does not verify", At: time.Now().UTC()}}})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// get fetches path (with a leading slash) with an optional bearer token.
func (f *apiFixture) get(path, token string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, body
}

// getJSON fetches path, wants status 200 and decodes the body into v.
func (f *apiFixture) getJSON(path, token string, v any) {
	f.t.Helper()
	resp, body := f.get(path, token)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
}

// wantStatus fetches path and checks the status code and, for an error,
// that the body is the API's JSON error.
func (f *apiFixture) wantStatus(path, token string, want int) {
	f.t.Helper()
	resp, body := f.get(path, token)
	if resp.StatusCode != want {
		f.t.Errorf("GET %s: %s, want %d: %s", path, resp.Status, want, body)
		return
	}
	if want >= 400 {
		var e struct{ Code, Message string }
		if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
			f.t.Errorf("GET %s: error body %q is not the API's JSON error", path, body)
		}
	}
}

func (f *apiFixture) checkpoint(ctx context.Context) *verifier.Checkpoint {
	f.t.Helper()
	cp, err := f.client.Checkpoint(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return cp
}

// compact returns the canonical bytes of an envelope the API embedded (and
// indented) in its JSON answer.
func TestCheckpointAndTilesCheckWithXModTlog(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	ctx := context.Background()

	// A young log: one partial tile of 5 leaves.
	f.grow(5)
	resp, body := f.get("/checkpoint", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /checkpoint: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, f.l.Head().Note) {
		t.Fatal("GET /checkpoint is not the ledger's newest checkpoint")
	}
	cp5 := f.checkpoint(ctx)
	if cp5.Size != 5 {
		t.Fatalf("checkpoint size %d, want 5", cp5.Size)
	}
	root, err := tlog.TreeHash(5, tlog.TileHashReader(cp5.Tree(), f.client.TileReader(ctx)))
	if err != nil {
		t.Fatalf("x/mod tlog over the served tiles: %v", err)
	}
	if root != tlog.Hash(cp5.Hash) {
		t.Fatal("x/mod tlog computes another root from the served tiles than the checkpoint's")
	}
	_, tile5 := f.get("/tile/0/000.p/5", "")
	if len(tile5) != 5*32 {
		t.Fatalf("tile/0/000.p/5 has %d bytes, want 160", len(tile5))
	}
	records5, err := f.client.Entries(ctx, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range records5 {
		if h := tlog.RecordHash(rec); !bytes.Equal(h[:], tile5[i*32:(i+1)*32]) {
			t.Fatalf("entry %d of tile/entries/000.p/5 does not hash to hash %d of tile/0/000.p/5", i, i)
		}
	}

	// Grow past two full tiles, keeping a checkpoint on the way.
	f.grow(300)
	cp300 := f.checkpoint(ctx)
	f.grow(600)
	cp := f.checkpoint(ctx)
	tree := cp.Tree()
	hr := tlog.TileHashReader(tree, f.client.TileReader(ctx))
	root, err = tlog.TreeHash(tree.N, hr)
	if err != nil {
		t.Fatal(err)
	}
	if root != tree.Hash {
		t.Fatal("x/mod tlog computes another root from the served tiles than the checkpoint's")
	}
	for _, i := range []int64{0, 1, 4, 255, 256, 257, 511, 512, 599} {
		p, err := tlog.ProveRecord(tree.N, i, hr)
		if err != nil {
			t.Fatalf("ProveRecord(%d): %v", i, err)
		}
		recs, err := f.client.Entries(ctx, uint64(i)/256, int(min(256, tree.N-i/256*256)))
		if err != nil {
			t.Fatal(err)
		}
		rec := recs[i%256]
		if err := tlog.CheckRecord(p, tree.N, tree.Hash, i, tlog.RecordHash(rec)); err != nil {
			t.Fatalf("CheckRecord(%d): %v", i, err)
		}
		// The leaf commits to the stored event.
		parsed, err := verifier.ParseLeafRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (f.events[i-1].index != uint64(i) || parsed.BodyHash != sha256.Sum256(f.events[i-1].env)) {
			t.Fatalf("leaf %d does not commit to the event submitted for it", i)
		}
	}
	for _, old := range []*verifier.Checkpoint{cp5, cp300} {
		p, err := tlog.ProveTree(tree.N, int64(old.Size), hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, tree.N, tree.Hash, int64(old.Size), tlog.Hash(old.Hash)); err != nil {
			t.Fatalf("CheckTree(%d -> %d): %v", old.Size, tree.N, err)
		}
	}

	// The old partial tile is still served, by truncating the full one.
	if _, b := f.get("/tile/0/000.p/5", ""); !bytes.Equal(b, tile5) {
		t.Fatal("tile/0/000.p/5 changed as the log grew")
	}

	// C2SP paths of a 600-leaf log: level 0 has tiles 000, 001 and 002.p/88,
	// level 1 has 000.p/2.
	for _, c := range []struct {
		path      string
		size      int
		immutable bool
	}{
		{"/tile/0/000", 8192, true},
		{"/tile/0/001", 8192, true},
		{"/tile/0/002.p/88", 88 * 32, false},
		{"/tile/0/002.p/1", 32, false},
		{"/tile/1/000.p/2", 64, false},
		{"/tile/entries/000", -1, true},
		{"/tile/entries/002.p/88", -1, false},
	} {
		resp, b := f.get(c.path, "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", c.path, resp.Status)
			continue
		}
		if c.size >= 0 && len(b) != c.size {
			t.Errorf("GET %s: %d bytes, want %d", c.path, len(b), c.size)
		}
		if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") != c.immutable {
			t.Errorf("GET %s: Cache-Control %q", c.path, cc)
		}
	}
	if recs, err := f.client.Entries(ctx, 2, 88); err != nil || len(recs) != 88 {
		t.Errorf("tile/entries/002.p/88: %d records, %v", len(recs), err)
	}

	// Paths C2SP does not allow are refused; tiles beyond the tree are not
	// found.
	for _, p := range []string{
		"/tile/0/0", "/tile/0/0000", "/tile/0/000.p/0", "/tile/0/000.p/256", "/tile/0/000.p/05",
		"/tile/0/000.p/", "/tile/0/x000/001", "/tile/0/001/002", "/tile/64/000", "/tile/-1/000",
		"/tile/abc/000", "/tile/entries/", "/tile/entries/00a", "/tile/0/000/", "/tile/08/000",
	} {
		f.wantStatus(p, "", http.StatusBadRequest)
	}
	for _, p := range []string{
		"/tile/0/002", "/tile/0/002.p/89", "/tile/0/003.p/1", "/tile/1/000", "/tile/1/000.p/3",
		"/tile/2/000.p/1", "/tile/entries/002", "/tile/entries/002.p/89", "/tile/entries/003.p/1",
		"/tile/0/x001/000", // index 1000, written as C2SP wants
	} {
		f.wantStatus(p, "", http.StatusNotFound)
	}
}

func TestProofs(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	ctx := context.Background()
	f.grow(5)
	cp5 := f.checkpoint(ctx)
	f.grow(270)
	cp := f.checkpoint(ctx)

	check := func(r *httpapi.InclusionResponse, root [32]byte) {
		t.Helper()
		if err := verifier.VerifyInclusion(r.Index, r.TreeSize, verifier.LeafHash(r.LeafRecord), r.Proof, root); err != nil {
			t.Fatalf("inclusion of %d in %d: %v", r.Index, r.TreeSize, err)
		}
	}
	for _, i := range []uint64{0, 1, 4, 255, 256, 269} {
		var r httpapi.InclusionResponse
		f.getJSON(fmt.Sprintf("/v1/proof/inclusion?index=%d", i), "", &r)
		if r.Index != i || r.TreeSize != cp.Size {
			t.Fatalf("inclusion of %d: answer for %d in %d, want size %d", i, r.Index, r.TreeSize, cp.Size)
		}
		// Without a size the answer carries the checkpoint it is for.
		c, err := verifier.OpenCheckpoint([]byte(r.Checkpoint), f.env.Keys)
		if err != nil {
			t.Fatal(err)
		}
		check(&r, c.Hash)
	}
	// For an older tree size, against the older checkpoint.
	var old httpapi.InclusionResponse
	f.getJSON("/v1/proof/inclusion?index=3&size=5", "", &old)
	if old.Checkpoint != "" {
		t.Error("an inclusion proof for a given size carries the newest checkpoint")
	}
	check(&old, cp5.Hash)

	// By event id: the leaf of that event, committing to its envelope.
	ev := f.events[200]
	var byID httpapi.InclusionResponse
	evSum := sha256.Sum256(ev.env)
	f.getJSON("/v1/proof/inclusion?event_id="+ev.d.ID+"&sha256="+hex.EncodeToString(evSum[:]), "", &byID)
	if byID.Index != ev.index {
		t.Fatalf("inclusion by event id: leaf %d, want %d", byID.Index, ev.index)
	}
	check(&byID, cp.Hash)
	rec, err := verifier.ParseLeafRecord(byID.LeafRecord)
	if err != nil || rec.BodyHash != sha256.Sum256(ev.env) {
		t.Fatalf("inclusion by event id: the leaf record is not of the event (%v)", err)
	}

	var cons httpapi.ConsistencyResponse
	f.getJSON("/v1/proof/consistency?old=5", "", &cons)
	if cons.OldSize != 5 || cons.NewSize != cp.Size {
		t.Fatalf("consistency %d -> %d, want 5 -> %d", cons.OldSize, cons.NewSize, cp.Size)
	}
	if err := verifier.VerifyConsistency(5, cp.Size, cp5.Hash, cp.Hash, cons.Proof); err != nil {
		t.Fatal(err)
	}
	f.getJSON(fmt.Sprintf("/v1/proof/consistency?old=5&new=%d", cp.Size), "", &cons)
	if err := verifier.VerifyConsistency(5, cp.Size, cp5.Hash, cp.Hash, cons.Proof); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{
		"/v1/proof/inclusion",
		"/v1/proof/inclusion?index=abc",
		"/v1/proof/inclusion?index=-1",
		"/v1/proof/inclusion?index=270",
		"/v1/proof/inclusion?index=3&size=3",
		"/v1/proof/inclusion?index=3&size=271",
		"/v1/proof/inclusion?index=3&event_id=" + ev.d.ID,
		"/v1/proof/inclusion?event_id=not-a-uuid",
		"/v1/proof/inclusion?event_id=" + strings.ToUpper(ev.d.ID),
		"/v1/proof/consistency",
		"/v1/proof/consistency?old=0",
		"/v1/proof/consistency?old=6&new=5",
		"/v1/proof/consistency?old=5&new=271",
		"/v1/proof/consistency?old=x",
	} {
		f.wantStatus(p, "", http.StatusBadRequest)
	}
	f.wantStatus("/v1/proof/inclusion?event_id="+uuid.Must(uuid.NewV7()).String()+"&sha256="+strings.Repeat("0", 64), "", http.StatusNotFound)
	// Ids are per party: by id alone only for a party's own.
	f.wantStatus("/v1/proof/inclusion?event_id="+ev.d.ID, "", http.StatusBadRequest)
	var own httpapi.InclusionResponse
	f.getJSON("/v1/proof/inclusion?event_id="+ev.d.ID, partyTokenPrefix+ev.d.Discloser, &own)
	if own.Index != ev.index {
		t.Fatalf("inclusion by the party's own event id: leaf %d, want %d", own.Index, ev.index)
	}
}

// TestEventStatus: a status is about bytes, and ids are per party.
// Anonymous requests need ?sha256= and get a reason code only (before the
// fix any id was answered, with the stored message); a party asks about
// its own ids without the hash.
func TestEventStatus(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	f.grow(10)
	ev := f.events[4]
	sum := sha256.Sum256(ev.env)
	hash := hex.EncodeToString(sum[:])
	rejected := f.reject(ev.d.Discloser, events.ReasonBadSignature)
	party := partyTokenPrefix + ev.d.Discloser
	var other string
	for _, e := range f.events {
		if e.d.Discloser != ev.d.Discloser {
			other = partyTokenPrefix + e.d.Discloser
		}
	}

	// Anonymous: without the hash, nothing.
	f.wantStatus("/v1/events/"+ev.d.ID+"/status", "", http.StatusBadRequest)
	f.wantStatus("/v1/events/"+ev.d.ID+"/status?sha256="+strings.ToUpper(hash), "", http.StatusBadRequest)
	f.wantStatus("/v1/events/"+ev.d.ID+"/status?sha256="+hash, "not-a-token", http.StatusUnauthorized)
	var st httpapi.StatusResponse
	f.getJSON("/v1/events/"+ev.d.ID+"/status?sha256="+hash, "", &st)
	if st.Status != "committed" || st.LeafIndex == nil || *st.LeafIndex != ev.index || st.At == nil {
		t.Fatalf("status of a logged event: %+v", st)
	}
	// Other bytes under the id: not these.
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+ev.d.ID+"/status?sha256="+strings.Repeat("ab", 32), "", &st)
	if st.Status != "unknown" || st.LeafIndex != nil {
		t.Fatalf("status of other bytes under a logged id: %+v, want unknown", st)
	}
	// The party, about its own id: with other bytes, id_conflict naming
	// the leaf of the first ones; without a hash, the id's status.
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+ev.d.ID+"/status?sha256="+strings.Repeat("ab", 32), party, &st)
	if st.Status != "id_conflict" || st.Reason != events.ReasonIDConflict || st.LeafIndex == nil || *st.LeafIndex != ev.index {
		t.Fatalf("the party's status of other bytes under its id: %+v, want id_conflict at %d", st, ev.index)
	}
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+ev.d.ID+"/status", party, &st)
	if st.Status != "committed" || st.LeafIndex == nil || *st.LeafIndex != ev.index {
		t.Fatalf("the party's status of its id: %+v", st)
	}
	// Another party does not see it.
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+ev.d.ID+"/status", other, &st)
	if st.Status != "unknown" || st.LeafIndex != nil {
		t.Fatalf("another party's status of the id: %+v, want unknown", st)
	}
	// A refusal: the party gets the reason and the message; anyone else
	// only with the bytes' hash (this record has none: unknown).
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+rejected+"/status", party, &st)
	if st.Status != "rejected" || st.Reason != events.ReasonBadSignature || st.Message == "" || st.LeafIndex != nil || st.At == nil {
		t.Fatalf("status of a refused event: %+v", st)
	}
	st = httpapi.StatusResponse{}
	f.getJSON("/v1/events/"+rejected+"/status?sha256="+hash, "", &st)
	if st.Status != "unknown" || st.Message != "" {
		t.Fatalf("anonymous status of a refused event under other bytes: %+v", st)
	}
	st = httpapi.StatusResponse{}
	unknown := uuid.Must(uuid.NewV7()).String()
	f.getJSON("/v1/events/"+unknown+"/status?sha256="+hash, "", &st)
	if st.Status != "unknown" || st.EventID != unknown || st.LeafIndex != nil || st.Reason != "" {
		t.Fatalf("status of an unknown event: %+v", st)
	}
	f.wantStatus("/v1/events/not-an-id/status", "", http.StatusBadRequest)
	f.wantStatus("/v1/events/"+uuid.NewString()+"/status", "", http.StatusBadRequest) // a v4, not a v7
}

func TestEventNeedsARoleThatMaySeeIt(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	f.grow(10)
	ev := f.events[3]
	var other string
	for _, e := range f.events {
		if e.d.Discloser != ev.d.Discloser {
			other = e.d.Discloser
			break
		}
	}
	if other == "" {
		t.Fatal("every event has the same discloser")
	}
	path := "/v1/events/" + ev.d.ID

	f.wantStatus(path, "", http.StatusUnauthorized)
	f.wantStatus(path, "not-a-token", http.StatusUnauthorized)
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+fgToken)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the FG's token as Basic authorization: %s, want 401", resp.Status)
	}
	f.wantStatus(path, deskToken, http.StatusForbidden)
	// Another party learns nothing, not even that the event exists.
	f.wantStatus(path, partyTokenPrefix+other, http.StatusNotFound)
	f.wantStatus("/v1/events/"+uuid.Must(uuid.NewV7()).String(), fgToken, http.StatusNotFound)
	f.wantStatus("/v1/events/not-an-id", fgToken, http.StatusBadRequest)

	for _, token := range []string{fgToken, partyTokenPrefix + ev.d.Discloser} {
		var e httpapi.EntryResponse
		f.getJSON(path, token, &e)
		if e.Index != ev.index || e.Type != verifier.EntryDisclosure.String() {
			t.Fatalf("entry %+v, want leaf %d, a disclosure", e, ev.index)
		}
		if !bytes.Equal(e.Envelope, ev.env) {
			t.Fatal("the served envelope is not the logged one")
		}
		rec, err := verifier.ParseLeafRecord(e.LeafRecord)
		if err != nil || rec.BodyHash != sha256.Sum256(ev.env) {
			t.Fatalf("the served leaf record is not of the envelope (%v)", err)
		}
	}
}

func TestEntriesPaging(t *testing.T) {
	f := newAPIFixture(t, httpapi.Config{})
	f.grow(23)

	f.wantStatus("/v1/entries", "", http.StatusUnauthorized)
	f.wantStatus("/v1/entries", deskToken, http.StatusForbidden)
	f.wantStatus("/v1/entries", partyTokenPrefix+f.events[0].d.Discloser, http.StatusForbidden)
	f.wantStatus("/v1/entries?limit=0", fgToken, http.StatusBadRequest)
	f.wantStatus("/v1/entries?from=x", fgToken, http.StatusBadRequest)

	var got []*httpapi.EntryResponse
	from := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var page httpapi.EntriesResponse
		f.getJSON(fmt.Sprintf("/v1/entries?from=%d&limit=5", from), fgToken, &page)
		if page.TreeSize != 23 || len(page.Entries) > 5 {
			t.Fatalf("page from %d: tree size %d, %d entries", from, page.TreeSize, len(page.Entries))
		}
		got = append(got, page.Entries...)
		if page.Next == nil {
			break
		}
		if *page.Next != from+5 {
			t.Fatalf("page from %d says next %d", from, *page.Next)
		}
		from = *page.Next
	}
	if len(got) != 23 {
		t.Fatalf("paged through %d entries, want 23", len(got))
	}
	sc, _ := f.l.Covenant()
	for i, e := range got {
		rec, err := verifier.ParseLeafRecord(e.LeafRecord)
		if err != nil || e.Index != uint64(i) {
			t.Fatalf("entry %d: index %d, %v", i, e.Index, err)
		}
		var body []byte
		if i == 0 {
			if e.Type != verifier.EntryCovenant.String() || !bytes.Equal(e.Body, sc.Envelope.Raw) {
				t.Fatalf("entry 0 is not the signed covenant: %s", e.Type)
			}
			body = e.Body
		} else {
			body = e.Envelope
			if !bytes.Equal(body, f.events[i-1].env) {
				t.Fatalf("entry %d is not the event submitted for it", i)
			}
		}
		if rec.BodyHash != sha256.Sum256(body) {
			t.Fatalf("entry %d does not hash to its leaf record", i)
		}
	}
	var past httpapi.EntriesResponse
	f.getJSON("/v1/entries?from=100", fgToken, &past)
	if len(past.Entries) != 0 || past.Next != nil {
		t.Fatalf("entries past the tree: %d, next %v", len(past.Entries), past.Next)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	// The handler reads it on the server's goroutines.
	var unhealthy atomic.Bool
	f := newAPIFixture(t, httpapi.Config{Healthy: func() error {
		if unhealthy.Load() {
			return errors.New("nats: not connected")
		}
		return nil
	}})
	f.grow(12)
	f.reject(f.events[0].d.Discloser, events.ReasonWrongOrigin)

	var h struct {
		Status   string `json:"status"`
		TreeSize uint64 `json:"tree_size"`
	}
	f.getJSON("/healthz?role=active", "", &h)
	if h.Status != "ok" || h.TreeSize != 12 {
		t.Fatalf("healthz: %+v", h)
	}
	unhealthy.Store(true)
	f.wantStatus("/healthz", "", http.StatusServiceUnavailable)
	unhealthy.Store(false)
	f.getJSON("/healthz", "", &h)

	resp, body := f.get("/metrics", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if !bytes.Contains(body, []byte("\nspoor_ledger_tree_size 12\n")) {
		t.Fatalf("/metrics has no spoor_ledger_tree_size of 12:\n%s", body)
	}
	text := strings.ToLower(string(body))
	for _, ev := range f.events {
		for _, secret := range []string{ev.d.ID, ev.d.Subject.Pseudonym, ev.d.Subject.Pseudonym[:16], ev.d.TraceID} {
			if strings.Contains(text, strings.ToLower(secret)) {
				t.Fatalf("/metrics shows an event's id, trace id or pseudonym")
			}
		}
	}

	// Without a registry there is no /metrics.
	rec := httptest.NewRecorder()
	httpapi.New(httpapi.Config{Ledger: f.l}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("GET /metrics without a registry: %d, want 404", rec.Code)
	}

	// A stopped sequencer is unhealthy.
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	f.wantStatus("/healthz", "", http.StatusServiceUnavailable)
}

// TestStandbyServesReadsOnly runs the API over a standby ledger (an empty
// one, as a new replica starts): it answers health with its role and
// refuses inzage requests and erasures, which only the active ledger may
// take, so that nothing is written beside the replicated log.
func TestStandbyServesReadsOnly(t *testing.T) {
	e := testledger.New(t)
	s, err := pebblestore.Open(filepath.Join(e.Dir, "standby"), pebblestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := ledger.OpenStandby(context.Background(), ledger.Config{Store: s, Signer: e.Signer, Keys: e.Keys, IdleCosign: -1})
	if err != nil {
		t.Fatalf("OpenStandby: %v", err)
	}
	defer l.Close()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Tokens: map[[32]byte]httpapi.Principal{
		httpapi.TokenHash(deskToken): {Role: httpapi.RoleDesk, Name: "balie-1"},
		httpapi.TokenHash(fgToken):   {Role: httpapi.RoleFG, Name: "fg"},
	}}))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status, Role string
		TreeSize     uint64 `json:"tree_size"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || h.Role != "standby" || h.TreeSize != 0 {
		t.Fatalf("healthz of an empty standby: %s %+v %v", resp.Status, h, err)
	}
	resp, err = srv.Client().Get(srv.URL + "/healthz?role=active")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /healthz?role=active of a standby: %s, want 503", resp.Status)
	}
	for _, c := range []struct{ method, path, token string }{
		{http.MethodPost, "/v1/inzage", deskToken},
		{http.MethodGet, "/v1/inzage/abc", deskToken},
		{http.MethodPost, "/v1/inzage/abc/release", deskToken},
		{http.MethodPost, "/v1/erasures", fgToken},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ae struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&ae)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || ae.Code != "standby" {
			t.Errorf("%s %s on a standby: %s %q, want 503 standby", c.method, c.path, resp.Status, ae.Code)
		}
	}
	resp, err = srv.Client().Get(srv.URL + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /checkpoint of an empty standby: %s, want 503", resp.Status)
	}
}
