package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
	"github.com/spoor-ledger/spoor/ledger/ingest"
	"github.com/spoor-ledger/spoor/verifier"
)

// waitReceipt waits for the receipt of an event through its party's
// Publisher, as an organisation's system does.
func waitReceipt(t *testing.T, p *natsbus.Publisher, eventID string, env []byte) *natsbus.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	r, err := p.WaitReceipt(ctx, eventID, sha256.Sum256(env))
	if err != nil {
		t.Fatalf("receipt of %s: %v", eventID, err)
	}
	return r
}

// requestReceipt asks the ledger once for a receipt, as party, retrying
// only when the ledger does not answer in time (a loaded machine).
func requestReceipt(ctx context.Context, t *testing.T, nc *nats.Conn, party, eventID string, env []byte) *natsbus.Receipt {
	t.Helper()
	for {
		r, err := natsbus.RequestReceipt(ctx, nc, party, eventID, sha256.Sum256(env))
		if err == nil {
			return r
		}
		if ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			t.Fatalf("receipt request of %s for %s: %v", party, eventID, err)
		}
	}
}

// verifyReceipt checks a committed receipt the way a party can, with the
// pinned log keys and the envelope it published, and nothing from the
// ledger's store: the checkpoint's signatures, the leaf record's hash of the
// envelope, and the inclusion proof against the checkpoint's root.
func verifyReceipt(t *testing.T, keys *verifier.LogKeys, r *natsbus.Receipt, env []byte) {
	t.Helper()
	if r.Status != natsbus.ReceiptCommitted {
		t.Fatalf("receipt of %s has status %s (reason %q), want committed", r.EventID, r.Status, r.Reason)
	}
	cp, err := verifier.OpenCheckpoint(r.Checkpoint, keys)
	if err != nil {
		t.Fatalf("receipt of %s: checkpoint: %v", r.EventID, err)
	}
	if cp.Size != r.TreeSize {
		t.Fatalf("receipt of %s: tree size %d but the checkpoint is of size %d", r.EventID, r.TreeSize, cp.Size)
	}
	rec, err := verifier.ParseLeafRecord(r.LeafRecord)
	if err != nil {
		t.Fatalf("receipt of %s: leaf record: %v", r.EventID, err)
	}
	if rec.Type != verifier.EntryDisclosure || rec.BodyHash != sha256.Sum256(env) {
		t.Fatalf("receipt of %s: the leaf record is not of this envelope", r.EventID)
	}
	if err := verifier.VerifyInclusion(r.LeafIndex, r.TreeSize, verifier.LeafHash(r.LeafRecord), r.InclusionProof, cp.Hash); err != nil {
		t.Fatalf("receipt of %s: %v", r.EventID, err)
	}
}

func TestReceipts(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	// Two events of two different parties.
	var a, b sent
	for evs := h.events(50); a.d == nil || b.d == nil; evs = evs[1:] {
		switch {
		case a.d == nil:
			a = evs[0]
		case evs[0].d.Discloser != a.d.Discloser:
			b = evs[0]
		}
	}
	pa, pb := h.publisher(a.d.Discloser), h.publisher(b.d.Discloser)
	if _, err := pa.Publish(ctx, a.d); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Publish(ctx, b.d); err != nil {
		t.Fatal(err)
	}
	ra := waitReceipt(t, pa, a.d.ID, a.env)
	verifyReceipt(t, h.env.Keys, ra, a.env)
	verifyReceipt(t, h.env.Keys, waitReceipt(t, pb, b.d.ID, b.env), b.env)

	// A party learns nothing about another party's event: pending, as for
	// an id never seen.
	for _, c := range []struct {
		party, id string
		env       []byte
	}{
		{a.d.Discloser, b.d.ID, b.env},
		{b.d.Discloser, a.d.ID, a.env},
		{a.d.Discloser, uuid.Must(uuid.NewV7()).String(), a.env},
	} {
		r := requestReceipt(ctx, t, h.nc, c.party, c.id, c.env)
		if r.Status != natsbus.ReceiptPending || r.TreeSize != 0 || r.LeafRecord != nil || r.Checkpoint != nil {
			t.Fatalf("party %s asking for %s got %+v, want a bare pending", c.party, c.id, r)
		}
	}

	// A refused event: its party gets the reason, another party pending.
	d := *h.events(1)[0].d
	d.Origin = "spoor.test/elders"
	pr := h.publisher(d.Discloser)
	res, err := pr.Publish(ctx, &d)
	if err == nil {
		// The Publisher signs for any origin; the ledger refuses it.
		r, err := pr.WaitReceipt(ctx, d.ID, res.EnvelopeHash)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != natsbus.ReceiptRejected || r.Reason != events.ReasonWrongOrigin {
			t.Fatalf("receipt of an event for another log: %+v, want rejected wrong_origin", r)
		}
	} else {
		t.Fatalf("publish: %v", err)
	}
	other := h.otherParty(d.Discloser)
	if r, err := natsbus.RequestReceipt(ctx, h.nc, other, d.ID, res.EnvelopeHash); err != nil || r.Status != natsbus.ReceiptPending {
		t.Fatalf("party %s asking for %s's refused event got %+v; want pending", other, d.Discloser, r)
	}

	// A request the ledger cannot read is answered (pending), not dropped.
	msg, err := h.nc.RequestWithContext(ctx, natsbus.ReceiptSubject(a.d.Discloser), []byte("geen json"))
	if err != nil {
		t.Fatalf("no answer to a malformed request: %v", err)
	}
	var raw natsbus.Receipt
	if err := json.Unmarshal(msg.Data, &raw); err != nil || raw.Status != natsbus.ReceiptPending {
		t.Fatalf("answer to a malformed request: %s (%v), want pending", msg.Data, err)
	}

	// A receipt asked later is against the newer checkpoint, and that
	// checkpoint is consistent with the earlier receipt's.
	more := h.events(10)
	h.publishUntilAcked(publishAsync(ctx, h.byParty(more)))
	waitForSize(t, h.l, 1+2+uint64(len(more)))
	later, err := ingest.Receipt(ctx, h.l, a.d.Discloser, a.d.ID, sha256.Sum256(a.env))
	if err != nil {
		t.Fatal(err)
	}
	verifyReceipt(t, h.env.Keys, later, a.env)
	if later.LeafIndex != ra.LeafIndex || later.TreeSize <= ra.TreeSize {
		t.Fatalf("later receipt at leaf %d of %d; first at %d of %d", later.LeafIndex, later.TreeSize, ra.LeafIndex, ra.TreeSize)
	}
	oldCP, err := verifier.OpenCheckpoint(ra.Checkpoint, h.env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	newCP, err := verifier.OpenCheckpoint(later.Checkpoint, h.env.Keys)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := h.l.ConsistencyProof(ctx, oldCP.Size, newCP.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifyConsistency(oldCP.Size, newCP.Size, oldCP.Hash, newCP.Hash, proof); err != nil {
		t.Fatalf("the two receipts' checkpoints: %v", err)
	}
	if newCP.CosignedAt.Before(oldCP.CosignedAt) {
		t.Fatalf("cosignature time went back from %s to %s", oldCP.CosignedAt, newCP.CosignedAt)
	}
}

// TestReceiptsAreAboutBytes: a receipt answers for the bytes it names.
// Before the fix an edit under a logged id got a committed receipt (for
// the first bytes) while it never reached the log, and an id another party
// had logged first left a party's receipt pending for ever.
func TestReceiptsAreAboutBytes(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), ingest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	first := h.events(1)[0]
	pa := h.publisher(first.d.Discloser)
	if _, err := pa.Publish(ctx, first.d); err != nil {
		t.Fatal(err)
	}
	ra := waitReceipt(t, pa, first.d.ID, first.env)
	verifyReceipt(t, h.env.Keys, ra, first.env)

	// The same party edits the event under the same id: id_conflict,
	// naming the leaf of the first bytes; the first bytes stay committed.
	edited := *first.d
	edited.Justification += " (gewijzigd)"
	res, err := pa.Publish(ctx, &edited)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pa.WaitReceipt(ctx, edited.ID, res.EnvelopeHash)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != natsbus.ReceiptIDConflict || r.Reason != events.ReasonIDConflict || r.LeafIndex != ra.LeafIndex || r.Checkpoint != nil {
		t.Fatalf("receipt of other bytes under a logged id: %+v, want id_conflict naming leaf %d", r, ra.LeafIndex)
	}
	verifyReceipt(t, h.env.Keys, requestReceipt(ctx, t, h.nc, first.d.Discloser, first.d.ID, first.env), first.env)

	// Another party uses the same id for its own event: ids are per
	// party, so it is logged and receipted like any other.
	var partyB string
	for _, p := range h.parties {
		if p != first.d.Discloser && !slices.Contains(first.d.Recipients, p) {
			partyB = p
			break
		}
	}
	dB := *first.d
	dB.Discloser, dB.Salt = partyB, ""
	pb := h.publisher(partyB)
	resB, err := pb.Publish(ctx, &dB)
	if err != nil {
		t.Fatal(err)
	}
	envB := h.env.Sign(t, &dB)
	if resB.EnvelopeHash != sha256.Sum256(envB) {
		t.Fatal("the publisher's envelope is not the one signed here")
	}
	rb := waitReceipt(t, pb, dB.ID, envB)
	verifyReceipt(t, h.env.Keys, rb, envB)
	if rb.LeafIndex == ra.LeafIndex {
		t.Fatal("two parties' events share a leaf")
	}
	// Neither learns of the other's event: the other's bytes are unknown
	// under its own ids.
	if r := requestReceipt(ctx, t, h.nc, first.d.Discloser, first.d.ID, envB); r.Status != natsbus.ReceiptIDConflict || r.LeafIndex != ra.LeafIndex {
		t.Fatalf("party A asking with B's bytes: %+v, want its own id_conflict", r)
	}
	if r := requestReceipt(ctx, t, h.nc, h.otherParty2(first.d.Discloser, partyB), first.d.ID, first.env); r.Status != natsbus.ReceiptPending {
		t.Fatalf("a third party asking about the id: %+v, want pending", r)
	}
}

// otherParty2 returns a covenant party other than a and b.
func (h *harness) otherParty2(a, b string) string {
	for _, p := range h.parties {
		if p != a && p != b {
			return p
		}
	}
	h.t.Fatal("the covenant has two parties")
	return ""
}
