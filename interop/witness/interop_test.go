package witness_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	twclient "github.com/transparency-dev/witness/client/http"
	"github.com/transparency-dev/witness/persistence/inmemory"
	tw "github.com/transparency-dev/witness/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

// These tests hold Spoor's witness and Spoor's checkpoints against an
// implementation of the protocol not written here:
// github.com/transparency-dev/witness (its client and its witness).

// spoorLog signs real Spoor checkpoints (log key and the log's own
// timestamped cosigner) over a chain of roots.
type spoorLog struct {
	origin string
	vkey   string
	signer *verifier.CheckpointSigner
}

func newSpoorLog(t *testing.T, origin string) *spoorLog {
	t.Helper()
	logSkey, logVkey, cosSkey, _, err := verifier.GenerateLogKeys(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verifier.NewCheckpointSigner(logSkey, cosSkey)
	if err != nil {
		t.Fatal(err)
	}
	return &spoorLog{origin: origin, vkey: logVkey, signer: s}
}

// TestIndependentClientGetsCosignatures: transparency-dev/witness's HTTP
// client drives Spoor's witness through a first checkpoint, a stale old
// size (its client reads the 409's size) and an extension with a proof
// built by x/mod's tlog, and the cosignatures verify under the witness key.
func TestIndependentClientGetsCosignatures(t *testing.T) {
	lg := newSpoorLog(t, "spoor.example/interop")
	skey, vkey, err := verifier.GenerateWitnessKey("witness.example/interop")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Signer: signer, VKey: vkey, StateDir: t.TempDir(),
		Logs: []witness.LogConfig{{Origin: lg.origin, VKey: lg.vkey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	client := twclient.NewWitness(u, srv.Client())
	cosigner, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tree := memtree.New()
	tree.Grow(t, 9)
	cp9, err := lg.signer.Sign(lg.origin, 9, tree.Root(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	sigs, _, err := client.Update(ctx, 0, cp9, nil)
	if err != nil {
		t.Fatalf("first checkpoint through the independent client: %v", err)
	}
	checkCosigned(t, cp9, sigs, cosigner)

	tree.Grow(t, 16)
	cp25, err := lg.signer.Sign(lg.origin, 25, tree.Root(t, 25))
	if err != nil {
		t.Fatal(err)
	}
	_, size, err := client.Update(ctx, 0, cp25, nil)
	if !errors.Is(err, tw.ErrCheckpointStale) || size != 9 {
		t.Fatalf("stale old size through the independent client: size %d, %v; want ErrCheckpointStale with 9", size, err)
	}
	sigs, _, err = client.Update(ctx, size, cp25, tree.Proof(t, 9, 25))
	if err != nil {
		t.Fatalf("9 -> 25 through the independent client: %v", err)
	}
	checkCosigned(t, cp25, sigs, cosigner)
}

// TestIndependentWitnessCosignsSpoorCheckpoints: transparency-dev/witness
// (its witness and HTTP handler) cosigns real Spoor checkpoints sent in
// Spoor's request format, and Spoor's verifier reads its cosignatures.
func TestIndependentWitnessCosignsSpoorCheckpoints(t *testing.T) {
	lg := newSpoorLog(t, "spoor.example/interop-peer")
	skey, vkey, err := verifier.GenerateWitnessKey("peer.example/witness")
	if err != nil {
		t.Fatal(err)
	}
	peerSigner, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(lg.vkey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	peer, err := tw.New(ctx, tw.Opts{Persistence: inmemory.New(), Signers: []note.Signer{peerSigner},
		VerifierForLog: func(_ context.Context, origin string) (note.Verifier, bool, error) {
			return logV, origin == lg.origin, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", tw.NewHTTPHandler(peer).AddCheckpoint)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cosigner, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	post := func(req *witness.AddCheckpointRequest) (int, []byte) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(req.Marshal()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}

	tree := memtree.New()
	tree.Grow(t, 4)
	cp4, _ := lg.signer.Sign(lg.origin, 4, tree.Root(t, 4))
	code, sigs := post(&witness.AddCheckpointRequest{Checkpoint: cp4})
	if code != http.StatusOK {
		t.Fatalf("the independent witness refused a Spoor checkpoint: %d %s", code, sigs)
	}
	checkCosigned(t, cp4, sigs, cosigner)
	tree.Grow(t, 300)
	cp304, _ := lg.signer.Sign(lg.origin, 304, tree.Root(t, 304))
	code, sigs = post(&witness.AddCheckpointRequest{OldSize: 4, Proof: tree.Proof(t, 4, 304), Checkpoint: cp304})
	if code != http.StatusOK {
		t.Fatalf("the independent witness refused 4 -> 304 with Spoor's proof: %d %s", code, sigs)
	}
	checkCosigned(t, cp304, sigs, cosigner)
	// And it refuses a fork at the size it cosigned, as Spoor's does.
	fork, _ := lg.signer.Sign(lg.origin, 304, sha256.Sum256([]byte("another tree")))
	if code, _ := post(&witness.AddCheckpointRequest{OldSize: 304, Checkpoint: fork}); code == http.StatusOK {
		t.Fatal("the independent witness cosigned a fork")
	}
}

// checkCosigned checks that sigs holds a cosignature of checkpoint that
// verifies with cosigner, and that the checkpoint is otherwise untouched.
func checkCosigned(t *testing.T, checkpoint, sigs []byte, cosigner note.Verifier) {
	t.Helper()
	signed := append(bytes.TrimRight(bytes.Clone(checkpoint), "\n"), '\n')
	signed = append(signed, sigs...)
	n, err := note.Open(signed, note.VerifierList(cosigner))
	if err != nil {
		t.Fatalf("the cosignature does not verify: %v\n%s", err, signed)
	}
	if len(n.Sigs) != 1 {
		t.Fatalf("%d cosignatures by the witness key, want 1", len(n.Sigs))
	}
	if _, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err != nil {
		t.Fatalf("the cosignature carries no timestamp: %v", err)
	}
}
