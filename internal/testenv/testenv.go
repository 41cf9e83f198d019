// Package testenv is the material of a test log, without a store: the demo
// covenant with fresh keys, real log and cosigner keys, and signed synthetic
// events, and the helpers that submit them to a ledger. It imports no
// storage backend, so that a conformance suite (ledger/logtest) can use it
// with whatever Store its caller hands it; internal/testledger adds a
// ledger on Pebble in the same folder. Nothing is mocked.
package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// Env is the material of one test log.
type Env struct {
	Dir     string
	Demo    *demo.Material
	LogSkey string
	LogVkey string
	CosSkey string
	CosVkey string
	Keys    *verifier.LogKeys
	Signer  *verifier.CheckpointSigner
	Gen     *synth.Generator
	genMu   sync.Mutex
}

// New makes the keys and covenant of a test log in a temp dir.
func New(t testing.TB) *Env {
	t.Helper()
	return Load(t, t.TempDir())
}

// logKeysFile holds an Env's log and cosigner keys, so that another process
// (a crash test's child) can Load the same log.
const logKeysFile = "log-keys.json"

// Load makes the keys and covenant of a test log in dir, or loads those
// that an earlier New or Load made there, on the demo covenant of regio
// Amersfoort.
func Load(t testing.TB, dir string) *Env {
	t.Helper()
	return LoadDemo(t, dir, "amersfoort")
}

// NewDemo is New on the named demo covenant ("amersfoort", "waterweg").
func NewDemo(t testing.TB, name string) *Env {
	t.Helper()
	return LoadDemo(t, t.TempDir(), name)
}

// LoadDemo is Load on the named demo covenant.
func LoadDemo(t testing.TB, dir, name string) *Env {
	t.Helper()
	m, err := demo.Ensure(datadir.Dir(dir).DemoKeys(), name)
	if err != nil {
		t.Fatalf("demo covenant: %v", err)
	}
	e := &Env{Dir: dir, Demo: m}
	var keys [4]string
	if data, err := os.ReadFile(filepath.Join(dir, logKeysFile)); err == nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			t.Fatalf("%s: %v", logKeysFile, err)
		}
	} else {
		if keys[0], keys[1], keys[2], keys[3], err = verifier.GenerateLogKeys(m.Signed.Covenant.Origin); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(keys)
		if err := os.WriteFile(filepath.Join(dir, logKeysFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.LogSkey, e.LogVkey, e.CosSkey, e.CosVkey = keys[0], keys[1], keys[2], keys[3]
	if e.Keys, err = verifier.ParseLogKeys(e.LogVkey, e.CosVkey); err != nil {
		t.Fatal(err)
	}
	if e.Signer, err = verifier.NewCheckpointSigner(e.LogSkey, e.CosSkey); err != nil {
		t.Fatal(err)
	}
	if e.Gen, err = synth.New(m.Signed.Covenant, m.SubjectKey, 1, 200); err != nil {
		t.Fatal(err)
	}
	return e
}

// CovenantWithout returns covenant version 2, following the demo's version
// 1, in which party has left the covenant, signed by the demo
// administrator.
func (e *Env) CovenantWithout(t testing.TB, party string) *events.SignedCovenant {
	t.Helper()
	v1 := e.Demo.Signed
	y := string(v1.Envelope.Payload)
	start := strings.Index(y, "  - id: "+party+"\n")
	if start < 0 || !strings.Contains(y, "\nversion: 1\n") {
		t.Fatalf("the demo covenant has no party %s, or is not version 1", party)
	}
	// The party's block runs to the next party, comment or top-level key.
	end := start + 1
	for end < len(y) {
		nl := strings.IndexByte(y[end:], '\n')
		if nl < 0 {
			break
		}
		end += nl + 1
		if strings.HasPrefix(y[end:], "  - id: ") || strings.HasPrefix(y[end:], "  #") || (end < len(y) && y[end] != ' ') {
			break
		}
	}
	y = y[:start] + y[end:]
	y = strings.Replace(y, "\nversion: 1\n", "\nversion: 2\n", 1)
	y = strings.Replace(y, "\nprevious: \"\"\n", "\nprevious: \""+v1.Hash()+"\"\n", 1)
	signed, err := events.SignCovenant([]byte(y), e.Demo.AdminSkey)
	if err != nil {
		t.Fatalf("covenant v2 without %s: %v", party, err)
	}
	sc, err := events.ParseSignedCovenant(signed)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.Covenant.Party(party); ok {
		t.Fatalf("covenant v2 still lists %s", party)
	}
	return sc
}

// Event returns a fresh signed synthetic event: its envelope and payload.
func (e *Env) Event(t testing.TB) ([]byte, *events.Disclosure) {
	t.Helper()
	e.genMu.Lock()
	d, _ := e.Gen.Next()
	e.genMu.Unlock()
	return e.Sign(t, d), d
}

// Sign seals and signs d with its discloser's demo key.
func (e *Env) Sign(t testing.TB, d *events.Disclosure) []byte {
	t.Helper()
	k := e.Demo.Parties[d.Discloser]
	if k == nil {
		t.Fatalf("no demo key for party %q", d.Discloser)
	}
	events.Seal(d, k)
	env, err := events.Sign(d, k)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return env
}

// Submission opens env as ingest would and returns its Submission.
func (e *Env) Submission(t testing.TB, l *ledger.Ledger, env []byte) ledger.Submission {
	t.Helper()
	sc, _ := l.Covenant()
	d, _, err := events.Open(env, l.Origin(), sc.Covenant)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return ledger.Submission{Envelope: env, Disclosure: d, Findings: sc.Covenant.Check(d)}
}

// SubmitEvents submits n fresh events in one Submit and waits (up to 30 s)
// for their outcomes.
func (e *Env) SubmitEvents(t testing.TB, l *ledger.Ledger, n int) ([]ledger.Outcome, error) {
	t.Helper()
	envs := make([][]byte, n)
	for i := range envs {
		envs[i], _ = e.Event(t)
	}
	return e.SubmitEnvelopes(t, l, envs)
}

// SubmitEnvelopes opens envs as ingest would, submits them in one Submit
// and waits (up to 30 s) for their outcomes.
func (e *Env) SubmitEnvelopes(t testing.TB, l *ledger.Ledger, envs [][]byte) ([]ledger.Outcome, error) {
	t.Helper()
	subs := make([]ledger.Submission, len(envs))
	for i, env := range envs {
		subs[i] = e.Submission(t, l, env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := l.Submit(ctx, subs)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// CovenantWithPolicy returns covenant version 2, following the demo's
// version 1, with policy (a C2SP tlog-policy text) as its witness policy,
// signed by the demo administrator: how a covenant takes on witnesses.
func (e *Env) CovenantWithPolicy(t testing.TB, policy string) *events.SignedCovenant {
	t.Helper()
	sc, err := e.Demo.CovenantWithPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
