package witness

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/spoor-ledger/spoor/verifier"
)

// BenchmarkAddCheckpoint16Logs measures one witness, served over real HTTP
// on loopback with its state on a real folder (each answer after its own
// write, fsync, rename and folder fsync), receiving add-checkpoint requests
// for 16 logs: request j goes to log j mod 16, each log's requests in order
// and one at a time (as a log keeps one request in flight per witness), the
// 16 logs at once. Every request extends the log's tree by 4 leaves and
// carries the real consistency proof from the previous size; the requests
// are made before the timer starts, so the figure is the witness's (and the
// loopback's), not the test log's signing. The target is 1,000
// successful add-checkpoints per second on 2 cores.
func BenchmarkAddCheckpoint16Logs(b *testing.B) {
	const logs, leavesPer = 16, 4
	skey, vkey, err := verifier.GenerateWitnessKey("witness.example/bench")
	if err != nil {
		b.Fatal(err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		b.Fatal(err)
	}
	var (
		cfg    []LogConfig
		bodies = make([][][]byte, logs)
	)
	for i := range logs {
		lg := newTestLog(b, fmt.Sprintf("spoor.example/bench-%02d", i))
		cfg = append(cfg, LogConfig{Origin: lg.origin, VKey: lg.vkey})
		var old int64
		for j := i; j < b.N; j += logs {
			lg.grow(leavesPer)
			size := old + leavesPer
			req := &AddCheckpointRequest{OldSize: uint64(old), Proof: lg.proof(old, size), Checkpoint: lg.checkpoint(size, lg.root(size))}
			bodies[i] = append(bodies[i], req.Marshal())
			old = size
		}
	}
	w, err := New(Config{Signer: signer, VKey: vkey, Logs: cfg, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * logs}}
	defer hc.CloseIdleConnections()

	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range logs {
		wg.Go(func() {
			for _, body := range bodies[i] {
				resp, err := hc.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				var line bytes.Buffer
				_, _ = line.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("log %d: %d %s", i, resp.StatusCode, line.Bytes())
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	for i, lc := range cfg {
		want := fmt.Sprintf("%s\n%d\n", lc.Origin, len(bodies[i])*leavesPer)
		if got := w.Latest(lc.Origin); len(bodies[i]) > 0 && !bytes.HasPrefix(got, []byte(want)) {
			b.Fatalf("log %d holds %q, want size %d", i, got, len(bodies[i])*leavesPer)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "add-checkpoints/s")
}
