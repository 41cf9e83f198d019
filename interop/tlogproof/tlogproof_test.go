// Package tlogproof checks that the c2sp.org/tlog-proof@v1 files Spoor
// writes (verifier.TlogProof, spoor proof) are checked by code not written
// here: the inclusion proof by golang.org/x/mod's tlog.CheckRecord, the
// log's signature by x/mod's note.Open, and the witness policy by
// Tessera's own policy code (NewWitnessGroupFromPolicy, Satisfied) on the
// very policy text of the covenant.
package tlogproof

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/internal/testledger"
	"github.com/spoor-ledger/spoor/internal/witnesstest"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/witnessing"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/witness"
)

func TestSpoorTlogProofCheckedByOthers(t *testing.T) {
	env := testledger.New(t)
	logCfg := witness.LogConfig{Origin: env.Keys.Log.Name(), VKey: env.LogVkey}
	ws := []*witnesstest.Witness{witnesstest.Start(t, "fg-a", logCfg), witnesstest.Start(t, "fg-b", logCfg), witnesstest.Start(t, "fg-c", logCfg)}
	policyText := witnesstest.Policy(env.LogVkey, 2, ws...)
	l1, s1 := env.Open(t, ledger.Config{IdleCosign: -1})
	l1.Close()
	s1.Close()
	l, s := env.Open(t, ledger.Config{IdleCosign: -1, Covenant: env.CovenantWithPolicy(t, policyText)})
	defer s.Close()
	defer l.Close()
	wit, err := witnessing.New(witnessing.Config{Ledger: l, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = wit.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := env.SubmitEvents(t, l, 300); err != nil {
		t.Fatal(err)
	}
	for w := l.WitnessedHead(); w == nil || w.Size < l.Head().Size; w = l.WitnessedHead() {
		select {
		case <-t.Context().Done():
			t.Fatal("never witnessed")
		case <-time.After(5 * time.Millisecond):
		}
	}
	w := l.WitnessedHead()
	const index = 123
	proof, err := l.InclusionProof(t.Context(), index, w.Size)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.LeafRecordBytes(t.Context(), index)
	if err != nil {
		t.Fatal(err)
	}
	file := (&verifier.TlogProof{Extra: rec, Index: index, Proof: proof, Checkpoint: w.Note}).Marshal()

	// Read as the specification says, with nothing of Spoor.
	head, checkpoint, ok := strings.Cut(string(file), "\n\n")
	if !ok {
		t.Fatal("no blank line")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") || !strings.HasPrefix(lines[2], "index ") {
		t.Fatalf("layout:\n%s", head)
	}
	extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var rp tlog.RecordProof
	for _, l := range lines[3:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			t.Fatal(err)
		}
		rp = append(rp, h)
	}
	logV, err := note.NewVerifier(env.LogVkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(checkpoint), note.VerifierList(logV))
	if err != nil {
		t.Fatalf("x/mod's note.Open refuses the checkpoint: %v", err)
	}
	body := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseInt(body[1], 10, 64)
	root, err := tlog.ParseHash(body[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(rp, size, root, idx, tlog.RecordHash(extra)); err != nil {
		t.Fatalf("x/mod's tlog.CheckRecord refuses the inclusion proof: %v", err)
	}
	// Tessera's policy code, on the covenant's policy text.
	g, err := tessera.NewWitnessGroupFromPolicy([]byte(policyText))
	if err != nil {
		t.Fatalf("Tessera does not parse the covenant's policy: %v", err)
	}
	if !g.Satisfied([]byte(checkpoint)) {
		t.Fatal("Tessera's policy code says the quorum is not met")
	}
	// And it does say no when it should: the checkpoint without witnesses.
	var kept []string
	for _, line := range strings.SplitAfter(checkpoint, "\n") {
		if !strings.HasPrefix(line, "— witness.example/") {
			kept = append(kept, line)
		}
	}
	if g.Satisfied([]byte(strings.Join(kept, ""))) {
		t.Fatal("Tessera's policy code is satisfied without any witness")
	}
	// A changed leaf record does not check.
	extra[len(extra)-1] ^= 1
	if err := tlog.CheckRecord(rp, size, root, idx, tlog.RecordHash(extra)); err == nil {
		t.Fatal("tlog.CheckRecord accepts a changed leaf record")
	}
}
