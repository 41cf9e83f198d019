package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/datadir"
	"github.com/spoor-ledger/spoor/internal/durable"
	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/ledger/pebblestore"
	"github.com/spoor-ledger/spoor/ledger/subjectindex"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/report"
)

// exitAuditFailed is the exit status of an audit that found an integrity
// problem; 1 means the audit itself could not run.
const exitAuditFailed = 2

type auditFlags struct {
	data         string
	dataKeysDir  string
	url          string
	token        string
	vkey         string
	cosVkey      string
	admin        string
	jsonOut      bool
	html         string
	minParty     int
	minActor     int
	erasureDaily int
	httpTimeout  time.Duration
}

func newAuditCmd(g *globalFlags) *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit (--data DIR | --url URL --token TOKEN|@FILE --vkey KEY|@FILE --cosigner-vkey KEY|@FILE)",
		Short: "The FG's audit: recompute and check the whole log, and report per party, purpose and category",
		Long: `Audit a whole Spoor log, trusting only the pinned keys.

Every leaf is recomputed from the stored leaf records and every stored envelope
is checked against the hash its leaf record commits to; the tree is rebuilt and
compared with every kept checkpoint, and the checkpoints with each other (sizes
never shrink, one root per size, times never go back); the covenant versions
are checked as a chain signed by the administrator; every disclosure's
signature is checked against the key its discloser had in force under the
covenant version its leaf names, and the covenant's rules are run again and
compared with the findings the ledger stored.

The report counts disclosures per party, purpose, data category and broken
rule, and lists anomalies, each defined in the report: daily volumes above a
robust threshold, late recording, special categories, recipients outside the
covenant. It never shows a pseudonym or a staff id.

--data DIR reads the ledger's folder read-only; the ledger must be stopped (or
give a backup copy). --url reads a running ledger over HTTP with the FG's token
(DIR/fg.token); the log and cosigner keys must then be pinned with --vkey and
--cosigner-vkey (with --data they default to DIR/log.vkey and DIR/cosigner.vkey).
Pin the covenant administrator's key with --admin.

Exit status: 0 when every integrity check holds (findings and anomalies are
reported, not errors), 2 when one fails, 1 when the audit could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "audit the stopped ledger in this data folder (read-only)")
	fl.StringVar(&f.dataKeysDir, "data-keys", "", "with --data: the folder of the data keys that seal envelopes at rest (default: DIR/"+defaultDataKeysDir+" if it exists)")
	fl.StringVar(&f.url, "url", "", "audit a running ledger at this HTTP address")
	fl.StringVar(&f.token, "token", "", "the FG's bearer token for --url (TOKEN or @FILE)")
	fl.StringVar(&f.vkey, "vkey", "", "pinned log verifier key (KEY or @FILE; default with --data: DIR/log.vkey)")
	fl.StringVar(&f.cosVkey, "cosigner-vkey", "", "pinned cosigner verifier key (KEY or @FILE; default with --data: DIR/cosigner.vkey)")
	fl.StringVar(&f.admin, "admin", "", "pinned covenant administrator verifier key (KEY or @FILE)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON on standard output")
	fl.StringVar(&f.html, "html", "", "write the report in Dutch as a self-contained HTML page to this file")
	fl.IntVar(&f.minParty, "min-party-daily", 0, "smallest daily volume of a party reported as an anomaly (0: 20)")
	fl.IntVar(&f.minActor, "min-actor-daily", 0, "smallest daily volume of an actor reported as an anomaly (0: 10)")
	fl.IntVar(&f.erasureDaily, "erasure-daily-limit", 0, "flag a desk scope that confirms more erasures on request than this on one day (0: 5)")
	fl.DurationVar(&f.httpTimeout, "http-timeout", 5*time.Minute, "timeout of one HTTP request with --url")
	return cmd
}

func runAudit(ctx context.Context, f *auditFlags, out, errOut io.Writer) error {
	if (f.data == "") == (f.url == "") {
		return errors.New("give either --data DIR (a stopped ledger or a backup) or --url URL (a running ledger)")
	}
	keys, adminVkey, err := f.pinnedKeys()
	if err != nil {
		return err
	}
	var src audit.Source
	if f.data != "" {
		store, err := openReadOnlyStore(f.data)
		if err != nil {
			return err
		}
		defer store.Close()
		keys, err := f.dataKeys()
		if err != nil {
			return err
		}
		ss := ledger.NewStoreAuditSource(store, keys)
		src = ss
		// With the ledger's VRF key the audit recomputes the subject
		// index's last head from the envelopes (a backup without the
		// key is audited without it).
		if vrfPath := datadir.Dir(f.data).IndexVRFKey(); fileExists(vrfPath) {
			vrf, err := subjectindex.OpenVRFKey(vrfPath)
			if err != nil {
				return err
			}
			src = ss.WithIndex(vrf)
		}
	} else {
		if f.token == "" {
			return errors.New("--url needs the FG's bearer token: --token @DIR/fg.token")
		}
		tok, err := readKeyArg(f.token)
		if err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		src = &audit.HTTPSource{URL: f.url, Token: tok, HTTP: &http.Client{Timeout: f.httpTimeout}}
	}

	var bar *progressbar.ProgressBar
	rep, err := audit.Run(ctx, src, audit.Config{
		Keys: keys, AdminVkey: adminVkey,
		MinPartyDailyCount: f.minParty, MinActorDailyCount: f.minActor, ErasureDailyLimit: f.erasureDaily,
		Progress: func(done, total uint64) {
			if bar == nil {
				bar = newBar(int(total), "audit", errOut)
			}
			_ = bar.Set64(int64(done))
		},
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	if f.html != "" {
		if err := writeAuditHTML(f.html, rep); err != nil {
			return err
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("couldn't write the report: %w", err)
		}
	} else {
		printAuditSummary(out, rep)
	}
	if !rep.OK {
		n := 0
		for _, c := range rep.ProblemCounts {
			n += c
		}
		return &exitError{code: exitAuditFailed, err: fmt.Errorf("the audit failed: %d integrity problems (see the report)", n)}
	}
	return nil
}

// dataKeys opens the folder of the data keys that seal envelopes at rest,
// if there is one; the audit only reads it.
// fileExists reports whether path names a file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (f *auditFlags) dataKeys() (*ledger.DataKeys, error) {
	dir := f.dataKeysDir
	if dir == "" {
		dir = filepath.Join(f.data, defaultDataKeysDir)
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--data-keys %s is not a folder", dir)
	}
	keys, err := ledger.OpenDataKeys(dir)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the data keys: %w", err)
	}
	return keys, nil
}

// defaultDataKeysDir is where spoor serve keeps the data keys, below
// the data folder.
const defaultDataKeysDir = datadir.DataKeysName

// pinnedKeys reads the log, cosigner and administrator keys to trust.
func (f *auditFlags) pinnedKeys() (*verifier.LogKeys, string, error) {
	vkey, cosVkey := f.vkey, f.cosVkey
	if f.data != "" {
		if vkey == "" {
			vkey = "@" + datadir.Dir(f.data).LogVkey()
		}
		if cosVkey == "" {
			cosVkey = "@" + datadir.Dir(f.data).CosignerVkey()
		}
	}
	if vkey == "" || cosVkey == "" {
		return nil, "", errors.New("--url needs the pinned keys: --vkey KEY|@FILE and --cosigner-vkey KEY|@FILE")
	}
	lv, err := readKeyArg(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("--vkey: %w", err)
	}
	cv, err := readKeyArg(cosVkey)
	if err != nil {
		return nil, "", fmt.Errorf("--cosigner-vkey: %w", err)
	}
	keys, err := verifier.ParseLogKeys(lv, cv)
	if err != nil {
		return nil, "", fmt.Errorf("pinned keys: %w", err)
	}
	var admin string
	if f.admin != "" {
		if admin, err = readKeyArg(f.admin); err != nil {
			return nil, "", fmt.Errorf("--admin: %w", err)
		}
		if _, err := events.AdminPublicKey(admin); err != nil {
			return nil, "", fmt.Errorf("--admin %w", err)
		}
	}
	return keys, admin, nil
}

// printAuditSummary writes a short plain-text summary.
func printAuditSummary(w io.Writer, rep *audit.Report) {
	fmt.Fprintf(w, "Audit of %s\n", rep.Origin)
	fmt.Fprintf(w, "  trusted: log key %s, cosigner key %s\n", rep.LogKey, rep.CosignerKey)
	if rep.AdminPinned {
		fmt.Fprintf(w, "  administrator key pinned: %s\n", rep.AdminKey)
	} else {
		fmt.Fprintf(w, "  administrator key NOT pinned: trusted covenant version 1's own key %s (pin it with --admin)\n", rep.AdminKey)
	}
	fmt.Fprintf(w, "  tree size %d; %d checkpoints kept, %d verify\n", rep.TreeSize, rep.Checkpoints.Count, rep.Checkpoints.Verified)
	e := rep.Entries
	fmt.Fprintf(w, "  entries: %d disclosures (%d erased), %d covenant versions, %d tombstones, %d inzage answers (%d erased)\n",
		e.Disclosures, e.Erased, e.Covenants, e.Tombstones, e.Answers, e.AnswersErased)
	printAnswers(w, rep.Answers)
	if rep.OK {
		fmt.Fprintln(w, "RESULT: every integrity check holds")
	} else {
		fmt.Fprintln(w, "RESULT: INTEGRITY CHECKS FAILED")
		listed := map[audit.Check]int{}
		for _, p := range rep.Problems {
			listed[p.Check]++
			fmt.Fprintf(w, "  %s\n", p.String())
		}
		for check, n := range rep.ProblemCounts {
			if n > listed[check] {
				fmt.Fprintf(w, "  ... and %d more %s problems\n", n-listed[check], check)
			}
		}
	}
	findings := 0
	for _, r := range rep.ByRule {
		if r.Count > 0 {
			findings += r.Count
			fmt.Fprintf(w, "  finding %-36s %d\n", r.Rule, r.Count)
		}
	}
	a := rep.Anomalies
	fmt.Fprintf(w, "Anomalies: %d volume days, %d late recordings, %d recipients outside the covenant\n",
		len(a.Volume), a.RecordedLateCount, a.OutsideRecipientsCount)
	for _, v := range a.Volume {
		who := v.Party
		if v.Actor != "" {
			who += " actor " + v.Actor
		}
		fmt.Fprintf(w, "  %s %s: %d (threshold %.1f: median %.1f, MAD %.1f over %d days)\n", v.Day, who, v.Count, v.Threshold, v.Median, v.MAD, v.HistoryDays)
	}
	printErasureAudit(w, rep.ErasuresOnRequest)
	printWitnessAudit(w, rep.Witnessing)
}

// printWitnessAudit prints the audit's account of the witnesses; nothing
// for a log without a witness policy.
func printWitnessAudit(w io.Writer, wa *audit.Witnessing) {
	if wa == nil {
		return
	}
	if !wa.Available {
		fmt.Fprintf(w, "Witnesses: not assessable from this source (%s)\n", wa.Reason)
		return
	}
	fmt.Fprintf(w, "Witnesses: policy from leaf %d; %d witnessed checkpoints kept, %d meet the policy; %d entries not witnessed yet; skew %ds\n",
		wa.PolicyFromLeaf, wa.Checkpoints, wa.MetPolicy, wa.Uncovered, wa.SkewSeconds)
	if n := wa.Newest; n != nil {
		fmt.Fprintf(w, "  newest witnessed: checkpoint %d, size %d, by %s, at the latest %s\n", n.Seq, n.Size, strings.Join(n.Witnesses, ", "), n.LatestAt.Format(time.RFC3339))
	}
	for _, s := range []struct {
		what string
		st   *audit.UnwitnessedStretch
	}{{"in entries", wa.LongestByEntries}, {"in time", wa.LongestByTime}} {
		if s.st == nil {
			continue
		}
		state := "witnessed"
		if s.st.Open {
			state = "NOT witnessed yet"
		}
		fmt.Fprintf(w, "  longest stretch without witnesses %s: %d entries from leaf %d, %ds (%s)\n", s.what, s.st.Entries, s.st.FromLeaf, s.st.Seconds, state)
	}
}

// printErasureAudit prints the audit's account of erasures on request.
func printErasureAudit(w io.Writer, ea *audit.ErasuresOnRequest) {
	if ea == nil || !ea.Available {
		fmt.Fprintln(w, "Erasures on request: not assessable from this source (the proposals are kept beside the log; audit with --data or with the FG's token)")
		return
	}
	fmt.Fprintf(w, "Erasures on request: %d proposals (%d confirmed, %d withdrawn, %d expired, %d open, %d overtaken); %d scope-days above %d a day; %d tombstones on request without a recorded second desk user\n",
		len(ea.Proposals), ea.ByStatus[verifier.ErasureConfirmed], ea.ByStatus[verifier.ErasureWithdrawn], ea.ByStatus[verifier.ErasureExpired],
		ea.ByStatus[verifier.ErasureProposed], ea.ByStatus[verifier.ErasureOvertaken], len(ea.Flagged), ea.DailyLimit, len(ea.WithoutDecision))
	for _, p := range ea.Proposals {
		fmt.Fprintf(w, "  %s leaf %d (%s) ground %s (%s): %s; proposed by %s %s", p.ID, p.LeafIndex, p.Discloser, p.Ground, report.ErasureGroundLabel(p.Ground), p.Status,
			p.ProposedBy, p.ProposedAt.Format(time.DateTime))
		if p.DecidedAt != nil {
			fmt.Fprintf(w, ", decided by %s %s", p.DecidedBy, p.DecidedAt.Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	for _, d := range ea.Flagged {
		fmt.Fprintf(w, "  flagged: %s on %s confirmed %d erasures on request (more than %d)\n", d.Scope, d.Day, d.Confirmed, ea.DailyLimit)
	}
	for _, tomb := range ea.WithoutDecision {
		fmt.Fprintf(w, "  tombstone at leaf %d: erased on request without a recorded second desk user\n", tomb)
	}
}

// openReadOnlyStore opens DIR/ledger read-only.
func openReadOnlyStore(dataDir string) (*pebblestore.Store, error) {
	dir := datadir.Dir(dataDir).Ledger()
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		if _, err2 := os.Stat(dir); err2 != nil {
			return nil, fmt.Errorf("no ledger in %s (%s does not exist)", dataDir, dir)
		}
	}
	// Read-only: the audit may not change a byte of what it checks.
	db, err := pebblestore.Open(dir, pebblestore.Config{ReadOnly: true})
	if err != nil {
		if isLockHeld(err) {
			return nil, fmt.Errorf("the ledger in %s is in use (a running spoor serve holds its lock). audit --data needs a stopped ledger "+
				"or a backup copy of its folder; to audit the running ledger use --url URL --token @%s --vkey @%s --cosigner-vkey @%s: %w",
				dataDir, datadir.Dir(dataDir).FGToken(), datadir.Dir(dataDir).LogVkey(), datadir.Dir(dataDir).CosignerVkey(), err)
		}
		return nil, fmt.Errorf("couldn't open the ledger in %s read-only: %w", dir, err)
	}
	return db, nil
}

// isLockHeld reports whether a Pebble open failed on the folder's lock.
func isLockHeld(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EWOULDBLOCK) ||
		strings.Contains(err.Error(), "lock held")
}

// writeAuditHTML writes the Dutch audit report (verifier/report) to path,
// through a temporary file renamed into place, so that a reader never sees
// half a report.
func writeAuditHTML(path string, rep *audit.Report) error {
	var buf bytes.Buffer
	if err := report.WriteAudit(&buf, rep); err != nil {
		return err
	}
	if err := durable.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("couldn't write the HTML report: %w", err)
	}
	return nil
}

// printAnswers lists the inzage answers on the record: one line each, and
// one per withholding with its ground.
func printAnswers(w io.Writer, answers []audit.AnswerInfo) {
	if len(answers) == 0 {
		return
	}
	withheld := 0
	for _, a := range answers {
		withheld += len(a.Withheld)
	}
	fmt.Fprintf(w, "Inzage answers: %d on the record, %d disclosures withheld in them\n", len(answers), withheld)
	for _, a := range answers {
		scope := strings.Join(a.Parties, ",")
		if a.CentralDesk {
			scope = "central desk"
		}
		fmt.Fprintf(w, "  leaf %d: request %s (%s) released %s for %s: %d shown, %d withheld, %d erased; desk users %s, %s\n",
			a.Leaf, a.RequestID, a.Relation, a.ReleasedAt.Format(time.RFC3339), scope, a.Included, len(a.Withheld), a.Erased, a.RequestedBy, a.ReleasedBy)
		for _, x := range a.Withheld {
			fmt.Fprintf(w, "    withheld leaf %d: %s\n", x.Index, x.Ground)
		}
		if y := a.YoungPerson; y != nil {
			fmt.Fprintf(w, "    young person 16+: %s (reference %q) for leaves %v\n", y.Decision, y.ConsentReference, y.Leaves)
		}
	}
}
