// Package witnesstest runs real Spoor witnesses (package witness, with
// their state on a temp folder and fsync) on loopback for tests, and
// writes the witness policy that names them. A witness can be stopped and
// started again on the same address and state, as a witness that goes
// away and comes back.
package witnesstest

import (
	"errors"
	"net"
	"net/http"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// Witness is one running (or stopped) witness.
type Witness struct {
	t    testing.TB
	Name string
	// VKey is its cosignature verifier key; URL its tlog-witness prefix.
	VKey, URL string
	skey      string
	dir       string
	addr      string
	logs      []witness.LogConfig

	W   *witness.Witness
	srv *http.Server
}

// Start starts a witness named name (its key name is
// "witness.example/<name>") for logs; it is stopped at the test's end.
func Start(t testing.TB, name string, logs ...witness.LogConfig) *Witness {
	t.Helper()
	skey, vkey, err := verifier.GenerateWitnessKey("witness.example/" + name)
	if err != nil {
		t.Fatal(err)
	}
	w := &Witness{t: t, Name: name, VKey: vkey, skey: skey, dir: t.TempDir(), addr: "127.0.0.1:0", logs: logs}
	w.Restart()
	w.URL = "http://" + w.addr
	t.Cleanup(w.Stop)
	return w
}

// Restart starts a stopped witness again on its address and state.
func (w *Witness) Restart() {
	w.t.Helper()
	if w.srv != nil {
		return
	}
	signer, err := fnote.NewSignerForCosignatureV1(w.skey)
	if err != nil {
		w.t.Fatal(err)
	}
	w.W, err = witness.New(witness.Config{Signer: signer, VKey: w.VKey, Logs: w.logs, StateDir: w.dir})
	if err != nil {
		w.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		w.t.Fatalf("witness %s: listen on %s again: %v", w.Name, w.addr, err)
	}
	w.addr = ln.Addr().String()
	w.srv = &http.Server{Handler: w.W.Handler()}
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.t.Errorf("witness %s: %v", w.Name, err)
		}
	}()
}

// Stop stops the witness; its state stays for Restart.
func (w *Witness) Stop() {
	if w.srv == nil {
		return
	}
	_ = w.srv.Close()
	_ = w.W.Close()
	w.srv = nil
}

// Policy returns a C2SP tlog-policy text for the log with logVkey in which
// k of ws must cosign.
func Policy(logVkey string, k int, ws ...*Witness) string {
	members := make([]events.PolicyMember, len(ws))
	for i, w := range ws {
		members[i] = events.PolicyMember{Name: w.Name, VKey: w.VKey, URL: w.URL}
	}
	return events.ThresholdPolicy(logVkey, "all-fgs", k, members)
}
