package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/ledger"
)

// ServeReceipts answers receipt requests on spoor.receipts.<party> until
// ctx ends. A party only learns about its own events: for another party's
// event it gets the same "pending" answer as for an unknown id.
func (in *Ingest) ServeReceipts(ctx context.Context, nc *nats.Conn) error {
	sub, err := nc.QueueSubscribe(natsbus.ReceiptSubjects, "spoor-ledger", func(m *nats.Msg) {
		party, _ := strings.CutPrefix(m.Subject, natsbus.ReceiptSubject(""))
		resp := in.receipt(ctx, party, m.Data)
		in.metrics.receipts.WithLabelValues(string(resp.Status)).Inc()
		b, err := json.Marshal(resp)
		if err != nil {
			return
		}
		if err := m.Respond(b); err != nil {
			in.log.Debug("couldn't answer a receipt request", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("couldn't subscribe to receipt requests: %w", err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (in *Ingest) receipt(ctx context.Context, party string, data []byte) *natsbus.Receipt {
	req, err := natsbus.ParseReceiptRequest(data)
	if err != nil {
		// The client checks its request before sending; an answer it
		// cannot parse tells it something is wrong.
		return &natsbus.Receipt{Status: natsbus.ReceiptPending}
	}
	h, _ := req.Hash() // checked by ParseReceiptRequest
	// Answer at once: the client polls with backoff, and a publisher that
	// asks before publishing must not wait for an event it has not sent.
	r, err := Receipt(ctx, in.cfg.Ledger, party, req.EventID, h)
	if err != nil {
		in.log.Warn("receipt lookup failed", "err", err)
		return &natsbus.Receipt{EventID: req.EventID, Status: natsbus.ReceiptPending}
	}
	return r
}

// Receipt builds party's receipt for the envelope with SHA-256 envHash
// under eventID. Event ids are per party: another party's event under the
// same id is not seen at all. For those bytes committed: the leaf index,
// leaf record, inclusion proof and the checkpoint the proof is for; for
// other bytes logged under the id: id_conflict naming their leaf; for
// these bytes refused: the reason; otherwise pending.
func Receipt(ctx context.Context, l *ledger.Ledger, party, eventID string, envHash [32]byte) (*natsbus.Receipt, error) {
	pending := &natsbus.Receipt{EventID: eventID, Status: natsbus.ReceiptPending}
	e, err := l.FindEvent(ctx, party, eventID)
	if errors.Is(err, ledger.ErrNotFound) {
		rej, err := l.Rejected(ctx, party, eventID)
		if errors.Is(err, ledger.ErrNotFound) {
			return pending, nil
		}
		if err != nil {
			return nil, err
		}
		if rej.SHA256 != "" && rej.SHA256 != hex.EncodeToString(envHash[:]) {
			// Other bytes under the id were refused; these are not known.
			return pending, nil
		}
		return &natsbus.Receipt{EventID: eventID, Status: natsbus.ReceiptRejected, Reason: rej.Reason}, nil
	}
	if err != nil {
		return nil, err
	}
	if e.Hash != envHash {
		return &natsbus.Receipt{EventID: eventID, Status: natsbus.ReceiptIDConflict, Reason: events.ReasonIDConflict,
			LeafIndex: e.Index}, nil
	}
	// With a witness policy: the witnessed checkpoint once one covers the
	// event; before that the signed head, marked as not witnessed (the
	// event is committed either way, and the publisher may ask again).
	head, witnessed, err := l.HeadCovering(e.Index)
	if errors.Is(err, ledger.ErrNotWitnessed) {
		head, witnessed, err = l.Head(), false, nil
	}
	if err != nil {
		return nil, err
	}
	policy, perr := l.WitnessPolicy()
	proof, err := l.InclusionProof(ctx, e.Index, head.Size)
	if err != nil {
		return nil, err
	}
	rec, err := l.LeafRecordBytes(ctx, e.Index)
	if err != nil {
		return nil, err
	}
	fs, err := l.Findings(ctx, e.Index)
	if err != nil {
		return nil, err
	}
	var findings []natsbus.ReceiptFinding
	for _, f := range fs {
		findings = append(findings, natsbus.ReceiptFinding{Rule: f.Rule, Field: f.Field})
	}
	return &natsbus.Receipt{EventID: eventID, Status: natsbus.ReceiptCommitted, LeafIndex: e.Index,
		TreeSize: head.Size, LeafRecord: rec, InclusionProof: proof, Checkpoint: head.Note,
		Unwitnessed: (policy != nil || perr != nil) && !witnessed, Findings: findings}, nil
}
