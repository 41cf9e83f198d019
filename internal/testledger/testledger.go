// Package testledger builds real ledgers for tests: the demo covenant with
// fresh keys, real log and cosigner keys, Pebble on a temp dir, and signed
// synthetic events. Nothing is mocked.
package testledger

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
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
// that an earlier New or Load made there.
func Load(t testing.TB, dir string) *Env {
	t.Helper()
	m, err := demo.Ensure(filepath.Join(dir, "demo-keys"), "amersfoort")
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

// Open opens a ledger on Pebble in Dir/ledger (the same data on every
// call), with cfg's zero fields filled in.
func (e *Env) Open(t testing.TB, cfg ledger.Config) (*ledger.Ledger, *pebblestore.Store) {
	t.Helper()
	s, err := pebblestore.Open(filepath.Join(e.Dir, "ledger"), pebblestore.Config{})
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	cfg.Store = s
	cfg.Signer = e.Signer
	cfg.Keys = e.Keys
	if cfg.Covenant == nil {
		cfg.Covenant = e.Demo.Signed
	}
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		s.Close()
		t.Fatalf("ledger.Open: %v", err)
	}
	return l, s
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
