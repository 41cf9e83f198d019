package natsbus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
)

// TestRejectionsCappedPerParty: the rejections stream keeps at most the cap
// per party subject, dropping that party's oldest first; a flood by one
// party leaves another's rejections in place. The bytes cap lowers the
// message cap by the bound on one rejection's size.
func TestRejectionsCappedPerParty(t *testing.T) {
	const flooder, quiet = "gemeente-amersfoort", "ggd-regio-utrecht"
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := testContext(t, 30*time.Second)
	cfg := natsbus.StreamConfig{RejectedPerParty: 100, RejectedBytesPerParty: 5 * natsbus.RejectedMaxMsgSize}
	if got := cfg.RejectedCapPerParty(); got != 5 {
		t.Fatalf("cap per party %d, want 5 (bytes / RejectedMaxMsgSize)", got)
	}
	if err := natsbus.EnsureStreams(ctx, js, []string{flooder, quiet}, cfg); err != nil {
		t.Fatal(err)
	}
	publish := func(party string) string {
		id := uuid.Must(uuid.NewV7()).String()
		if err := natsbus.PublishRejection(ctx, js, natsbus.Rejection{Party: party, EventID: id, Reason: events.ReasonMalformed}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	var quietIDs, flood []string
	for range 3 {
		quietIDs = append(quietIDs, publish(quiet))
	}
	for range 40 {
		flood = append(flood, publish(flooder))
	}
	str, err := js.Stream(ctx, natsbus.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter("spoor.rejected.>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[natsbus.RejectedSubject(flooder)]; got != 5 {
		t.Errorf("the flooding party has %d rejections kept, want 5", got)
	}
	if got := info.State.Subjects[natsbus.RejectedSubject(quiet)]; got != 3 {
		t.Errorf("the quiet party has %d rejections kept, want its 3", got)
	}
	// The flooder keeps its newest five.
	var kept []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		r, err := natsbus.ParseRejection(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Party == flooder {
			kept = append(kept, r.EventID)
		}
	}
	if strings.Join(kept, ",") != strings.Join(flood[len(flood)-5:], ",") {
		t.Errorf("the flooding party kept %v, want its newest five %v", kept, flood[len(flood)-5:])
	}
}

// TestWorstCaseRejectionFits: the largest rejection the ledger can publish
// (the longest party id, a batch msg id, the last line, a message of
// control characters that JSON escapes sixfold) fits RejectedMaxMsgSize,
// the bound the per-party byte cap relies on.
func TestWorstCaseRejectionFits(t *testing.T) {
	party := "p" + strings.Repeat("x", 62)
	b := newBus(t, party)
	r := natsbus.Rejection{Party: party, EventID: uuid.Must(uuid.NewV7()).String(), MsgID: natsbus.BatchMsgID([]byte("x")),
		Line: natsbus.MaxBatchEvents, Reason: events.ReasonOccurredInFuture, Message: strings.Repeat("\x01", 5000), At: time.Now()}
	if !events.ValidPartyID(party) {
		t.Fatalf("%q is not a valid party id; use the longest that is", party)
	}
	if err := natsbus.PublishRejection(testContext(t, 5*time.Second), b.js, r); err != nil {
		t.Fatal(err)
	}
}
