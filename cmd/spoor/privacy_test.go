package main

// TestPrivacyArtefacts is the privacy check of issue 8. Pseudonyms are
// personal data (anyone holding K_v can reverse one by trying every BSN),
// so a full simulation runs — `spoor serve` as a child process, `spoor
// simulate`, wrong input of every kind, an inzageverzoek answered, an FG
// audit — and then every artefact is searched for the synthetic BSNs, their
// pseudonyms (as hex and as raw bytes) and pieces of the envelopes' base64
// payloads:
//
//   - the server's log (stderr, at debug level) and every command's output;
//   - /metrics, /healthz, the public tlog-tiles API and proofs, the status
//     API of every event, and the answers to tokens of the wrong role;
//   - the NATS streams: SPOOR (empty after ingest) and SPOOR_REJECTED;
//   - every file in the data folder, including the JetStream store.
//
// Where pseudonyms belong, and are therefore not searched:
//   - DATA/ledger (Pebble): the envelopes themselves, the data-subject index
//     ('s' keys: the raw 32-byte pseudonym, so that an inzage finds a
//     child's disclosures), the access requests of the privacy desk ('q':
//     the pseudonyms asked about) and erasure notices ('n');
//   - the FG's /v1/entries and a discloser's own /v1/events/<id> (the
//     envelope, to those entitled to it);
//   - the inzage bundle and its report (the answer, for the parent);
//   - the simulation report (the synthetic BSNs, for the tester).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/events/demo"
	"github.com/spoor-ledger/spoor/events/natsbus"
	"github.com/spoor-ledger/spoor/internal/synth"
	"github.com/spoor-ledger/spoor/ledger/httpapi"
)

// privacyNeedle is one thing that must not appear: its bytes and a name for
// the failure message that does not repeat it.
type privacyNeedle struct {
	what  string
	bytes []byte
}

// privacyScan holds the needles and reports where any of them turns up.
type privacyScan struct {
	t        *testing.T
	subjects []privacyNeedle // BSNs and pseudonyms (hex and raw)
	payloads []privacyNeedle // pieces of the envelopes' base64 payloads
	checked  int
}

func (p *privacyScan) addChild(bsn, pseudonym string) {
	raw, err := hex.DecodeString(pseudonym)
	if err != nil || len(raw) != 32 {
		p.t.Fatalf("pseudonym of a synthetic child is not 64 hex")
	}
	n := len(p.subjects) / 3
	p.subjects = append(p.subjects,
		privacyNeedle{fmt.Sprintf("BSN of child %d", n), []byte(bsn)},
		privacyNeedle{fmt.Sprintf("pseudonym (hex) of child %d", n), []byte(pseudonym)},
		privacyNeedle{fmt.Sprintf("pseudonym (raw bytes) of child %d", n), raw})
}

// addPayload adds a 40-character piece from the middle of an envelope's
// base64 payload (any copy of the envelope as JSON contains it), and one
// from the middle of the base64 of the whole envelope (the form the API
// serves it in, and would leak it in).
func (p *privacyScan) addPayload(eventID string, env []byte, payloadB64 string) {
	for _, b64 := range []string{payloadB64, base64.StdEncoding.EncodeToString(env)} {
		if len(b64) < 120 {
			p.t.Fatalf("payload of %s is too short to sample", eventID)
		}
		mid := len(b64) / 2
		p.payloads = append(p.payloads, privacyNeedle{"the envelope of event " + eventID, []byte(b64[mid : mid+40])})
	}
}

// none fails when data, the artefact called where, holds a subject (and,
// with envelopes set, a piece of an envelope).
func (p *privacyScan) none(where string, data []byte, envelopes bool) {
	p.t.Helper()
	p.checked++
	needles := p.subjects
	if envelopes {
		needles = append(append([]privacyNeedle{}, p.subjects...), p.payloads...)
	}
	for _, n := range needles {
		if bytes.Contains(data, n.bytes) {
			p.t.Errorf("%s holds %s", where, n.what)
			return
		}
	}
}

// found counts the needles in data: the positive control that shows the
// search would see them where they are.
func (p *privacyScan) found(data []byte) (subjects, envelopes int) {
	for _, n := range p.subjects {
		if bytes.Contains(data, n.bytes) {
			subjects++
		}
	}
	for _, n := range p.payloads {
		if bytes.Contains(data, n.bytes) {
			envelopes++
		}
	}
	return subjects, envelopes
}

func TestPrivacyArtefacts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a full simulation with spoor serve as a process")
	}
	bin := buildSpoor(t)
	dir := t.TempDir()
	partyTok, party := "party-token-of-amersfoort", "gemeente-amersfoort"
	tokSum := sha256.Sum256([]byte(partyTok))
	tokensFile := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokensFile, fmt.Appendf(nil, `[{"name":"amersfoort-system","role":"party","party":%q,"token_sha256":%q}]`,
		party, hex.EncodeToString(tokSum[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServeProc(t, bin, dir, "--log-level", "debug", "--idle-cosign", "1s", "--tokens", tokensFile)
	if err := srv.start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.waitReady(secReady); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.interrupt(30 * time.Second)
		}
	}()
	data := srv.data
	m, err := demo.Load(filepath.Join(data, "demo-keys"))
	if err != nil {
		t.Fatal(err)
	}
	scan := &privacyScan{t: t}
	var outputs []string // what every command printed
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runBin(t, bin, stdin, args...)
		outputs = append(outputs, "spoor "+args[0]+": "+out+errOut)
		if code != 0 {
			t.Fatalf("spoor %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	runFail := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runBin(t, bin, stdin, args...)
		outputs = append(outputs, "spoor "+args[0]+" (refused): "+out+errOut)
		if code == 0 {
			t.Fatalf("spoor %s succeeded; it should have refused", strings.Join(args, " "))
		}
		return out + errOut
	}

	// The simulation: synthetic children from the 9999 test range.
	simReport := filepath.Join(dir, "simulation.json")
	run("", "simulate", "--data", data, "--nats", srv.natsURL(), "--events", "300", "--seed", "5", "--report", simReport)
	var rep SimulationReport
	if err := json.Unmarshal([]byte(readFile(t, simReport)), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Children) == 0 || rep.Committed != 300 {
		t.Fatalf("simulation: %d committed, %d children", rep.Committed, len(rep.Children))
	}
	gen, err := synth.New(m.Signed.Covenant, m.SubjectKey, 99, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Children {
		p, err := events.Pseudonym(m.SubjectKey, events.IDTypeBSN, c.BSN)
		if err != nil {
			t.Fatal(err)
		}
		scan.addChild(c.BSN, p)
	}
	for _, c := range gen.Children() {
		scan.addChild(c.BSN, c.Pseudonym)
	}
	child := gen.Children()[0]

	// Wrong input with a BSN in it, on the bus and at the command line.
	nc, err := nats.Connect(srv.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var badIDs []string
	for i, mutate := range []func(d *events.Disclosure){
		func(d *events.Disclosure) { d.Origin = child.BSN },
		func(d *events.Disclosure) { d.Subject.Pseudonym = child.BSN },
		func(d *events.Disclosure) {
			d.CaseRef = "dossier " + child.BSN
			d.OccurredAt = time.Date(2020, 1, 6, 9, 0, 0, 0, time.UTC)
		},
	} {
		d, _ := gen.Next()
		mutate(d)
		k := m.Parties[d.Discloser]
		events.Seal(d, k)
		payload, err := d.MarshalCanonical()
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(natsbus.DisclosureSubject(d.Discloser))
		msg.Data = events.SignEnvelope(events.PayloadType, payload, k.Private)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("bad input %d: %v", i, err)
		}
		badIDs = append(badIDs, d.ID)
	}
	keyFile := filepath.Join(data, "demo-keys", demo.PartyKeyFile(party))
	runFail(fmt.Sprintf(`{"bsn":%q,"purpose":"mdo-overleg"}`+"\n", child.BSN),
		"publish", "--key", keyFile, "--nats", srv.natsURL(), "--wait", "0s")
	d := nextBy(t, gen, party)
	d.Subject.Pseudonym = child.BSN
	runFail(disclosureLine(t, d), "publish", "--key", keyFile, "--nats", srv.natsURL(), "--wait", "0s")
	runFail("123456789\n", "inzage", "request", "--data", data, "--url", srv.url(), "--relation", "parent")

	// An inzageverzoek, answered: the bundle and report are the parent's.
	asked := childUnder16(t, &rep)
	reqOut := run(asked.BSN+"\n", "inzage", "request", "--data", data, "--url", srv.url(), "--relation", "parent")
	reqID := strings.TrimSpace(reqOut)
	bundle, report := filepath.Join(dir, "inzage.json"), filepath.Join(dir, "inzage.html")
	run("", "inzage", "release", reqID, "--data", data, "--url", srv.url(), "-o", bundle, "--html", report,
		"--vkey", "@"+filepath.Join(data, "log.vkey"), "--cosigner-vkey", "@"+filepath.Join(data, "cosigner.vkey"),
		"--admin", "@"+filepath.Join(data, "demo-keys", demo.AdminPubFile))
	// The report names the bundle file as the release wrote it.
	if page := readFile(t, report); !strings.Contains(page, "<code>inzage.json</code>") || !strings.Contains(page, "spoor verify inzage.json ") {
		t.Error("the report does not name the bundle file the release wrote (inzage.json)")
	}
	if p, _ := events.Pseudonym(m.SubjectKey, events.IDTypeBSN, asked.BSN); !strings.Contains(readFile(t, bundle), p) {
		t.Error("the inzage bundle does not name the child's pseudonym; the privacy search would prove nothing about it")
	}

	// The FG's audit over HTTP.
	auditHTML := filepath.Join(dir, "audit.html")
	run("", "audit", "--url", srv.url(), "--token", "@"+filepath.Join(data, "fg.token"),
		"--vkey", "@"+filepath.Join(data, "log.vkey"), "--cosigner-vkey", "@"+filepath.Join(data, "cosigner.vkey"),
		"--admin", "@"+filepath.Join(data, "demo-keys", demo.AdminPubFile), "--json", "--html", auditHTML)
	scan.none("the audit's HTML report", []byte(readFile(t, auditHTML)), true)

	// Every entry, as the FG reads it: the envelopes to search for
	// elsewhere, and the ids for the status API.
	hc := &http.Client{Timeout: 30 * time.Second}
	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.url()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	fgTok := strings.TrimSpace(readFile(t, filepath.Join(data, "fg.token")))
	deskTok := strings.TrimSpace(readFile(t, filepath.Join(data, "demo-keys", "desk-1.token")))
	type logged struct{ id, discloser string }
	var all []logged
	var size uint64
	var fgPage []byte
	for from := uint64(0); ; {
		code, body := get(fmt.Sprintf("/v1/entries?from=%d&limit=1000", from), fgTok)
		if code != http.StatusOK {
			t.Fatalf("/v1/entries: %d %s", code, body)
		}
		fgPage = body
		var page httpapi.EntriesResponse
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		size = page.TreeSize
		for _, e := range page.Entries {
			if len(e.Envelope) == 0 {
				continue
			}
			env, err := events.ParseEnvelope(e.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			d, err := events.DecodeDisclosure(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, logged{d.ID, d.Discloser})
			scan.addPayload(d.ID, e.Envelope, base64.StdEncoding.EncodeToString(env.Payload))
		}
		if page.Next == nil {
			break
		}
		from = *page.Next
	}
	if len(all) < 300 {
		t.Fatalf("the FG reads %d disclosures, want at least 300", len(all))
	}

	// Positive control: where they belong, the needles are found: the
	// child's pseudonym in the parent's bundle, the envelopes in the FG's
	// entries.
	if subj, _ := scan.found([]byte(readFile(t, bundle))); subj == 0 {
		t.Fatal("the inzage bundle shows no subject needle; the search cannot see what it looks for")
	}
	if _, envs := scan.found(fgPage); envs == 0 {
		t.Fatal("the FG's entries show no envelope needle; the search cannot see what it looks for")
	}

	t.Run("HTTP answers", func(t *testing.T) {
		scan.t = t
		public := []string{"/checkpoint", "/healthz", "/metrics", "/v1/proof/consistency?old=1",
			fmt.Sprintf("/v1/proof/inclusion?index=%d", size-1)}
		for n := uint64(0); n*256 < size; n++ {
			w := min(256, size-n*256)
			suffix := ""
			if w < 256 {
				suffix = fmt.Sprintf(".p/%d", w)
			}
			public = append(public, fmt.Sprintf("/tile/0/%03d%s", n, suffix), fmt.Sprintf("/tile/entries/%03d%s", n, suffix))
		}
		for _, p := range public {
			code, body := get(p, "")
			if code != http.StatusOK {
				t.Errorf("GET %s: %d", p, code)
			}
			scan.none("GET "+p, body, true)
		}
		for _, id := range append(badIDs, func() []string {
			var ids []string
			for _, l := range all {
				ids = append(ids, l.id)
			}
			return ids
		}()...) {
			_, body := get("/v1/events/"+id+"/status", "")
			scan.none("the status of "+id, body, true)
		}
		// Tokens of the wrong role, and a party asking for others' events.
		wrong := 0
		for _, l := range all {
			if l.discloser == party {
				continue
			}
			for _, tok := range []string{"", deskTok, partyTok} {
				code, body := get("/v1/events/"+l.id, tok)
				if code == http.StatusOK {
					t.Errorf("GET /v1/events/%s with a token of the wrong role: 200", l.id)
				}
				scan.none("GET /v1/events/"+l.id+" for the wrong role", body, true)
			}
			if wrong++; wrong == 20 {
				break
			}
		}
		for _, tok := range []string{"", deskTok, partyTok} {
			code, body := get("/v1/entries", tok)
			if code == http.StatusOK {
				t.Error("/v1/entries answered a token of the wrong role")
			}
			scan.none("GET /v1/entries for the wrong role", body, true)
		}
	})
	scan.t = t

	t.Run("NATS streams", func(t *testing.T) {
		scan.t = t
		for _, name := range []string{natsbus.Stream, natsbus.RejectedStream} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if name == natsbus.Stream && info.State.Msgs != 0 {
				t.Errorf("SPOOR still holds %d messages after ingest", info.State.Msgs)
			}
			if name == natsbus.RejectedStream && info.State.Msgs < uint64(len(badIDs)) {
				t.Errorf("SPOOR_REJECTED holds %d rejections, want at least %d", info.State.Msgs, len(badIDs))
			}
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
				msg, err := s.GetMsg(ctx, seq)
				if err != nil {
					continue // deleted
				}
				scan.none(fmt.Sprintf("%s message %d", name, seq), msg.Data, true)
			}
		}
	})
	scan.t = t

	if err := srv.interrupt(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopped = true

	t.Run("logs and command output", func(t *testing.T) {
		scan.t = t
		scan.none("the server's log (stderr)", []byte(readFile(t, srv.logPath)), true)
		for _, o := range outputs {
			name, _, _ := strings.Cut(o, ":")
			scan.none("the output of "+name, []byte(o), true)
		}
	})

	t.Run("files in the data folder", func(t *testing.T) {
		scan.t = t
		pebble := filepath.Join(data, "ledger") + string(filepath.Separator)
		files, natsFiles := 0, 0
		err := filepath.WalkDir(data, func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || strings.HasPrefix(path, pebble) {
				return err
			}
			if strings.HasPrefix(path, filepath.Join(data, "nats")+string(filepath.Separator)) {
				natsFiles++
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			rel, _ := filepath.Rel(data, path)
			scan.none("the file "+rel, b, true)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files < 5 || natsFiles == 0 {
			t.Fatalf("searched only %d files (%d of the JetStream store)", files, natsFiles)
		}
		t.Logf("searched %d files outside DATA/ledger, %d of them the JetStream store", files, natsFiles)
	})
	t.Logf("searched %d artefacts for %d BSNs and pseudonyms and %d envelopes", scan.checked, len(scan.subjects)/3, len(scan.payloads))
}
