package main

// A `spoor serve` process whose covenant names three `spoor witness serve`
// processes, for the tests of issue 20's "What must show" that need the
// whole ledger as a process: the split view (witness_split_test.go) and the
// ledger killed between the witnesses' answer and its own store
// (witness_crash_test.go).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
	"github.com/spoor-ledger/spoor/witness"
)

// witnessNames are the three witnesses of the policy, one per FG; the
// quorum is two of them.
var witnessNames = []string{"fg-a", "fg-b", "fg-c"}

// witnessedServe is `spoor serve` on the demo covenant's version 2, which
// adds a 2-of-3 witness policy naming three real witness processes, signed
// with the demo administrator key: the covenant chain a real deployment
// has after it adopted witnesses.
type witnessedServe struct {
	t   *testing.T
	bin string
	srv *serveProc
	ws  map[string]*witnessProc

	origin, logVkey string
	keys            *verifier.LogKeys
	// rogue signs with the log key and the log's cosigner key as serve
	// keeps them in its data folder: what an operator turned rogue holds.
	rogue    *verifier.CheckpointSigner
	policy   *events.WitnessPolicy
	demo     *demo.Material
	adminPub string // the demo administrator's verifier key file
	// deskTokens are the bearer tokens of desk-1 and desk-2.
	deskTokens map[string]string
	gen        *synth.Generator
	hc         *http.Client
}

// startWitnessedServe runs serve once on the demo covenant (version 1), so
// that it makes its log keys; starts the three witnesses for that log;
// signs version 2 with their policy; and starts serve on it with extra
// flags. It returns once the first checkpoint under the policy (the one
// with version 2's leaf) is witnessed.
func startWitnessedServe(t *testing.T, extra ...string) *witnessedServe {
	t.Helper()
	bin := buildSpoor(t)
	dir := t.TempDir()
	// No operations listener: its default port would be shared with any
	// other serve on the machine.
	srv := newServeProc(t, bin, dir, "--ops-http", "")
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(srv.data, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	w := &witnessedServe{t: t, bin: bin, srv: srv, ws: map[string]*witnessProc{}, logVkey: read("log.vkey"),
		hc: &http.Client{Timeout: 10 * time.Second}}
	var err error
	if w.keys, err = verifier.ParseLogKeys(w.logVkey, read("cosigner.vkey")); err != nil {
		t.Fatal(err)
	}
	w.origin = w.keys.Log.Name()
	if w.rogue, err = verifier.NewCheckpointSigner(read("log.key"), read("cosigner.key")); err != nil {
		t.Fatal(err)
	}
	if w.demo, err = demo.Load(filepath.Join(srv.data, "demo-keys")); err != nil {
		t.Fatal(err)
	}
	w.adminPub = filepath.Join(srv.data, "demo-keys", demo.AdminPubFile)
	if w.gen, err = synth.New(w.demo.Signed.Covenant, w.demo.SubjectKey, 20, 12); err != nil {
		t.Fatal(err)
	}

	var policy strings.Builder
	fmt.Fprintf(&policy, "log %s\n", w.logVkey)
	for _, n := range witnessNames {
		p := newWitnessProc(t, bin, "witness.example/"+n, witness.LogConfig{Origin: w.origin, VKey: w.logVkey})
		p.start()
		w.ws[n] = p
		fmt.Fprintf(&policy, "witness %s %s %s\n", n, p.vkey, p.url())
	}
	fmt.Fprintf(&policy, "group fgs 2 %s\nquorum fgs\n", strings.Join(witnessNames, " "))
	if w.policy, err = events.ParseWitnessPolicy(policy.String()); err != nil {
		t.Fatal(err)
	}
	v2 := (&testledger.Env{Demo: w.demo}).CovenantWithPolicy(t, policy.String())
	covFile := filepath.Join(dir, "covenant-v2.signed")
	if err := os.WriteFile(covFile, v2.Envelope.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// With --covenant serve makes no demo desk users: two of our own.
	w.deskTokens = map[string]string{}
	var users []tokenEntry
	for _, name := range []string{"desk-1", "desk-2"} {
		tok := rand.Text()
		w.deskTokens[name] = tok
		h := httpapi.TokenHash(tok)
		users = append(users, tokenEntry{Name: name, Role: string(httpapi.RoleDesk), TokenSHA256: hex.EncodeToString(h[:])})
	}
	tokFile := filepath.Join(dir, "tokens.json")
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.extra = append(srv.extra, "--covenant", covFile, "--admin", "@"+w.adminPub, "--tokens", tokFile,
		"--witness-interval", "20ms")
	srv.extra = append(srv.extra, extra...)
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if h := w.waitWitnessed(); h.TreeSize < 2 {
		t.Fatalf("version 2 of the covenant was not logged: tree size %d", h.TreeSize)
	}
	return w
}

// health is the body of GET /healthz.
type health struct {
	Status            string `json:"status"`
	TreeSize          uint64 `json:"tree_size"`
	WitnessedTreeSize uint64 `json:"witnessed_tree_size"`
	Witnessing        string `json:"witnessing"`
}

func (w *witnessedServe) health() health {
	w.t.Helper()
	var h health
	if err := json.Unmarshal(w.get("/healthz"), &h); err != nil {
		w.t.Fatalf("/healthz: %v", err)
	}
	return h
}

func (w *witnessedServe) get(path string) []byte {
	w.t.Helper()
	resp, err := w.hc.Get(w.srv.url() + path)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET %s: %d %v %q", path, resp.StatusCode, err, b)
	}
	return b
}

// waitWitnessed waits until the witnessed head has the signed head's size
// (the load is stopped, so that this happens) and returns /healthz then.
func (w *witnessedServe) waitWitnessed() health {
	w.t.Helper()
	return w.waitWitnessedFrom(1)
}

// publishAndWitness publishes n events and waits until the log has all of
// them and its witnessed head has caught up.
func (w *witnessedServe) publishAndWitness(n int) health {
	w.t.Helper()
	before := w.health().TreeSize
	w.publish(n)
	return w.waitWitnessedFrom(before + uint64(n))
}

// waitWitnessedFrom waits until the signed head has at least size leaves
// and the witnessed head has the signed head's size.
func (w *witnessedServe) waitWitnessedFrom(size uint64) health {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := w.health()
		if h.TreeSize >= size && h.WitnessedTreeSize == h.TreeSize {
			return h
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the witnessed head did not reach the signed head within 30 s: %+v", h)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkpoint returns /checkpoint (the witnessed head), checked to meet the
// policy, with the witnesses that cosigned it.
func (w *witnessedServe) checkpoint() (*verifier.Checkpoint, map[string]bool) {
	w.t.Helper()
	resp, err := w.hc.Get(w.srv.url() + "/checkpoint")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(httpapi.WitnessedHeader) != "true" {
		w.t.Fatalf("/checkpoint: %d %s=%q %q", resp.StatusCode, httpapi.WitnessedHeader, resp.Header.Get(httpapi.WitnessedHeader), b)
	}
	cp, err := verifier.OpenCheckpoint(b, w.keys)
	if err != nil {
		w.t.Fatalf("/checkpoint: %v\n%s", err, b)
	}
	res, err := verifier.CheckWitnessPolicy(cp, w.policy)
	if err != nil || !res.Met {
		w.t.Fatalf("/checkpoint misses the quorum: %+v, %v\n%s", res, err, b)
	}
	by := map[string]bool{}
	for _, c := range res.Cosigned {
		by[c.Witness] = true
	}
	return cp, by
}

// waitRounds waits until this run of serve has stored the cosignatures of
// n rounds (spoor_witnessing_rounds_total{result="witnessed"}).
func (w *witnessedServe) waitRounds(n int) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for line := range strings.Lines(string(w.get("/metrics"))) {
			if v, ok := strings.CutPrefix(line, `spoor_witnessing_rounds_total{result="witnessed"} `); ok {
				if got, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && got >= n {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("fewer than %d witnessed rounds within 30 s; alarms: %v; /healthz: %+v", n, w.alarmMetrics(), w.health())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alarmMetrics returns the ledger's spoor_witnessing_alarms_total series
// that are not zero, as "witness/kind" -> count.
func (w *witnessedServe) alarmMetrics() map[string]int {
	w.t.Helper()
	out := map[string]int{}
	for line := range strings.Lines(string(w.get("/metrics"))) {
		rest, ok := strings.CutPrefix(line, "spoor_witnessing_alarms_total{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			w.t.Fatalf("metrics line %q: %v", line, err)
		}
		if n == 0 {
			continue
		}
		var kind, wit string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "kind":
				kind = strings.Trim(v, `"`)
			case "witness":
				wit = strings.Trim(v, `"`)
			}
		}
		out[wit+"/"+kind] = n
	}
	return out
}

// publish publishes n synthetic disclosures on the ledger's bus, waiting
// for the bus's acks, not for receipts.
func (w *witnessedServe) publish(n int) {
	w.t.Helper()
	if got := w.publishUntil(n, nil); got != n {
		w.t.Fatalf("published %d of %d events", got, n)
	}
}

// publishUntil publishes up to n synthetic disclosures, each waiting for
// the bus's ack, and returns how many were acked. When stopped is not nil
// and reports true after a publish failed (the ledger was killed under
// the load, as a crash test wants), it stops there; any other failure
// fails the test.
func (w *witnessedServe) publishUntil(n int, stopped func() bool) int {
	w.t.Helper()
	nc, err := nats.Connect(w.srv.natsURL(), nats.Name("spoor-witness-test"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		w.t.Fatal(err)
	}
	pubs := map[string]*natsbus.Publisher{}
	for i := range n {
		d, _ := w.gen.Next()
		p := pubs[d.Discloser]
		if p == nil {
			key, ok := w.demo.Parties[d.Discloser]
			if !ok {
				w.t.Fatalf("a synthetic disclosure by %q, which has no demo key", d.Discloser)
			}
			if p, err = natsbus.NewPublisher(js, key); err != nil {
				w.t.Fatal(err)
			}
			pubs[d.Discloser] = p
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := p.Publish(ctx, d)
		cancel()
		if err != nil {
			if stopped != nil && stopped() {
				return i
			}
			w.t.Fatalf("publish: %v", err)
		}
	}
	return n
}

// leafRecords reads the log's leaf records [0, n) over its tiles API,
// each checked against the checkpoint cp.
func (w *witnessedServe) leafRecords(cp *verifier.Checkpoint, n uint64) [][]byte {
	w.t.Helper()
	c := &tlogclient.Client{URL: w.srv.url(), Keys: w.keys, HTTP: w.hc}
	var out [][]byte
	for leaf, err := range c.LeafRecords(context.Background(), cp.Tree(), 0, n) {
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, leaf.Data)
	}
	return out
}

// sha256Sum is a short helper for distinct forged leaves.
func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
