package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/verifier"
)

type publishFlags struct {
	key      string
	natsURL  string
	auth     natsClientFlags
	origin   string
	wait     time.Duration
	batch    int
	covenant string
}

func newPublishCmd(g *globalFlags) *cobra.Command {
	f := &publishFlags{}
	cmd := &cobra.Command{
		Use:   "publish --key PARTY.key [FILE|-]",
		Short: "Sign and publish disclosures (JSON lines) on NATS, and wait for their receipts",
		Long: `Read disclosures as JSON lines (one object per line) from FILE or standard input,
sign each with the party's key and publish it on spoor.disclosures.<party>.

Each line holds the disclosure fields of docs/wire-format.md. The publisher
fills in: schema, discloser and salt (from the key), origin (from --origin, if
the line has none) and id (if the line has none, a UUIDv7 derived from the
line itself, so a rerun of the same file gives the same ids). The subject is
given as its pseudonym; a BSN never goes on a command line or in this file.
When the covenant pairs the pseudonym key with a VRF key (vrf_keys), the
subject also carries its vrf_output (computed where the pseudonym is, with the
key file's VRF secret: events.SubjectFor) and the line is wire format v2.

Consecutive lines go out as batch messages of up to --batch events
(docs/wire-format.md), which costs the bus far less than a message per event;
the ledger still judges each event on its own.

Every line gets one line of answer, with its line number and event id:

  line 1: 0190...: committed at leaf 12; findings: none
  line 2: 0190...: committed at leaf 13; findings: recorded-late, consent-missing
  line 3: 0190...: already accepted at leaf 7; findings: none
  line 4: 0190...: refused by the ledger: wrong_origin
  line 5: not published: <reason>

The findings are the covenant rules the event breaks, as the ledger records
them for the FG (a finding never refuses an event): publish computes them
with the covenant of --covenant and the time of recording in the receipt's
leaf record (a correction's findings, which need the ledger's index, are not
among them). Without --covenant, publish takes covenant.signed from the key
file's folder when there is one (the demo layout); otherwise the findings
are not known and the line says so. With a covenant, lines without an origin
get the covenant's (an --origin naming another is refused; a line naming
another is the ledger's to refuse), and a receipt whose checkpoint names
another log stops publish: that ledger is not the covenant's.

A bad line is reported with its line number and reason and is not published.
Running the same file again is idempotent: events the ledger already holds,
byte for byte, are counted as "already accepted". A line whose event id the
ledger already holds with other bytes (an edited line) is reported as
id_conflict with the leaf of the first bytes: it is never logged. The summary
counts published, already accepted, refused by the ledger, id conflicts and
bad lines; the exit status is non-zero when any line was bad, refused or in
conflict.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := io.Reader(cmd.InOrStdin())
			if len(args) == 1 && args[0] != "-" {
				fh, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("couldn't open input: %w", err)
				}
				defer fh.Close()
				in = fh
			}
			return runPublish(cmd.Context(), g.logger(), f, in, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&f.key, "key", "", "the party's key file (spoor keygen --party), required")
	cmd.Flags().StringVar(&f.natsURL, "nats", nats.DefaultURL, "NATS server URL")
	f.auth.add(cmd.Flags(), "CA certificate (PEM) that signed the NATS server's certificate")
	cmd.Flags().StringVar(&f.origin, "origin", "", "origin (log) to fill in for lines that have none")
	cmd.Flags().DurationVar(&f.wait, "wait", 30*time.Second, "how long to wait for the ledger's receipts (0: don't wait)")
	cmd.Flags().IntVar(&f.batch, "batch", 64, fmt.Sprintf("send up to this many events in one batch message (1 to %d; 1: one event per message)", natsbus.MaxBatchEvents))
	cmd.Flags().StringVar(&f.covenant, "covenant", "", "the party's pinned copy of the signed covenant: origin and findings (default: covenant.signed beside --key, if there)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// publishCovenant returns the covenant publish checks findings and the
// origin against: --covenant, or covenant.signed in the key's folder, or
// nil when neither is there.
func publishCovenant(f *publishFlags) (*events.Covenant, error) {
	path := f.covenant
	if path == "" {
		beside := filepath.Join(filepath.Dir(f.key), demo.SignedFile)
		if _, err := os.Stat(beside); err != nil {
			return nil, nil
		}
		path = beside
	}
	return loadCovenantOpt(path)
}

// findingsText names the rules d breaks as the ledger records them when it
// integrates d at the time in the receipt's leaf record.
func findingsText(cov *events.Covenant, d *events.Disclosure, r *natsbus.Receipt) string {
	if cov == nil {
		return "not known without --covenant"
	}
	fs := cov.Check(d)
	if lr, err := verifier.ParseLeafRecord(r.LeafRecord); err == nil {
		fs = append(fs, cov.CheckRecording(d, lr.IntegratedAt)...)
	}
	if len(fs) == 0 {
		return "none"
	}
	rules := make([]string, 0, len(fs))
	for _, x := range fs {
		if !slices.Contains(rules, x.Rule) {
			rules = append(rules, x.Rule)
		}
	}
	return strings.Join(rules, ", ")
}

// checkpointOrigin is the first line of a signed checkpoint.
func checkpointOrigin(cp []byte) string {
	o, _, _ := strings.Cut(string(cp), "\n")
	return o
}

type publishSummary struct {
	published, alreadyAccepted, onBus, refused, conflicts, bad, pending int
}

func runPublish(ctx context.Context, log *slog.Logger, f *publishFlags, in io.Reader, out io.Writer) error {
	key, err := events.LoadPartyKey(f.key)
	if err != nil {
		return err
	}
	cov, err := publishCovenant(f)
	if err != nil {
		return err
	}
	origin := f.origin
	if cov != nil {
		if origin != "" && origin != cov.Origin {
			return fmt.Errorf("--origin %s is not the covenant's origin %s", origin, cov.Origin)
		}
		origin = cov.Origin
		if _, ok := cov.Party(key.Party); !ok {
			return fmt.Errorf("the key's party %q is not a party of the covenant", key.Party)
		}
	}
	// checkOrigin refuses a receipt from a ledger that claims another log.
	checkOrigin := func(line int, r *natsbus.Receipt) error {
		if cov != nil && len(r.Checkpoint) > 0 && checkpointOrigin(r.Checkpoint) != cov.Origin {
			return fmt.Errorf("line %d: the ledger's checkpoint names log %q, not the covenant's %q: not this covenant's ledger",
				line, checkpointOrigin(r.Checkpoint), cov.Origin)
		}
		return nil
	}
	opts, err := f.auth.options()
	if err != nil {
		return err
	}
	// The party's own inbox prefix: its NATS user may read no other.
	opts = append(opts, nats.Name("spoor-publish-"+key.Party), nats.CustomInboxPrefix(natsbus.InboxPrefix(key.Party)))
	nc, err := nats.Connect(f.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("couldn't connect to NATS at %s: %w", redactURLs(f.natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pub, err := natsbus.NewPublisher(js, key, natsbus.WithLogger(log))
	if err != nil {
		return err
	}
	var sum publishSummary
	type sent struct {
		line int
		d    *events.Disclosure
		hash [32]byte // of the envelope: a receipt is about these bytes
		p    *natsbus.PendingPublish
	}
	// conflict reports a line whose event id the ledger holds with other
	// bytes: the first ones stand, and this line will never be logged.
	conflict := func(line int, r *natsbus.Receipt) {
		sum.conflicts++
		fmt.Fprintf(out, "line %d: %s: %s: the ledger holds this event id at leaf %d with other bytes; the first ones stand and this line is not logged\n",
			line, r.EventID, events.ReasonIDConflict, r.LeafIndex)
	}
	var pending []sent
	// Lines wait in group until a batch is full or the input ends.
	type queued struct {
		line int
		d    *events.Disclosure
	}
	var group []queued
	one := func(q queued) error {
		p, err := pub.PublishAsync(ctx, q.d)
		if err != nil {
			var ve events.ValidationErrors
			if errors.As(err, &ve) {
				sum.bad++
				fmt.Fprintf(out, "line %d: not published: %v\n", q.line, err)
				return nil
			}
			return fmt.Errorf("line %d: %w", q.line, err)
		}
		pending = append(pending, sent{q.line, q.d, p.EnvelopeHashes()[0], p})
		return nil
	}
	// send publishes a group of lines as one batch message; on
	// ErrBatchTooLarge natsbus.SplitWhenTooLarge sends it in halves.
	send := func(g []queued) error {
		if len(g) == 1 {
			return one(g[0])
		}
		ds := make([]*events.Disclosure, len(g))
		for i, q := range g {
			ds[i] = q.d
		}
		p, err := pub.PublishBatchAsync(ctx, ds)
		var ve events.ValidationErrors
		switch {
		case errors.Is(err, natsbus.ErrBatchTooLarge):
			// Large envelopes: the same lines in two messages.
			return err
		case errors.As(err, &ve) || errors.Is(err, natsbus.ErrBadBatch):
			// A bad line: each line on its own, so the bad ones are named.
			for _, q := range g {
				if err := one(q); err != nil {
					return err
				}
			}
			return nil
		case err != nil:
			return fmt.Errorf("lines %d to %d: %w", g[0].line, g[len(g)-1].line, err)
		}
		hashes := p.EnvelopeHashes()
		for i, q := range g {
			pending = append(pending, sent{q.line, q.d, hashes[i], p})
		}
		return nil
	}
	flush := func() error {
		defer func() { group = group[:0] }()
		if len(group) == 0 {
			return nil
		}
		return natsbus.SplitWhenTooLarge(group, send)
	}
	if f.batch < 1 || f.batch > natsbus.MaxBatchEvents {
		return fmt.Errorf("--batch %d: must be 1 to %d", f.batch, natsbus.MaxBatchEvents)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), events.MaxEnvelopeSize)
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		if len(trimSpace(raw)) == 0 {
			continue
		}
		d, err := prepareLine(raw, key, origin)
		if err != nil {
			sum.bad++
			fmt.Fprintf(out, "line %d: not published: %v\n", line, err)
			continue
		}
		// Ask first, so a rerun after the bus's de-duplication window is
		// still recognised without publishing again. The receipt is about
		// the bytes: the same id with an edited line is a conflict, never
		// "already accepted".
		env, err := events.Sign(d, key)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if r, err := natsbus.RequestReceipt(ctx, nc, key.Party, d.ID, sha256.Sum256(env)); err == nil {
			switch r.Status {
			case natsbus.ReceiptCommitted:
				if err := checkOrigin(line, r); err != nil {
					return err
				}
				sum.alreadyAccepted++
				fmt.Fprintf(out, "line %d: %s: already accepted at leaf %d; findings: %s\n", line, d.ID, r.LeafIndex, findingsText(cov, d, r))
				continue
			case natsbus.ReceiptIDConflict:
				conflict(line, r)
				continue
			}
		}
		group = append(group, queued{line, d})
		if len(group) == f.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("couldn't read input: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := pub.Flush(ctx); err != nil {
		return err
	}
	for _, s := range pending {
		res, err := s.p.Wait(ctx)
		if err != nil {
			return fmt.Errorf("line %d: publish failed: %w", s.line, err)
		}
		// A batch that was on the bus already counts for each of its lines.
		if res.Duplicate {
			sum.onBus++
		}
	}
	if f.wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, f.wait)
		defer cancel()
		for _, s := range pending {
			r, err := pub.WaitReceipt(wctx, s.d.ID, s.hash)
			switch {
			case err != nil:
				sum.pending++
				fmt.Fprintf(out, "line %d: %s: no receipt yet (published; ask again later)\n", s.line, s.d.ID)
			case r.Status == natsbus.ReceiptCommitted:
				if err := checkOrigin(s.line, r); err != nil {
					return err
				}
				sum.published++
				fmt.Fprintf(out, "line %d: %s: committed at leaf %d; findings: %s\n", s.line, s.d.ID, r.LeafIndex, findingsText(cov, s.d, r))
			case r.Status == natsbus.ReceiptIDConflict:
				conflict(s.line, r)
			case r.Status == natsbus.ReceiptRejected:
				sum.refused++
				fmt.Fprintf(out, "line %d: %s: refused by the ledger: %s\n", s.line, s.d.ID, r.Reason)
			}
		}
	} else {
		sum.published = len(pending)
		for _, s := range pending {
			fmt.Fprintf(out, "line %d: %s: published (not waiting for a receipt)\n", s.line, s.d.ID)
		}
	}
	fmt.Fprintf(out, "published %d, already accepted %d, refused %d, bad lines %d", sum.published, sum.alreadyAccepted, sum.refused, sum.bad)
	if sum.conflicts > 0 {
		fmt.Fprintf(out, ", id conflicts %d", sum.conflicts)
	}
	if sum.pending > 0 {
		fmt.Fprintf(out, ", no receipt yet %d", sum.pending)
	}
	if sum.onBus > 0 {
		fmt.Fprintf(out, " (%d were already on the bus)", sum.onBus)
	}
	fmt.Fprintln(out)
	if sum.bad > 0 || sum.refused > 0 || sum.conflicts > 0 || sum.pending > 0 {
		return &exitError{code: 1, err: errors.New("not every line was accepted")}
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// prepareLine decodes one input line and fills in what the publisher owns.
func prepareLine(raw []byte, key *events.PartyKey, origin string) (*events.Disclosure, error) {
	d, err := events.DecodeDisclosureJSON(raw)
	if err != nil {
		return nil, err
	}
	if d.Schema == "" {
		// A line with the subject's VRF output is wire format v2.
		d.Schema = d.Subject.Schema()
	}
	if d.Origin == "" {
		d.Origin = origin
	}
	if d.Discloser != "" && d.Discloser != key.Party {
		return nil, fmt.Errorf("discloser %q is not the key's party %q", d.Discloser, key.Party)
	}
	if d.Salt != "" {
		return nil, errors.New("salt is derived by the publisher; leave it out")
	}
	if d.ID == "" {
		if d.OccurredAt.IsZero() {
			return nil, errors.New("occurred_at is required")
		}
		d.ID = events.DerivedEventID(key.Party, raw, d.OccurredAt)
	}
	events.Seal(d, key)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}
