package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/synth"
)

type simulateFlags struct {
	data     string
	natsURL  string
	n        int
	seed     uint64
	children int
	report   string
	wait     time.Duration
	creds    string
	natsCA   string
}

func newSimulateCmd(g *globalFlags) *cobra.Command {
	f := &simulateFlags{}
	cmd := &cobra.Command{
		Use:   "simulate --data DIR --events N [--seed S] [--report FILE]",
		Short: "Publish realistic synthetic disclosures from the demo covenant's parties",
		Long: `Publish synthetic traffic to a running ledger (spoor serve --data DIR on the
demo covenant): disclosures by the demo parties with their demo keys, with a
realistic mix of purposes, categories, age bands and consent, and a few
deliberate rule findings for the FG to find.

Every child is a synthetic BSN from the 9999 test range. The report, marked
SYNTHETIC, lists those numbers with how many disclosures each has, so that you
can try an inzageverzoek straight away.

The disclosures happen in office hours (08:30-17:00, Europe/Amsterdam) on the
day before today, whatever the hour simulate runs, so none is recorded late but
the few made late on purpose (the summary counts them); staff roles fit the
organisation, consent goes with the legal basis that needs it, a school
transfer goes from primary to secondary education, and every party discloses.
The same --seed on the same day gives the same events, so a rerun publishes
nothing new, and the first N events of --events M are those of --events N.

Without --nats, simulate connects to the NATS server the ledger of --data
last started on (DIR/nats.url), or else to ` + nats.DefaultURL + `.

When the ledger runs with --nats-users, each party may only publish on its own
subject: simulate then connects once per party with the NKey seed that serve
wrote for it in DIR/nats-credentials (or --nats-credentials).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "the ledger's data folder (for DIR/demo-keys), required")
	fl.StringVar(&f.natsURL, "nats", "", "NATS server URL (default: the ledger's of --data, from DIR/nats.url)")
	fl.IntVar(&f.n, "events", 1000, "number of events")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed")
	fl.IntVar(&f.children, "children", defaultSimChildren, "number of synthetic children (the same whatever --events, so that a longer run extends a shorter one)")
	fl.StringVar(&f.report, "report", "", "write the synthetic report to this file (.json for JSON)")
	fl.DurationVar(&f.wait, "wait", 2*time.Minute, "how long to wait for the ledger's receipts")
	fl.StringVar(&f.creds, "nats-credentials", "", "folder of per-party NATS seeds <party>.nk (default: DIR/nats-credentials when it exists)")
	fl.StringVar(&f.natsCA, "nats-ca", "", "CA certificate (PEM) that signed the NATS server's certificate")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

// SimulationReport is what simulate writes with --report.
type SimulationReport struct {
	Synthetic   string         `json:"synthetic"`
	Origin      string         `json:"origin"`
	Seed        uint64         `json:"seed"`
	Events      int            `json:"events"`
	Committed   int            `json:"committed"`
	Rejected    int            `json:"rejected"`
	IDConflicts int            `json:"id_conflicts"`
	NoReceipt   int            `json:"no_receipt"`
	Findings    int            `json:"events_with_findings"`
	MadeLate    int            `json:"made_late_on_purpose"`
	ByParty     map[string]int `json:"by_party"`
	ByPurpose   map[string]int `json:"by_purpose"`
	Children    []SimChild     `json:"children"`
	GeneratedAt time.Time      `json:"generated_at"`
}

// SimChild is one synthetic child of the report.
type SimChild struct {
	BSN     string `json:"synthetic_bsn"`
	AgeBand string `json:"age_band"`
	Events  int    `json:"events"`
}

func runSimulate(ctx context.Context, f *simulateFlags, out, errOut io.Writer) error {
	if f.n < 1 {
		return errors.New("--events must be at least 1")
	}
	m, err := demo.Load(datadir.Dir(f.data).DemoKeys())
	if err != nil {
		return fmt.Errorf("simulate needs the demo covenant of a ledger started with 'spoor serve --data %s' (no --covenant): %w", f.data, err)
	}
	gen, err := simGenerator(f, m, time.Now())
	if err != nil {
		return err
	}
	if f.natsURL == "" {
		f.natsURL = ledgerNATSURL(f.data)
	}

	pubs, closeAll, err := simulatePublishers(f, m)
	if err != nil {
		return err
	}
	defer closeAll()

	rep := SimulationReport{Synthetic: "SYNTHETISCH - geen echte gegevens; BSN's uit de testreeks 9999",
		Origin: m.Signed.Covenant.Origin, Seed: f.seed, Events: f.n, ByParty: map[string]int{}, ByPurpose: map[string]int{},
		GeneratedAt: time.Now().UTC()}
	perChild := map[string]int{}
	type sent struct {
		party, id string
		hash      [32]byte // of the envelope: a receipt is about these bytes
	}
	all := make([]sent, 0, f.n)
	bar := newBar(f.n, "publishing", errOut)
	for i := 0; i < f.n; i++ {
		d, child := gen.Next()
		if len(m.Signed.Covenant.Check(d)) > 0 {
			rep.Findings++
		}
		p := pubs[d.Discloser]
		pp, err := p.PublishAsync(ctx, d)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		perChild[child.BSN]++
		rep.ByParty[d.Discloser]++
		rep.ByPurpose[d.Purpose]++
		all = append(all, sent{d.Discloser, d.ID, pp.EnvelopeHashes()[0]})
		_ = bar.Add(1)
	}
	for _, p := range pubs {
		if err := p.Flush(ctx); err != nil {
			return err
		}
	}
	_ = bar.Finish()

	// Wait for every receipt, with a few requests in flight.
	bar = newBar(f.n, "waiting for receipts", errOut)
	wctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	var mu sync.Mutex
	var conflicts []string
	var wg sync.WaitGroup
	next := make(chan sent)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				r, err := pubs[s.party].WaitReceipt(wctx, s.id, s.hash)
				mu.Lock()
				switch {
				case err != nil:
					rep.NoReceipt++
				case r.Status == natsbus.ReceiptCommitted:
					rep.Committed++
				case r.Status == natsbus.ReceiptIDConflict:
					// The same id with other bytes (a rerun with another
					// seed or event count): never logged; say which.
					rep.IDConflicts++
					conflicts = append(conflicts, fmt.Sprintf("event %s of %s: %s: the ledger holds this id at leaf %d with other bytes; not logged",
						s.id, s.party, events.ReasonIDConflict, r.LeafIndex))
				default:
					rep.Rejected++
				}
				mu.Unlock()
				_ = bar.Add(1)
			}
		}()
	}
	for _, s := range all {
		next <- s
	}
	close(next)
	wg.Wait()
	_ = bar.Finish()

	for _, c := range gen.Children() {
		if n := perChild[c.BSN]; n > 0 {
			rep.Children = append(rep.Children, SimChild{BSN: c.BSN, AgeBand: string(c.AgeBand), Events: n})
		}
	}
	sort.Slice(rep.Children, func(i, j int) bool { return rep.Children[i].Events > rep.Children[j].Events })
	sort.Strings(conflicts)
	for _, c := range conflicts {
		fmt.Fprintln(out, c)
	}
	rep.MadeLate = gen.MadeLate()
	fmt.Fprintf(out, "simulated %d events (seed %d): committed %d, rejected %d, id conflicts %d, no receipt %d; %d with covenant findings, %d made late on purpose\n",
		f.n, f.seed, rep.Committed, rep.Rejected, rep.IDConflicts, rep.NoReceipt, rep.Findings, rep.MadeLate)
	if f.report != "" {
		if err := writeSimReport(f.report, &rep); err != nil {
			return err
		}
		fmt.Fprintf(out, "report (synthetic BSNs for trying an inzage): %s\n", f.report)
	}
	if n := rep.NoReceipt + rep.Rejected + rep.IDConflicts; n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d events not committed", n)}
	}
	return nil
}

// defaultSimChildren is the number of synthetic children: fixed, not
// derived from --events, so that event i is the same in a run of any
// length (the children are drawn from the seed before any event).
const defaultSimChildren = 50

// simGenerator makes the generator of a simulation started at now: its
// events depend on the seed, the children and now's day in Amsterdam only.
func simGenerator(f *simulateFlags, m *demo.Material, now time.Time) (*synth.Generator, error) {
	children := f.children
	if children < 1 {
		return nil, errors.New("--children must be at least 1")
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, f.seed, children)
	if err != nil {
		return nil, err
	}
	gen.Now = now
	return gen, nil
}

// ledgerNATSURL is the NATS URL the ledger of dir last started on, or the
// default URL when it never wrote one.
func ledgerNATSURL(dir string) string {
	b, err := os.ReadFile(datadir.Dir(dir).NATSURL())
	if err != nil {
		return nats.DefaultURL
	}
	if u := strings.TrimSpace(string(b)); u != "" {
		return u
	}
	return nats.DefaultURL
}

func writeSimReport(path string, rep *SimulationReport) error {
	var b strings.Builder
	if strings.HasSuffix(path, ".json") {
		j, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	} else {
		fmt.Fprintf(&b, "%s\n\nLog %s, seed %d, %d events (%d committed, %d rejected), %d with covenant findings, %d made late on purpose.\n\n",
			rep.Synthetic, rep.Origin, rep.Seed, rep.Events, rep.Committed, rep.Rejected, rep.Findings, rep.MadeLate)
		b.WriteString("Synthetic children (BSN from the 9999 test range) and their number of disclosures:\n")
		for _, c := range rep.Children {
			fmt.Fprintf(&b, "  %s  %-9s %d\n", c.BSN, c.AgeBand, c.Events)
		}
		b.WriteString("\nDisclosures per party:\n")
		for _, k := range sortedKeys(rep.ByParty) {
			fmt.Fprintf(&b, "  %-40s %d\n", k, rep.ByParty[k])
		}
		b.WriteString("\nDisclosures per purpose:\n")
		for _, k := range sortedKeys(rep.ByPurpose) {
			fmt.Fprintf(&b, "  %-40s %d\n", k, rep.ByPurpose[k])
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// newBar returns a progress bar on a terminal, and a silent one otherwise.
func newBar(n int, what string, w io.Writer) *progressbar.ProgressBar {
	if fh, ok := w.(*os.File); ok && term.IsTerminal(int(fh.Fd())) {
		return progressbar.NewOptions(n, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(io.Discard))
}

// simulatePublishers connects the demo parties' publishers. With seeds in
// the credentials folder (serve --nats-users wrote them) every party gets
// its own connection under its own NATS user, because the server lets a
// user publish only on its own subject and read only its own receipts;
// without seeds, one shared connection serves them all (the loopback
// demo, which has no NATS users).
func simulatePublishers(f *simulateFlags, m *demo.Material) (map[string]*natsbus.Publisher, func(), error) {
	dir := f.creds
	if dir == "" {
		dir = credentialsDir(f.data)
	}
	tlsFlags := natsClientFlags{ca: f.natsCA}
	base, err := tlsFlags.options()
	if err != nil {
		return nil, nil, err
	}
	var conns []*nats.Conn
	closeAll := func() {
		for _, nc := range conns {
			nc.Close()
		}
	}
	connect := func(name string, extra ...nats.Option) (jetstream.JetStream, error) {
		opts := append(append([]nats.Option{nats.Name(name)}, base...), extra...)
		nc, err := nats.Connect(f.natsURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("couldn't connect to NATS at %s as %s (is 'spoor serve' running?): %w", redactURLs(f.natsURL), name, err)
		}
		conns = append(conns, nc)
		return jetstream.New(nc)
	}
	var shared jetstream.JetStream
	pubs := map[string]*natsbus.Publisher{}
	for party, k := range m.Parties {
		js := shared
		seed := filepath.Join(dir, party+".nk")
		if _, statErr := os.Stat(seed); statErr == nil {
			o, err := nats.NkeyOptionFromSeed(seed)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("NATS seed of %s: %w", party, err)
			}
			js, err = connect("spoor-simulate-"+party, o, nats.CustomInboxPrefix(natsbus.InboxPrefix(party)))
			if err != nil {
				closeAll()
				return nil, nil, err
			}
		} else if f.creds != "" {
			closeAll()
			return nil, nil, fmt.Errorf("--nats-credentials %s has no seed for party %s (%s.nk)", dir, party, party)
		} else if js == nil {
			if js, err = connect("spoor-simulate"); err != nil {
				closeAll()
				return nil, nil, err
			}
			shared = js
		}
		p, err := natsbus.NewPublisher(js, k, natsbus.WithMaxInFlight(1024))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		pubs[party] = p
	}
	return pubs, closeAll, nil
}
