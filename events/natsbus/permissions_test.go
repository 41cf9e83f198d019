package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/natstest"
)

const (
	ledgerUser     = "ledger"
	ledgerPassword = "ledger-secret"
)

func partyPassword(party string) string { return party + "-secret" }

func serverPermissions(p natsbus.Permissions) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
}

// runSecuredServer starts a server whose users are the ledger (every
// permission) and the given parties, each with perms(party).
func runSecuredServer(t *testing.T, perms func(party string) natsbus.Permissions, parties ...string) *server.Server {
	t.Helper()
	return natstest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: ledgerUser, Password: ledgerPassword}}
		for _, p := range parties {
			o.Users = append(o.Users, &server.User{Username: p, Password: partyPassword(p), Permissions: serverPermissions(perms(p))})
		}
	})
}

// violations collects the permission errors the server sends a client.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.errs = append(v.errs, err.Error())
		v.mu.Unlock()
	}
}

// waitFor reports whether a violation mentioning subject arrives within a
// second; the server sends them asynchronously.
func (v *violations) waitFor(subject string) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(e, `"`+subject+`"`) {
				v.mu.Unlock()
				return true
			}
		}
		v.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// partyClient connects as a party the way the package documentation says.
type partyClient struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *natsbus.Publisher
	v   *violations
}

func connectParty(t *testing.T, s *server.Server, key *events.PartyKey) *partyClient {
	t.Helper()
	v := &violations{}
	nc := natstest.Connect(t, s,
		nats.UserInfo(key.Party, partyPassword(key.Party)),
		nats.CustomInboxPrefix(natsbus.InboxPrefix(key.Party)),
		nats.ErrorHandler(v.handler))
	js := natstest.JetStream(t, nc)
	return &partyClient{nc: nc, js: js, pub: newPublisher(t, js, key), v: v}
}

// setUpLedger connects as the ledger, creates the streams, answers receipt
// requests and publishes one rejection for each party.
func setUpLedger(t *testing.T, s *server.Server, parties ...string) jetstream.JetStream {
	t.Helper()
	nc := natstest.Connect(t, s, nats.UserInfo(ledgerUser, ledgerPassword))
	js := natstest.JetStream(t, nc)
	ctx := testContext(t, 10*time.Second)
	if err := natsbus.EnsureStreams(ctx, js, parties, natsbus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	receiptResponder(t, nc, 0)
	for _, p := range parties {
		r := natsbus.Rejection{EventID: newDisclosure(t).ID, Party: p, Reason: events.ReasonKeyNotInForce}
		if err := natsbus.PublishRejection(ctx, js, r); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

// partyWorkflow is everything a party does on the bus: publish, get the
// receipt, bind to its rejections, read one and ack it. Each step is
// bounded by a short timeout so a missing permission fails quickly.
func partyWorkflow(ctx context.Context, c *partyClient, d *events.Disclosure) error {
	// Generous enough for a loaded machine running the race detector; a
	// missing permission makes its step wait this long.
	const stepTimeout = 2 * time.Second
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, stepTimeout) }

	sctx, cancel := step()
	defer cancel()
	res, err := c.pub.Publish(sctx, d)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if res.Duplicate {
		return errors.New("publish: first publish reported as duplicate")
	}
	sctx, cancel = step()
	defer cancel()
	r, err := c.pub.WaitReceipt(sctx, d.ID, res.EnvelopeHash)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if r.Status != natsbus.ReceiptCommitted {
		return fmt.Errorf("receipt: status %s", r.Status)
	}
	sctx, cancel = step()
	defer cancel()
	cons, err := natsbus.Rejections(sctx, c.js, c.pub.Party())
	if err != nil {
		return fmt.Errorf("bind rejections: %w", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(stepTimeout))
	if err != nil {
		return fmt.Errorf("fetch rejections: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil {
		return fmt.Errorf("fetch rejections: %w", err)
	}
	if len(msgs) != 1 {
		return fmt.Errorf("fetch rejections: got %d, want 1", len(msgs))
	}
	rej, err := natsbus.ParseRejection(msgs[0].Data())
	if err != nil {
		return err
	}
	if rej.Party != c.pub.Party() {
		return fmt.Errorf("read a rejection of %s", rej.Party)
	}
	sctx, cancel = step()
	defer cancel()
	if err := msgs[0].DoubleAck(sctx); err != nil {
		return fmt.Errorf("ack rejection: %w", err)
	}
	return nil
}

// TestPartyPermissions runs a server with the documented permissions and
// checks that a party can do its work and nothing else.
func TestPartyPermissions(t *testing.T) {
	t.Parallel()
	s := runSecuredServer(t, natsbus.PartyPermissions, amersfoort, utrecht)
	ledger := setUpLedger(t, s, amersfoort, utrecht)
	keyA, keyU := partyKey(t, amersfoort), partyKey(t, utrecht)
	a := connectParty(t, s, keyA)
	ctx := testContext(t, 30*time.Second)

	if err := partyWorkflow(ctx, a, newDisclosure(t)); err != nil {
		t.Fatalf("party workflow: %v", err)
	}
	// The ack reached the server.
	rc, err := ledger.Consumer(ctx, natsbus.RejectedStream, natsbus.RejectedConsumer(amersfoort))
	if err != nil {
		t.Fatal(err)
	}
	if info := rc.CachedInfo(); info.NumAckPending != 0 || info.AckFloor.Consumer != 1 {
		t.Errorf("rejections consumer after the ack: %+v", info)
	}

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}

	t.Run("cannot publish as another party", func(t *testing.T) {
		t.Parallel()
		d := newDisclosure(t)
		events.Seal(d, keyU)
		env, err := events.Sign(d, keyU)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.pub.PublishEnvelope(short(), utrecht, env); err == nil {
			t.Error("published on another party's subject")
		}
		if !a.v.waitFor("spoor.disclosures.gemeente-utrecht") {
			t.Error("no permission violation for another party's subject")
		}
		if n := streamMsgs(t, ledger, natsbus.Stream); n != 1 {
			t.Errorf("stream holds %d messages, want only the party's own", n)
		}
	})
	t.Run("cannot create a consumer on SPOOR", func(t *testing.T) {
		t.Parallel()
		_, err := a.js.CreateConsumer(short(), natsbus.Stream, jetstream.ConsumerConfig{
			Durable: "snoop", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "spoor.disclosures.gemeente-utrecht"})
		if err == nil {
			t.Error("created a consumer on SPOOR")
		}
		if !a.v.waitFor("$JS.API.CONSUMER.DURABLE.CREATE.SPOOR.snoop") && !a.v.waitFor("$JS.API.CONSUMER.CREATE.SPOOR.snoop.spoor.disclosures.gemeente-utrecht") {
			t.Error("no permission violation for creating a consumer")
		}
	})
	t.Run("cannot read SPOOR", func(t *testing.T) {
		t.Parallel()
		if _, err := a.js.Consumer(short(), natsbus.Stream, natsbus.LedgerConsumer); err == nil {
			t.Error("bound to the ledger's consumer")
		}
		if _, err := a.nc.RequestWithContext(short(), "$JS.API.CONSUMER.MSG.NEXT.SPOOR.ledger", []byte(`{"batch":1}`)); err == nil {
			t.Error("pulled from the ledger's consumer")
		}
		if !a.v.waitFor("$JS.API.CONSUMER.MSG.NEXT.SPOOR.ledger") {
			t.Error("no permission violation for MSG.NEXT on the ledger's consumer")
		}
		if _, err := a.nc.RequestWithContext(short(), "$JS.API.STREAM.MSG.GET.SPOOR", []byte(`{"seq":1}`)); err == nil {
			t.Error("read a message of SPOOR directly")
		}
		if _, err := a.js.Stream(short(), natsbus.Stream); err == nil {
			t.Error("read SPOOR's stream info")
		}
		if n := streamMsgs(t, ledger, natsbus.Stream); n != 1 {
			t.Errorf("stream holds %d messages, want 1", n)
		}
	})
	t.Run("cannot subscribe to disclosures or others' inboxes", func(t *testing.T) {
		t.Parallel()
		for _, subj := range []string{"spoor.disclosures.>", "_INBOX.>", "_INBOX.gemeente-utrecht.>"} {
			sub, err := a.nc.SubscribeSync(subj)
			if err != nil {
				t.Fatal(err)
			}
			if !a.v.waitFor(subj) {
				t.Errorf("no permission violation for subscribing to %s", subj)
			}
			_ = sub.Unsubscribe()
		}
	})
	t.Run("cannot read another party's rejections", func(t *testing.T) {
		t.Parallel()
		if _, err := natsbus.Rejections(short(), a.js, utrecht); err == nil {
			t.Error("bound to another party's rejections consumer")
		}
		if _, err := a.nc.RequestWithContext(short(), "$JS.API.CONSUMER.MSG.NEXT.SPOOR_REJECTED.rejected-gemeente-utrecht", []byte(`{"batch":1}`)); err == nil {
			t.Error("pulled another party's rejections")
		}
		info, err := ledger.Consumer(ctx, natsbus.RejectedStream, natsbus.RejectedConsumer(utrecht))
		if err != nil {
			t.Fatal(err)
		}
		if d := info.CachedInfo().Delivered.Consumer; d != 0 {
			t.Errorf("another party's rejections were delivered %d times", d)
		}
	})
	t.Run("cannot ask for another party's receipts", func(t *testing.T) {
		t.Parallel()
		if _, err := natsbus.RequestReceipt(short(), a.nc, utrecht, newDisclosure(t).ID, [32]byte{}); err == nil {
			t.Error("requested a receipt on another party's subject")
		}
	})
	t.Run("cannot change the streams", func(t *testing.T) {
		t.Parallel()
		if err := natsbus.EnsureStreams(short(), a.js, []string{amersfoort}, natsbus.StreamConfig{}); err == nil {
			t.Error("a party ran EnsureStreams")
		}
		if err := a.js.DeleteConsumer(short(), natsbus.RejectedStream, natsbus.RejectedConsumer(amersfoort)); err == nil {
			t.Error("a party deleted its rejections consumer")
		}
	})
}

// TestPartyPermissionsMinimal removes each documented permission in turn
// and checks that the party's work then fails: none is superfluous.
func TestPartyPermissionsMinimal(t *testing.T) {
	t.Parallel()
	full := natsbus.PartyPermissions(amersfoort)
	// The step of partyWorkflow that needs each permission first.
	failsAt := map[string]string{
		"spoor.disclosures.gemeente-amersfoort":                                 "publish:",
		"spoor.receipts.gemeente-amersfoort":                                    "receipt:",
		"$JS.API.CONSUMER.INFO.SPOOR_REJECTED.rejected-gemeente-amersfoort":     "bind rejections:",
		"$JS.API.CONSUMER.MSG.NEXT.SPOOR_REJECTED.rejected-gemeente-amersfoort": "fetch rejections:",
		"$JS.ACK.SPOOR_REJECTED.rejected-gemeente-amersfoort.>":                 "ack rejection:",
		"_INBOX.gemeente-amersfoort.>":                                          "publish:",
	}
	type removal struct {
		name, subject string
		perm          func(string) natsbus.Permissions
	}
	var removals []removal
	for i := range full.Publish {
		removals = append(removals, removal{"publish " + full.Publish[i], full.Publish[i], func(p string) natsbus.Permissions {
			perms := natsbus.PartyPermissions(p)
			perms.Publish = slices.Delete(perms.Publish, i, i+1)
			return perms
		}})
	}
	for i := range full.Subscribe {
		removals = append(removals, removal{"subscribe " + full.Subscribe[i], full.Subscribe[i], func(p string) natsbus.Permissions {
			perms := natsbus.PartyPermissions(p)
			perms.Subscribe = slices.Delete(perms.Subscribe, i, i+1)
			if len(perms.Subscribe) == 0 {
				// An empty allow list allows everything; allow something
				// harmless instead.
				perms.Subscribe = []string{"spoor.nothing"}
			}
			return perms
		}})
	}
	for _, r := range removals {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			s := runSecuredServer(t, r.perm, amersfoort)
			setUpLedger(t, s, amersfoort)
			a := connectParty(t, s, partyKey(t, amersfoort))
			want, ok := failsAt[r.subject]
			if !ok {
				t.Fatalf("no expectation for %s: a permission was added without a test", r.subject)
			}
			err := partyWorkflow(testContext(t, 20*time.Second), a, newDisclosure(t))
			switch {
			case err == nil:
				t.Errorf("the party's work succeeded without %s", r.name)
			case !strings.HasPrefix(err.Error(), want):
				t.Errorf("without %s the work failed with %q, want it to fail at %q", r.name, err, want)
			}
		})
	}
}

// TestPartyPermissionsAckV2: on a server that sends version 2 ack subjects,
// the documented replacement of the $JS.ACK permission is needed and enough.
func TestPartyPermissionsAckV2(t *testing.T) {
	t.Parallel()
	v1 := "$JS.ACK.SPOOR_REJECTED.rejected-" + amersfoort + ".>"
	v2 := "$JS.ACK.*.*.SPOOR_REJECTED.rejected-" + amersfoort + ".>"
	for _, c := range []struct {
		ack     string
		wantErr string
	}{{v2, ""}, {v1, "ack rejection:"}} {
		t.Run(c.ack, func(t *testing.T) {
			t.Parallel()
			perms := func(p string) natsbus.Permissions {
				perms := natsbus.PartyPermissions(p)
				i := slices.Index(perms.Publish, v1)
				if i < 0 {
					t.Fatalf("PartyPermissions has no %s", v1)
				}
				perms.Publish[i] = c.ack
				return perms
			}
			s := natstest.RunServer(t, func(o *server.Options) {
				o.FeatureFlags = map[string]bool{"js_ack_fc_v2": true}
				o.Users = []*server.User{
					{Username: ledgerUser, Password: ledgerPassword},
					{Username: amersfoort, Password: partyPassword(amersfoort), Permissions: serverPermissions(perms(amersfoort))},
				}
			})
			setUpLedger(t, s, amersfoort)
			a := connectParty(t, s, partyKey(t, amersfoort))
			err := partyWorkflow(testContext(t, 20*time.Second), a, newDisclosure(t))
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("party workflow: %v", err)
			case c.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), c.wantErr)):
				t.Errorf("party workflow = %v, want it to fail at %q", err, c.wantErr)
			}
		})
	}
}
