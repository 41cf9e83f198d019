package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
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
	"github.com/spoor-ledger/spoor/verifier"
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
	var src verifier.AuditSource
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
		src = ledger.NewStoreAuditSource(store, keys)
	} else {
		if f.token == "" {
			return errors.New("--url needs the FG's bearer token: --token @DIR/fg.token")
		}
		tok, err := readKeyArg(f.token)
		if err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		src = &verifier.HTTPAuditSource{URL: f.url, Token: tok, HTTP: &http.Client{Timeout: f.httpTimeout}}
	}

	var bar *progressbar.ProgressBar
	rep, err := verifier.Audit(ctx, src, verifier.AuditConfig{
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
func printAuditSummary(w io.Writer, rep *verifier.AuditReport) {
	fmt.Fprintf(w, "Audit of %s\n", rep.Origin)
	fmt.Fprintf(w, "  trusted: log key %s, cosigner key %s\n", rep.LogKey, rep.CosignerKey)
	if rep.AdminPinned {
		fmt.Fprintf(w, "  administrator key pinned: %s\n", rep.AdminKey)
	} else {
		fmt.Fprintf(w, "  administrator key NOT pinned: trusted covenant version 1's own key %s (pin it with --admin)\n", rep.AdminKey)
	}
	fmt.Fprintf(w, "  tree size %d; %d checkpoints kept, %d verify\n", rep.TreeSize, rep.Checkpoints.Count, rep.Checkpoints.Verified)
	e := rep.Entries
	fmt.Fprintf(w, "  entries: %d disclosures (%d erased), %d covenant versions, %d tombstones\n", e.Disclosures, e.Erased, e.Covenants, e.Tombstones)
	if rep.OK {
		fmt.Fprintln(w, "RESULT: every integrity check holds")
	} else {
		fmt.Fprintln(w, "RESULT: INTEGRITY CHECKS FAILED")
		listed := map[string]int{}
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
}

// printErasureAudit prints the audit's account of erasures on request.
func printErasureAudit(w io.Writer, ea *verifier.ErasureAudit) {
	if ea == nil || !ea.Available {
		fmt.Fprintln(w, "Erasures on request: not assessable from this source (the proposals are kept beside the log; audit with --data or with the FG's token)")
		return
	}
	fmt.Fprintf(w, "Erasures on request: %d proposals (%d confirmed, %d withdrawn, %d expired, %d open, %d overtaken); %d scope-days above %d a day; %d tombstones on request without a recorded second desk user\n",
		len(ea.Proposals), ea.ByStatus[verifier.ErasureConfirmed], ea.ByStatus[verifier.ErasureWithdrawn], ea.ByStatus[verifier.ErasureExpired],
		ea.ByStatus[verifier.ErasureProposed], ea.ByStatus[verifier.ErasureOvertaken], len(ea.Flagged), ea.DailyLimit, len(ea.WithoutDecision))
	for _, p := range ea.Proposals {
		fmt.Fprintf(w, "  %s leaf %d (%s) ground %s: %s; proposed by %s %s", p.ID, p.LeafIndex, p.Discloser, p.Ground, p.Status,
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

// auditHTMLTemplate is the Dutch report: one self-contained page, no
// scripts, no external assets, printable.
const auditHTMLTemplate = `<!DOCTYPE html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Auditrapport Spoor – {{.Origin}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
th { background: #f3f3f3; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { background: #e6f4ea; border: 1px solid #7bbf8e; padding: .8rem 1rem; }
.fail { background: #fde8e8; border: 1px solid #d97a7a; padding: .8rem 1rem; }
.def { font-size: .88rem; color: #333; }
.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; word-break: break-all; }
.bijzonder { font-weight: 600; color: #8a1c1c; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
</style>
</head>
<body>
<h1>Auditrapport van het verstrekkingenlogboek</h1>
<p>Logboek <span class="mono">{{.Origin}}</span> · opgesteld op {{when .GeneratedAt}}</p>

{{if .OK}}<div class="ok"><strong>Alle integriteitscontroles zijn geslaagd.</strong> Elk opgeslagen bericht komt overeen met het logboek, de boom komt overeen met elk bewaard checkpoint, en elke handtekening klopt met de sleutel die op dat moment gold.</div>
{{else}}<div class="fail"><strong>Integriteitscontroles NIET geslaagd.</strong> Het logboek wijkt op de hieronder genoemde punten af van wat het heeft vastgelegd. Bevindingen en afwijkingen verderop zijn alleen betrouwbaar voor de delen die wel kloppen.</div>
{{end}}

<h2>Wat is gecontroleerd</h2>
<table>
<tr><th>Omvang van het logboek</th><td>{{.TreeSize}} vermeldingen: {{.Entries.Disclosures}} verstrekkingen ({{.Entries.Erased}} na verloop van de bewaartermijn verwijderd), {{.Entries.Covenants}} convenantversies, {{.Entries.Tombstones}} verwijderingsberichten</td></tr>
<tr><th>Checkpoints</th><td>{{.Checkpoints.Count}} bewaard, {{.Checkpoints.Verified}} met geldige handtekening{{with .Checkpoints.Newest}}; nieuwste: nummer {{.Seq}}, grootte {{.Size}}, getekend op {{when .CosignedAt}}<br>wortel <span class="mono">{{.Root}}</span>{{end}}</td></tr>
<tr><th>Vertrouwde sleutels</th><td>logboek <span class="mono">{{.LogKey}}</span><br>medeondertekenaar <span class="mono">{{.CosignerKey}}</span><br>convenantbeheerder <span class="mono">{{.AdminKey}}</span> {{if .AdminPinned}}(vastgepind){{else}}(<strong>niet vastgepind</strong>: de sleutel uit convenantversie 1 zelf is vertrouwd){{end}}</td></tr>
</table>
<p class="def">Gecontroleerd: elk leaf record opnieuw gehasht en de boom opnieuw opgebouwd en vergeleken met elk bewaard checkpoint; de checkpoints onderling (de grootte neemt nooit af, één wortel per grootte, de tijd loopt niet terug); elk opgeslagen bericht tegen de hash in zijn leaf record; de convenantversies als keten, getekend door de beheerder; elke verstrekking tegen de sleutel die de verstrekker volgens de genoemde convenantversie had op het moment van verstrekken, niet ingetrokken; de regels van het convenant opnieuw toegepast en vergeleken met de opgeslagen bevindingen.</p>
<p class="def">Over de tijden: integrated_at (het moment van vastleggen) en de tijden van de checkpoints zijn verklaringen van het logboek zelf, getekend met zijn eigen sleutels; geen onafhankelijke getuige begrenst ze. occurred_at is de opgave van de verstrekker in zijn ondertekende bericht.</p>

{{if not .OK}}
<h2>Problemen</h2>
<table>
<tr><th>Controle</th><th>Waar</th><th>Melding</th></tr>
{{range .Problems}}<tr><td>{{check .Check}}</td><td>{{with .Leaf}}leaf {{.}}{{end}}{{with .Checkpoint}}checkpoint {{.}}{{end}}</td><td>{{.Message}}</td></tr>
{{end}}
{{range more}}<tr><td>{{check .Check}}</td><td></td><td>en nog {{.Count}} van deze soort</td></tr>
{{end}}
</table>
{{end}}

<h2>Verstrekkingen per partij</h2>
<table>
<tr><th>Partij</th><th class="n">Verstrekt</th><th class="n">Ontvangen</th><th class="n">Bijzonder (art. 9)</th><th class="n">Strafrechtelijk (art. 10)</th><th class="n">Met bevindingen</th><th class="n">Te laat vastgelegd</th></tr>
{{range .ByParty}}<tr><td>{{.Name}}<br><span class="mono">{{.Party}}</span></td><td class="n">{{.Disclosed}}</td><td class="n">{{.Received}}</td><td class="n">{{.Art9}}</td><td class="n">{{.Art10}}</td><td class="n">{{.WithFindings}}</td><td class="n">{{.RecordedLate}}</td></tr>
{{end}}
</table>

<h2>Per doel</h2>
<table>
<tr><th>Doel</th><th class="n">Verstrekkingen</th></tr>
{{range .ByPurpose}}<tr><td>{{.Label}}</td><td class="n">{{.Count}}</td></tr>
{{end}}
</table>

<h2>Per gegevenscategorie</h2>
<table>
<tr><th>Categorie</th><th>Soort</th><th class="n">Verstrekkingen</th></tr>
{{range .ByCategory}}<tr><td{{if .Special}} class="bijzonder"{{end}}>{{.Label}}</td><td>{{special .Special}}</td><td class="n">{{.Count}}</td></tr>
{{end}}
</table>

<h2>Bevindingen per regel van het convenant</h2>
<table>
<tr><th>Regel</th><th class="n">Verstrekkingen</th></tr>
{{range .ByRule}}<tr><td>{{.Label}}</td><td class="n">{{.Count}}</td></tr>
{{end}}
</table>

<h2>Afwijkingen</h2>
{{range .Anomalies.Definitions}}<p class="def"><strong>{{.Kind}}</strong>: {{.TextNL}}</p>
{{end}}

<h3>Ongewoon veel verstrekkingen op één dag</h3>
{{if .Anomalies.Volume}}<table>
<tr><th>Dag</th><th>Partij</th><th>Medewerker (verwijzing)</th><th class="n">Aantal</th><th class="n">Drempel</th><th class="n">Mediaan</th><th class="n">MAD</th><th class="n">Dagen geschiedenis</th></tr>
{{range .Anomalies.Volume}}<tr><td>{{.Day}}</td><td>{{partyName .Party}}</td><td class="mono">{{.Actor}}</td><td class="n">{{.Count}}</td><td class="n">{{num .Threshold}}</td><td class="n">{{num .Median}}</td><td class="n">{{num .MAD}}</td><td class="n">{{.HistoryDays}}</td></tr>
{{end}}</table>{{else}}<p>Geen.</p>{{end}}

<h3>Te laat vastgelegd ({{.Anomalies.RecordedLateCount}})</h3>
{{if .Anomalies.RecordedLate}}<table>
<tr><th>Leaf</th><th>Partij</th><th>Verstrekt op</th><th>Vastgelegd op</th><th class="n">Uren</th><th class="n">Toegestaan</th></tr>
{{range .Anomalies.RecordedLate}}<tr><td>{{.Leaf}}</td><td>{{partyName .Party}}</td><td>{{when .OccurredAt}}</td><td>{{when .IntegratedAt}}</td><td class="n">{{.Hours}}</td><td class="n">{{.AllowedHours}}</td></tr>
{{end}}</table>{{else}}<p>Geen.</p>{{end}}

<h3>Bijzondere en strafrechtelijke gegevens per partij</h3>
<table>
<tr><th>Partij</th><th class="n">Verstrekkingen</th><th class="n">Art. 9</th><th class="n">Art. 10</th><th class="n">Aandeel</th></tr>
{{range .Anomalies.SpecialCategories}}<tr><td>{{partyName .Party}}</td><td class="n">{{.Disclosures}}</td><td class="n">{{.Art9}}</td><td class="n">{{.Art10}}</td><td class="n">{{pct .Share}}</td></tr>
{{end}}
</table>

<h3>Ontvangers buiten het convenant ({{.Anomalies.OutsideRecipientsCount}})</h3>
{{if .Anomalies.OutsideRecipients}}<table>
<tr><th>Leaf</th><th>Verstrekker</th><th>Ontvanger</th><th class="n">Convenantversie</th></tr>
{{range .Anomalies.OutsideRecipients}}<tr><td>{{.Leaf}}</td><td>{{partyName .Party}}</td><td class="mono">{{.Recipient}}</td><td class="n">{{.CovenantVersion}}</td></tr>
{{end}}</table>{{else}}<p>Geen.</p>{{end}}

<h2>Verwijderingen op verzoek</h2>
{{with .ErasuresOnRequest}}{{if .Available}}
<p class="def">Een verwijdering op verzoek (AVG art. 17) vraagt twee medewerkers van het privacyloket: de een stelt haar voor, een tweede bevestigt haar. Gemarkeerd wordt een loket dat op één dag meer dan {{.DailyLimit}} verwijderingen bevestigde.</p>
{{if .Flagged}}<table>
<tr><th>Loket</th><th>Dag</th><th class="n">Bevestigd</th></tr>
{{range .Flagged}}<tr><td class="mono">{{.Scope}}</td><td>{{.Day}}</td><td class="n">{{.Confirmed}}</td></tr>
{{end}}</table>{{else}}<p>Geen loket boven de grens.</p>{{end}}
{{if .WithoutDecision}}<p>Verwijderd op verzoek zonder vastgelegde tweede medewerker (leaf van de tombstone): {{range .WithoutDecision}}{{.}} {{end}}</p>{{end}}
{{if .Proposals}}<table>
<tr><th>Voorstel</th><th class="n">Leaf</th><th>Verstrekker</th><th>Grond</th><th>Status</th><th>Voorgesteld door</th><th>Besloten door</th></tr>
{{range .Proposals}}<tr><td class="mono">{{.ID}}</td><td class="n">{{.LeafIndex}}</td><td>{{partyName .Discloser}}</td><td class="mono">{{.Ground}}</td><td>{{erasureStatusNL .Status}}</td><td>{{.ProposedBy}}, {{when .ProposedAt}}</td><td>{{if .DecidedAt}}{{.DecidedBy}}, {{when .DecidedAt}}{{end}}</td></tr>
{{end}}</table>{{else}}<p>Geen voorstellen.</p>{{end}}
{{else}}<p>Niet te beoordelen met deze bron: de voorstellen staan naast het logboek (controleer met --data of met het token van de FG).</p>{{end}}{{end}}

<h2>Convenantversies in het logboek</h2>
<table>
<tr><th class="n">Versie</th><th class="n">Leaf</th><th>Naam</th><th>Van kracht vanaf</th><th class="n">Partijen</th><th>Beheerderssleutel</th></tr>
{{range .Covenants}}<tr><td class="n">{{.Version}}</td><td class="n">{{.Leaf}}</td><td>{{.Name}}</td><td>{{when .EffectiveFrom}}</td><td class="n">{{.Parties}}</td><td class="mono">{{.AdminKey}}</td></tr>
{{end}}
</table>
<p class="def">Dit rapport noemt geen kinderen, pseudoniemen of medewerkers: een medewerker wordt alleen aangeduid met een verwijzing die de eigen organisatie kan narekenen.</p>
</body>
</html>
`

// checkLabelsNL names the audit's checks in Dutch.
var checkLabelsNL = map[string]string{
	"checkpoint-signature":   "Handtekening van een checkpoint",
	"checkpoint-sequence":    "Volgorde van de checkpoints",
	"checkpoint-consistency": "Checkpoints onderling",
	"checkpoint-root":        "Boom tegen checkpoint",
	"leaf-missing":           "Ontbrekend leaf record",
	"leaf-record":            "Onleesbaar leaf record",
	"leaf-tile":              "Leaf record tegen opgeslagen tegel",
	"leaf-beyond-checkpoint": "Leaf record voorbij het laatste checkpoint",
	"integrated-at":          "Tijd van vastleggen loopt terug",
	"body-hash":              "Opgeslagen bericht gewijzigd",
	"body-unreadable":        "Opgeslagen bericht onleesbaar",
	"body-missing":           "Opgeslagen bericht ontbreekt",
	"covenant":               "Convenantversie",
	"covenant-index":         "Verwijzing naar convenantversie",
	"signature":              "Handtekening van een verstrekking",
	"event-id":               "Dubbel vastgelegde verstrekking",
	"findings":               "Opgeslagen bevindingen",
	"tombstone":              "Verwijderingsbericht (tombstone)",
	"erasure-decision":       "Besluit tot verwijdering tegen het logboek",
}

// erasureStatusNL names the status of an erasure proposal in Dutch.
var erasureStatusNL = map[string]string{
	verifier.ErasureProposed:  "wacht op tweede medewerker",
	verifier.ErasureConfirmed: "bevestigd en verwijderd",
	verifier.ErasureWithdrawn: "ingetrokken",
	verifier.ErasureExpired:   "verlopen",
	verifier.ErasureOvertaken: "al verwijderd door bewaartermijn",
}

func writeAuditHTML(path string, rep *verifier.AuditReport) error {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		ams = time.UTC
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(ams).Format("02-01-2006 15:04:05 MST")
		},
		"check": func(c string) string {
			if l, ok := checkLabelsNL[c]; ok {
				return l
			}
			return c
		},
		"pct": func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) },
		"num": func(x float64) string {
			return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", x), "0"), ".")
		},
		"special": specialLabelNL,
		"more": func() []moreProblems {
			listed := map[string]int{}
			for _, p := range rep.Problems {
				listed[p.Check]++
			}
			var out []moreProblems
			for c, n := range rep.ProblemCounts {
				if n > listed[c] {
					out = append(out, moreProblems{Check: c, Count: n - listed[c]})
				}
			}
			return out
		},
		"partyName": func(id string) string {
			for _, p := range rep.ByParty {
				if p.Party == id {
					return p.Name
				}
			}
			return id
		},
		"erasureStatusNL": func(st string) string {
			if l, ok := erasureStatusNL[st]; ok {
				return l
			}
			return st
		},
	}
	t, err := template.New("audit").Funcs(funcs).Parse(auditHTMLTemplate)
	if err != nil {
		return fmt.Errorf("the report template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, rep); err != nil {
		return fmt.Errorf("couldn't write the HTML report: %w", err)
	}
	if err := durable.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("couldn't write the HTML report: %w", err)
	}
	return nil
}

type moreProblems struct {
	Check string
	Count int
}

func specialLabelNL(s events.Special) string {
	switch s {
	case events.SpecialArt9:
		return "bijzonder (AVG art. 9)"
	case events.SpecialArt10:
		return "strafrechtelijk (AVG art. 10)"
	}
	return ""
}
