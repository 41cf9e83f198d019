package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/answer"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
)

// The roles of the route table in docs/security.md, in its column order.
var tableRoles = []string{"anonymous", "malformed token", "unknown token", "fg", "party", "own-party desk",
	"other-party desk", "central desk", "left desk", "no-party desk"}

// readRouteTable reads the route table of one demo covenant from
// docs/security.md: route -> role -> expected status.
func readRouteTable(t *testing.T, name string) map[string]map[string]int {
	t.Helper()
	f, err := os.Open("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	marker := "<!-- route-table " + name + " -->"
	for sc.Scan() && strings.TrimSpace(sc.Text()) != marker {
	}
	out := map[string]map[string]int{}
	var cols []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cols == nil:
			cols = cells[1:]
			if strings.Join(cols, ",") != strings.Join(tableRoles, ",") {
				t.Fatalf("route table %s: columns %q, want %q", name, cols, tableRoles)
			}
		case strings.HasPrefix(cells[0], "---"):
		default:
			if len(cells) != len(cols)+1 {
				t.Fatalf("route table %s: row %q has %d cells", name, cells[0], len(cells))
			}
			row := map[string]int{}
			for i, c := range cells[1:] {
				var code int
				if _, err := fmt.Sscan(c, &code); err != nil {
					t.Fatalf("route table %s: row %s, %s: %q is not a status", name, cells[0], cols[i], c)
				}
				row[cols[i]] = code
			}
			out[strings.Trim(cells[0], "`")] = row
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/security.md has no route table %q", marker)
	}
	return out
}

// authzFixture is a real ledger on a demo covenant, version 2 of which
// removed one party (left), served over HTTP with a token per role.
type authzFixture struct {
	t                *testing.T
	env              *testledger.Env
	l                *ledger.Ledger
	srv              *httptest.Server
	own, other, left string
	// auth is each role's Authorization header ("" for none).
	auth map[string]string
	// second is a second desk user of the own party: it makes the requests
	// and proposals that the own-party desk then decides.
	second     answer.DeskUser
	a          *answer.Service // the server's
	secondAuth string
	leftSecond string // a second desk user of the party that left
	ownLeaves  []uint64
	leftLeaf   uint64
	ownEvent   *events.Disclosure
	ownEnv     []byte
	child      string // pseudonym of the child the own party's events are about
	needles    []string
}

type demoParties struct{ own, other, left string }

var authzDemos = map[string]demoParties{
	"amersfoort": {"gemeente-amersfoort", "wijkteams-amersfoort", "de-kleine-schans"},
	"waterweg":   {"gemeente-vlaardingen", "swv-ppo-nwn", "gemeente-schiedam"},
}

func newAuthzFixture(t *testing.T, name string) *authzFixture {
	t.Helper()
	ps := authzDemos[name]
	e := testledger.NewDemo(t, name)
	f := &authzFixture{t: t, env: e, own: ps.own, other: ps.other, left: ps.left}
	// A child under 16: a parent's request about them is released
	// without the young person's consent (see event for its disclosures).
	for _, c := range e.Gen.Children() {
		if c.AgeBand != events.Age16Plus {
			f.child = c.Pseudonym
			break
		}
	}
	for _, c := range e.Gen.Children() {
		f.needles = append(f.needles, c.Pseudonym, c.BSN)
	}

	// Version 1: the three parties disclose. The subject index is on, as
	// spoor serve keeps it.
	vrf := subjectindex.GenerateVRFKey()
	l1, s1 := e.Open(t, ledger.Config{IdleCosign: -1, IndexVRF: vrf})
	var envs [][]byte
	envs = append(envs, f.event(f.left), f.event(f.other))
	for range 60 {
		envs = append(envs, f.event(f.own))
	}
	out, err := e.SubmitEnvelopes(t, l1, envs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("event %d: %v", i, o.Err)
		}
		switch {
		case i == 0:
			f.leftLeaf = o.Index
		case i >= 2:
			f.ownLeaves = append(f.ownLeaves, o.Index)
		}
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	// Version 2: the left party is gone.
	l, s := e.Open(t, ledger.Config{IdleCosign: -1, Covenant: e.CovenantWithout(t, f.left), IndexVRF: vrf})
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("ledger.Close: %v", err)
		}
		s.Close()
	})
	f.l = l
	f.a = answer.New(answer.Config{Ledger: l, LogVkey: e.LogVkey, CosignerVkey: e.CosVkey})

	tokens := map[[32]byte]httpapi.Principal{}
	f.auth = map[string]string{"anonymous": "", "malformed token": "Basic ZmFrZTpmYWtl", "unknown token": "Bearer " + strings.Repeat("ab", 32)}
	add := func(role string, p httpapi.Principal) string {
		tok := fmt.Sprintf("token-%s-%s", name, strings.ReplaceAll(role, " ", "-"))
		tokens[httpapi.TokenHash(tok)] = p
		f.auth[role] = "Bearer " + tok
		return tok
	}
	add("fg", httpapi.Principal{Role: httpapi.RoleFG, Name: "fg"})
	add("party", httpapi.Principal{Role: httpapi.RoleParty, Party: f.own, Name: f.own})
	add("own-party desk", httpapi.Principal{Role: httpapi.RoleDesk, Party: f.own, Name: "desk-own"})
	add("other-party desk", httpapi.Principal{Role: httpapi.RoleDesk, Party: f.other, Name: "desk-other"})
	add("central desk", httpapi.Principal{Role: httpapi.RoleDesk, Name: "desk-central"})
	add("left desk", httpapi.Principal{Role: httpapi.RoleDesk, Party: f.left, Name: "desk-left"})
	add("no-party desk", httpapi.Principal{Role: httpapi.RoleDesk, Party: "no-such-party", Name: "desk-none"})
	// The second desk users carry the same names as the first ones: they
	// are told apart by credential, not by name.
	second := add("second own", httpapi.Principal{Role: httpapi.RoleDesk, Party: f.own, Name: "desk-own"})
	sh := httpapi.TokenHash(second)
	f.second, f.secondAuth = answer.DeskUser{Name: "desk-own", Credential: hex.EncodeToString(sh[:])}, "Bearer "+second
	f.leftSecond = "Bearer " + add("second left", httpapi.Principal{Role: httpapi.RoleDesk, Party: f.left, Name: "desk-left"})

	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Metrics()...)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Ledger: l, Answers: f.a, Tokens: tokens, AccessLimit: 1 << 20, Gatherer: reg,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}))
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

// event signs a fresh synthetic disclosure by party about the fixture's
// child and remembers its bytes as needles.
func (f *authzFixture) event(party string) []byte {
	f.t.Helper()
	d, _ := f.env.Gen.Next()
	for d.Discloser != party && slices.Contains(d.Recipients, party) || d.SubjectAgeBand == events.Age16Plus {
		d, _ = f.env.Gen.Next()
	}
	d.Discloser = party
	d.Subject.Pseudonym = f.child
	env := f.env.Sign(f.t, d)
	e, err := events.ParseEnvelope(env)
	if err != nil {
		f.t.Fatal(err)
	}
	f.needles = append(f.needles, string(env), base64.StdEncoding.EncodeToString(e.Payload))
	if party == f.own && f.ownEvent == nil {
		f.ownEvent, f.ownEnv = d, env
	}
	return env
}

// nextOwnLeaf returns a disclosure of the own party not used before.
func (f *authzFixture) nextOwnLeaf() uint64 {
	f.t.Helper()
	if len(f.ownLeaves) < 2 {
		f.t.Fatal("the fixture ran out of disclosures")
	}
	// The first one stays: it is the event the party reads.
	idx := f.ownLeaves[1]
	f.ownLeaves = append(f.ownLeaves[:1], f.ownLeaves[2:]...)
	return idx
}

var ownScope = func(party string) verifier.BundleScope { return verifier.BundleScope{Parties: []string{party}} }

// request is one route's request for the table: made afresh for every role,
// so that one role's success does not change the next one's answer.
func (f *authzFixture) request(pattern string) (method, path, body string) {
	f.t.Helper()
	ctx := context.Background()
	method, path, _ = strings.Cut(pattern, " ")
	size := f.l.Head().Size
	sum := sha256.Sum256(f.ownEnv)
	registered := func() string {
		ar := &answer.AccessRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent, Scope: ownScope(f.own),
			Pseudonyms:  []verifier.SubjectPseudonym{{KeyID: f.env.Demo.SubjectKey.ID, Pseudonym: f.child}},
			RequestedBy: f.second.Name, RequestedByCredential: f.second.Credential}
		if err := f.a.RegisterAccess(ctx, ar); err != nil {
			f.t.Fatal(err)
		}
		return ar.ID
	}
	proposed := func() string {
		p, err := f.a.ProposeErasure(ctx, ownScope(f.own), f.second, f.nextOwnLeaf(), "avg-17-1-a")
		if err != nil {
			f.t.Fatal(err)
		}
		return p.ID
	}
	switch pattern {
	case "GET /tile/":
		path = fmt.Sprintf("/tile/0/000.p/%d", size%256)
	case "GET /v1/proof/inclusion":
		path = "/v1/proof/inclusion?index=1"
	case "GET /v1/proof/consistency":
		path = "/v1/proof/consistency?old=1"
	case "GET /v1/events/{id}/status":
		path = "/v1/events/" + f.ownEvent.ID + "/status?sha256=" + hex.EncodeToString(sum[:])
	case "GET /v1/events/{id}":
		path = "/v1/events/" + f.ownEvent.ID
	case "POST /v1/inzage":
		b, _ := json.Marshal(httpapi.InzageRegisterRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent,
			Pseudonyms: []verifier.SubjectPseudonym{{KeyID: f.env.Demo.SubjectKey.ID, Pseudonym: f.child}}})
		body = string(b)
	case "GET /v1/inzage/{id}":
		path = "/v1/inzage/" + registered()
	case "GET /v1/inzage/{id}/preview":
		path = "/v1/inzage/" + registered() + "/preview"
	case "POST /v1/inzage/{id}/release":
		path = "/v1/inzage/" + registered() + "/release"
	case "GET /v1/inzage/{id}/bundle":
		id := registered()
		third := answer.DeskUser{Name: "desk-third", Credential: strings.Repeat("3", 64)}
		if _, err := f.a.ReleaseAccess(ctx, ownScope(f.own), id, third, answer.Release{}); err != nil {
			f.t.Fatal(err)
		}
		path = "/v1/inzage/" + id + "/bundle"
	case "POST /processing-activities":
		body = fmt.Sprintf(`{"traceId":%q}`, f.ownEvent.TraceID)
	case "POST /v1/erasures":
		body = fmt.Sprintf(`{"leaf_index":%d,"ground":"avg-17-1-a"}`, f.nextOwnLeaf())
	case "GET /v1/erasures/{id}":
		path = "/v1/erasures/" + proposed()
	case "POST /v1/erasures/{id}/confirm":
		path = "/v1/erasures/" + proposed() + "/confirm"
	case "POST /v1/erasures/{id}/withdraw":
		path = "/v1/erasures/" + proposed() + "/withdraw"
	case "POST /v1/index/map-keys":
		b, _ := json.Marshal(verifier.IndexMapKeysRequest{Pairs: []verifier.IndexPairRequest{{IDType: string(events.IDTypeBSN),
			KeyID: f.env.Demo.SubjectKey.ID, Pseudonym: f.child, Party: f.own}}})
		body = string(b)
	}
	return method, path, body
}

func (f *authzFixture) do(method, path, auth, body string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// noPersonalData fails if a refusal carries envelope bytes, a pseudonym
// or a synthetic BSN of the log.
func (f *authzFixture) noPersonalData(what string, body []byte) {
	f.t.Helper()
	for _, n := range f.needles {
		if bytes.Contains(body, []byte(n)) {
			f.t.Errorf("%s: the refusal carries personal data (%d bytes of it)", what, len(n))
		}
	}
}

// TestRouteTable holds every registered route, with every role, on both
// demo covenants, to the status docs/security.md states.
func TestRouteTable(t *testing.T) {
	for name := range authzDemos {
		t.Run(name, func(t *testing.T) {
			table := readRouteTable(t, name)
			f := newAuthzFixture(t, name)
			srv := httpapi.New(httpapi.Config{Ledger: f.l, Gatherer: prometheus.NewRegistry()})
			seen := map[string]bool{}
			for _, rt := range srv.Routes() {
				seen[rt.Pattern] = true
				row, ok := table[rt.Pattern]
				if !ok {
					t.Errorf("route %s has no row in the route table of docs/security.md", rt.Pattern)
					continue
				}
				for _, role := range tableRoles {
					method, path, body := f.request(rt.Pattern)
					code, got := f.do(method, path, f.auth[role], body)
					if code != row[role] {
						t.Errorf("%s as %s: %d, want %d (%s)", rt.Pattern, role, code, row[role], bytes.TrimSpace(got))
					}
					if code >= 400 {
						f.noPersonalData(rt.Pattern+" as "+role, got)
					}
				}
			}
			for pattern := range table {
				if !seen[pattern] {
					t.Errorf("the route table lists %s, which the server does not register", pattern)
				}
			}
		})
	}
}

// TestErasureTakesTwoPeople walks the erasure workflow: a proposal is not
// an erasure; its proposer cannot confirm it, whatever name they use; a
// second desk user can, once; a withdrawn or expired proposal cannot be
// confirmed; one overtaken by another erasure answers 409; a leaf that
// does not exist answers 404.
func TestErasureTakesTwoPeople(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	own := f.auth["own-party desk"]
	propose := func(auth string, leaf uint64) (int, verifier.ErasureProposal) {
		code, b := f.do("POST", "/v1/erasures", auth, fmt.Sprintf(`{"leaf_index":%d,"ground":"avg-17-1-d"}`, leaf))
		var p verifier.ErasureProposal
		if code == http.StatusAccepted {
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
		}
		return code, p
	}
	leaf := f.nextOwnLeaf()
	code, p := propose(own, leaf)
	if code != http.StatusAccepted || p.Status != verifier.ErasureProposed {
		t.Fatalf("propose: %d %+v", code, p)
	}
	if _, err := f.l.Entry(context.Background(), leaf); err != nil {
		t.Fatalf("a proposal alone erased the disclosure: %v", err)
	}
	if code, _ := propose(f.secondAuth, leaf); code != http.StatusConflict {
		t.Errorf("a second proposal for the same leaf: %d, want 409", code)
	}
	if code, _ := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", own, ""); code != http.StatusForbidden {
		t.Errorf("the proposer confirms: %d, want 403", code)
	}
	code, b := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", f.secondAuth, "")
	if code != http.StatusOK {
		t.Fatalf("the second desk user (same name, own credential) confirms: %d %s", code, b)
	}
	var er httpapi.ErasureResponse
	if err := json.Unmarshal(b, &er); err != nil {
		t.Fatal(err)
	}
	if er.ErasedIndex != leaf || er.RuleID != "erasure:avg-17-1-d" || er.Proposal.DecidedByCredential != f.second.Credential {
		t.Errorf("confirmation: %+v", er)
	}
	if _, err := f.l.Entry(context.Background(), leaf); err == nil {
		t.Error("the confirmed erasure left the envelope")
	}
	body, err := f.l.Entry(context.Background(), er.TombstoneIndex)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("desk-own")) || bytes.Contains(body, []byte(f.second.Credential)) {
		t.Errorf("the public tombstone names the desk users: %s", body)
	}
	if code, _ := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", own, ""); code != http.StatusConflict {
		t.Errorf("confirming twice: %d, want 409", code)
	}
	// The FG sees who proposed and who confirmed.
	code, b = f.do("GET", "/v1/erasures/"+p.ID, f.auth["fg"], "")
	if code != http.StatusOK || !bytes.Contains(b, []byte(`"status": "confirmed"`)) || !bytes.Contains(b, []byte(f.second.Credential)) {
		t.Errorf("the FG's view of the proposal: %d %s", code, b)
	}

	// Withdrawn: not confirmable.
	_, p = propose(own, f.nextOwnLeaf())
	if code, _ := f.do("POST", "/v1/erasures/"+p.ID+"/withdraw", f.secondAuth, ""); code != http.StatusOK {
		t.Errorf("withdraw: %d", code)
	}
	if code, _ := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", f.secondAuth, ""); code != http.StatusConflict {
		t.Errorf("confirming a withdrawn proposal: %d, want 409", code)
	}

	// Overtaken: the disclosure was erased otherwise before the confirmation.
	leaf = f.nextOwnLeaf()
	_, p = propose(own, leaf)
	if _, err := f.l.Erase(context.Background(), leaf, "retention-test"); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", f.secondAuth, ""); code != http.StatusConflict {
		t.Errorf("confirming an erasure that retention overtook: %d, want 409", code)
	}
	if got, _ := f.l.ErasureProposal(context.Background(), p.ID); got.Status != verifier.ErasureOvertaken {
		t.Errorf("the overtaken proposal's status: %s", got.Status)
	}

	// A leaf that does not exist, or a covenant entry: 404, not "already erased".
	for _, leaf := range []uint64{f.l.Head().Size + 5, 1 << 62, 0} {
		if code, _ := propose(own, leaf); code != http.StatusNotFound {
			t.Errorf("proposing to erase leaf %d: %d, want 404", leaf, code)
		}
	}
	if _, err := f.l.Erase(context.Background(), f.l.Head().Size+5, "test"); err == nil || !strings.Contains(err.Error(), "beyond the log") {
		t.Errorf("ledger.Erase of a leaf beyond the log: %v", err)
	}

	// The desk of a party that left still erases its own disclosures, with
	// two people.
	code, p = propose(f.auth["left desk"], f.leftLeaf)
	if code != http.StatusAccepted {
		t.Fatalf("the left party's desk proposes: %d", code)
	}
	if code, b := f.do("POST", "/v1/erasures/"+p.ID+"/confirm", f.leftSecond, ""); code != http.StatusOK {
		t.Errorf("the left party's second desk user confirms: %d %s", code, b)
	}
}

// testWriter sends the server's log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestAuditListsErasuresOnRequest: the FG's audit lists every proposal
// with its decision, flags a scope that confirms more than the stated daily
// number, and names a tombstone on request that no two-person decision
// explains; the ledger's own source and the FG's HTTP source agree.
func TestAuditListsErasuresOnRequest(t *testing.T) {
	f := newAuthzFixture(t, "amersfoort")
	ctx := context.Background()
	scope := ownScope(f.own)
	first := answer.DeskUser{Name: "desk-own", Credential: "not-the-second"}
	for i := range 4 {
		p, err := f.a.ProposeErasure(ctx, scope, first, f.nextOwnLeaf(), "avg-17-1-a")
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 3:
			if _, err := f.a.WithdrawErasure(ctx, scope, f.second, p.ID); err != nil {
				t.Fatal(err)
			}
		default:
			if _, err := f.a.ConfirmErasure(ctx, scope, f.second, p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One erasure written around the two-person workflow.
	around, err := f.l.Erase(ctx, f.nextOwnLeaf(), "avg-17-1-a")
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{Keys: f.env.Keys, AdminVkey: f.env.Demo.AdminVkey, ErasureDailyLimit: 2}
	fromLedger, err := audit.Run(ctx, f.l.AuditSource(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fromHTTP, err := audit.Run(ctx, &audit.HTTPSource{URL: f.srv.URL, Token: strings.TrimPrefix(f.auth["fg"], "Bearer ")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, rep := range map[string]*audit.Report{"ledger": fromLedger, "http": fromHTTP} {
		ea := rep.ErasuresOnRequest
		if !rep.OK || ea == nil || !ea.Available {
			t.Fatalf("%s: ok %v, erasures %+v, problems %v", name, rep.OK, ea, rep.Problems)
		}
		if ea.ByStatus[verifier.ErasureConfirmed] != 3 || ea.ByStatus[verifier.ErasureWithdrawn] != 1 || len(ea.Proposals) != 4 {
			t.Errorf("%s: proposals by status %v", name, ea.ByStatus)
		}
		if len(ea.Flagged) != 1 || ea.Flagged[0].Scope != "party:"+f.own || ea.Flagged[0].Confirmed != 3 {
			t.Errorf("%s: flagged %+v, want the own party's scope with 3 on one day", name, ea.Flagged)
		}
		if len(ea.WithoutDecision) != 1 || ea.WithoutDecision[0] != around {
			t.Errorf("%s: tombstones without a decision %v, want [%d]", name, ea.WithoutDecision, around)
		}
	}
	a, _ := json.Marshal(fromLedger.ErasuresOnRequest)
	b, _ := json.Marshal(fromHTTP.ErasuresOnRequest)
	if !bytes.Equal(a, b) {
		t.Errorf("the two sources disagree:\n%s\n%s", a, b)
	}
}

// TestReleaseWarnsOfPossibleBSN: releasing an answer in which a
// disclosure's free text holds a number that passes the elfproef warns the
// second desk user (Spoor-Warning); an answer without one does not.
func TestReleaseWarnsOfPossibleBSN(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	release := func() http.Header {
		t.Helper()
		_, path, _ := f.request("POST /v1/inzage/{id}/release")
		req, _ := http.NewRequest("POST", f.srv.URL+path, nil)
		req.Header.Set("Authorization", f.auth["own-party desk"])
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("release: %s", resp.Status)
		}
		return resp.Header
	}
	if w := release().Get(httpapi.WarningHeader); w != "" {
		t.Fatalf("an answer without a possible BSN warns: %s", w)
	}
	d, _ := f.env.Gen.Next()
	for slices.Contains(d.Recipients, f.own) {
		d, _ = f.env.Gen.Next()
	}
	d.Discloser, d.Subject.Pseudonym = f.own, f.child
	d.Justification = "Besproken in het MDO, dossier " + f.env.Gen.Children()[1].BSN
	out, err := f.env.SubmitEnvelopes(t, f.l, [][]byte{f.env.Sign(t, d)})
	if err != nil || out[0].Err != nil {
		t.Fatal(err, out)
	}
	w := release().Get(httpapi.WarningHeader)
	if !strings.Contains(w, "possible-bsn") || !strings.Contains(w, fmt.Sprint(out[0].Index)) {
		t.Errorf("the release of an answer holding a possible BSN warns %q, want possible-bsn naming leaf %d", w, out[0].Index)
	}
	if strings.Contains(w, f.env.Gen.Children()[1].BSN) {
		t.Error("the warning repeats the number")
	}
}

// TestErasureGroundIsAClosedList: the ground becomes part of the public
// tombstone's rule id, so only the grounds of AVG art. 17(1) are taken; a
// BSN, or anything else a desk user types, is refused without being echoed
// and leaves no proposal and no tombstone.
func TestErasureGroundIsAClosedList(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	size := f.l.Head().Size
	leaf := f.nextOwnLeaf()
	bsn := f.env.Gen.Children()[2].BSN
	for _, ground := range []string{bsn, "avg-17-1-g", "erasure-" + bsn, "avg-17", ""} {
		code, b := f.do("POST", "/v1/erasures", f.auth["own-party desk"], fmt.Sprintf(`{"leaf_index":%d,"ground":%q}`, leaf, ground))
		if code != http.StatusBadRequest {
			t.Errorf("ground %q: %d %s, want 400", ground, code, b)
		}
		if bytes.Contains(b, []byte(bsn)) {
			t.Errorf("the refusal echoes the BSN: %s", b)
		}
	}
	if ps, err := f.l.ErasureProposals(context.Background(), nil); err != nil || len(ps) != 0 {
		t.Fatalf("refused grounds left proposals: %v %v", ps, err)
	}
	if got := f.l.Head().Size; got != size {
		t.Fatalf("the log grew from %d to %d", size, got)
	}
	for _, ground := range verifier.ErasureGrounds() {
		if code, b := f.do("POST", "/v1/erasures", f.auth["own-party desk"], fmt.Sprintf(`{"leaf_index":%d,"ground":%q}`, f.nextOwnLeaf(), ground)); code != http.StatusAccepted {
			t.Errorf("ground %s: %d %s, want 202", ground, code, b)
		}
	}
}

// TestInzageListKeepsToTheScope: GET /v1/inzage lists the requests of the
// caller's scope and no other: a desk of another party sees none of the
// own party's requests, a second desk user of the own party sees them all.
func TestInzageListKeepsToTheScope(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	own, other := f.auth["own-party desk"], f.auth["other-party desk"]
	register := func(auth string) string {
		b, _ := json.Marshal(httpapi.InzageRegisterRequest{IDType: events.IDTypeBSN, Relation: verifier.RelationParent,
			Pseudonyms: []verifier.SubjectPseudonym{{KeyID: f.env.Demo.SubjectKey.ID, Pseudonym: f.child}}})
		code, body := f.do("POST", "/v1/inzage", auth, string(b))
		if code != http.StatusCreated {
			t.Fatalf("register: %d %s", code, body)
		}
		var st httpapi.InzageStatus
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	ownIDs := []string{register(own), register(own)}
	otherID := register(other)
	list := func(auth string) []string {
		code, body := f.do("GET", "/v1/inzage", auth, "")
		if code != http.StatusOK {
			t.Fatalf("list: %d %s", code, body)
		}
		var l httpapi.InzageList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, st := range l.Requests {
			ids = append(ids, st.ID)
			if bytes.Contains(body, []byte(f.child)) {
				t.Errorf("the list carries a pseudonym")
			}
		}
		return ids
	}
	if got := list(f.secondAuth); !slices.Equal(got, ownIDs) {
		t.Errorf("the own party's second desk user lists %v, want %v", got, ownIDs)
	}
	if got := list(other); !slices.Equal(got, []string{otherID}) {
		t.Errorf("the other party's desk lists %v, want only its own %v", got, otherID)
	}
}

// TestInzagePreview: the second desk user sees what the answer would show
// before releasing it: the child's disclosures of the scope by leaf index,
// with the covenant's labels, no pseudonym, no BSN and no free text; the
// indices are what a release withholds; a released request has none.
func TestInzagePreview(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	_, path, _ := f.request("GET /v1/inzage/{id}/preview")
	code, body := f.do("GET", path, f.auth["own-party desk"], "")
	if code != http.StatusOK {
		t.Fatalf("preview: %d %s", code, body)
	}
	for _, n := range f.needles {
		if bytes.Contains(body, []byte(n)) {
			t.Fatal("the preview carries a pseudonym or a BSN")
		}
	}
	var pv httpapi.InzagePreview
	if err := json.Unmarshal(body, &pv); err != nil {
		t.Fatal(err)
	}
	if len(pv.Disclosures) == 0 {
		t.Fatal("the preview lists no disclosure of the child")
	}
	for _, d := range pv.Disclosures {
		if !slices.Contains(f.ownLeaves, d.Index) {
			t.Errorf("leaf %d is not one of the own party's disclosures", d.Index)
		}
		if d.Discloser == "" || d.Purpose == "" || len(d.Categories) == 0 || d.OccurredAt.IsZero() {
			t.Errorf("leaf %d: an entry without its date, organisation, purpose or categories: %+v", d.Index, d)
		}
	}
	if strings.Contains(string(body), "justification") {
		t.Error("the preview carries free text")
	}
	// Withholding a previewed disclosure is what the release takes.
	w := pv.Disclosures[0].Index
	rel, _ := json.Marshal(httpapi.InzageReleaseRequest{Withheld: []answer.Withhold{{Index: w, Ground: verifier.WithholdAVG23}}})
	releasePath := strings.TrimSuffix(path, "/preview") + "/release"
	if code, resp := f.do("POST", releasePath, f.auth["own-party desk"], string(rel)); code != http.StatusOK {
		t.Fatalf("release withholding leaf %d: %d %s", w, code, resp)
	}
	if code, _ := f.do("GET", path, f.auth["own-party desk"], ""); code != http.StatusConflict {
		t.Errorf("preview of a released request: %d, want 409", code)
	}
}

// TestReleaseConsentNeedsReference: young_person_consent and a
// consent_reference come together, and a reference holding a number like
// a BSN is refused; each is a 400 and leaves the request open.
func TestReleaseConsentNeedsReference(t *testing.T) {
	f := newAuthzFixture(t, "waterweg")
	_, path, _ := f.request("POST /v1/inzage/{id}/release")
	for _, body := range []string{
		`{"young_person_consent":true}`,
		`{"consent_reference":"dossier 7"}`,
		`{"young_person_consent":true,"consent_reference":"bsn 123456782"}`,
	} {
		code, resp := f.do("POST", path, f.auth["own-party desk"], body)
		if code != http.StatusBadRequest || !strings.Contains(string(resp), "invalid_request") {
			t.Errorf("%s: %d %s, want 400 invalid_request", body, code, resp)
		}
	}
	if code, resp := f.do("POST", path, f.auth["own-party desk"], ""); code != http.StatusOK {
		t.Fatalf("the release after the refusals: %d %s", code, resp)
	}
}
