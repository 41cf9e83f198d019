package dashboard

// This file is the page of one entry, the one page that shows a
// pseudonym: the disclosure's fields with Dutch labels, its signature
// checked again here with the key in force in the covenant version it was
// logged under, and an inclusion proof read from the ledger's tiles and
// verified against the console's own newest verified checkpoint and the
// copy's own leaf hash. Also the anomalies page and the printable report.

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/audit"
	"github.com/spoor-ledger/spoor/verifier/report"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// entryView is what the entry page shows.
type entryView struct {
	Leaf         uint64
	Type         string
	IntegratedAt time.Time
	Erased       bool
	D            *events.Disclosure
	Labels       map[string]string
	Categories   []string
	CovVersion   int
	CovLeaf      uint64
	SignatureOK  bool
	SignatureErr string
	Findings     []string
	// The proof: checked against Checkpoint (size, root), of LeafHash.
	LeafHash   string
	Checkpoint *verifier.Checkpoint
	Root       string
	Proof      []string
	ProofOK    bool
	ProofErr   string
}

func (s *Server) entryPage(w http.ResponseWriter, r *http.Request, ss *session) {
	leaf, err := strconv.ParseUint(r.PathValue("leaf"), 10, 64)
	if err != nil || leaf >= s.idx.Size() {
		http.Error(w, "Deze vermelding staat niet in de geverifieerde kopie.", http.StatusNotFound)
		return
	}
	v, err := s.entryView(r.Context(), leaf)
	if err != nil {
		s.log.Warn("dashboard: an entry page", "leaf", leaf, "err", err)
		http.Error(w, "De vermelding kon niet worden gelezen.", http.StatusInternalServerError)
		return
	}
	// The pseudonym is on this page: not to be kept by the browser.
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, "vermelding.html", ss, s.snapshot(), map[string]any{"E": v})
}

func (s *Server) entryView(ctx context.Context, leaf uint64) (*entryView, error) {
	e, err := s.idx.Entry(leaf)
	if err != nil {
		return nil, err
	}
	v := &entryView{Leaf: leaf, Erased: e.Body == nil}
	rec, err := verifier.ParseLeafRecord(e.LeafRecord)
	if err == nil {
		v.Type, v.IntegratedAt, v.CovLeaf = report.EntryTypeLabel(rec.Type), rec.IntegratedAt, rec.CovenantIndex
	} else {
		v.Type = "onbekend soort vermelding"
	}
	for _, f := range e.Findings {
		v.Findings = append(v.Findings, events.FindingLabelNL(f.Rule))
	}
	if rec != nil && rec.Type == verifier.EntryDisclosure && e.Body != nil {
		var cov *events.Covenant
		if ce, err := s.idx.Entry(rec.CovenantIndex); err == nil && ce.Body != nil {
			if sc, err := events.ParseSignedCovenant(ce.Body); err == nil {
				cov = sc.Covenant
				v.CovVersion = cov.Version
			}
		}
		if d := disclosureOf(e.Body); d != nil {
			v.D = d
			v.Labels = map[string]string{"discloser": label(cov, "organisatie", d.Discloser), "purpose": label(cov, "doel", d.Purpose),
				"ground": label(cov, "grondslag", d.LegalBasis.Ground)}
			for _, r := range d.Recipients {
				v.Labels["r:"+r] = label(cov, "organisatie", r)
			}
			for _, c := range d.Categories {
				v.Categories = append(v.Categories, label(cov, "categorie", c))
			}
		}
		if cov == nil {
			v.SignatureErr = "de convenantversie waartegen de verstrekking is gecontroleerd staat niet in de kopie"
		} else if _, _, err := events.Open(e.Body, s.idx.Newest().Origin, cov); err != nil {
			v.SignatureErr = err.Error()
		} else {
			v.SignatureOK = true
		}
	}
	// The inclusion proof against the console's own checkpoint.
	cp := s.idx.Newest()
	lh, err := s.idx.LeafHash(leaf)
	if err != nil {
		return nil, err
	}
	v.Checkpoint, v.LeafHash, v.Root = cp, hex.EncodeToString(lh[:]), hex.EncodeToString(cp.Hash[:])
	c := &tlogclient.Client{URL: s.cfg.LedgerURL, HTTP: s.src.HTTP}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	proof, err := c.ProveInclusion(pctx, leaf, cp.Tree())
	if err == nil {
		err = verifier.VerifyInclusion(leaf, cp.Size, lh, proof, cp.Hash)
	}
	if err != nil {
		v.ProofErr = err.Error()
	} else {
		v.ProofOK = true
	}
	for _, h := range proof {
		v.Proof = append(v.Proof, hex.EncodeToString(h))
	}
	return v, nil
}

// ageBands reads the findings' age bands from the copy.
func (s *Server) ageBands(fs []audit.FindingDisclosure) map[uint64]events.AgeBand {
	out := make(map[uint64]events.AgeBand, len(fs))
	for _, f := range fs {
		if e, err := s.idx.Entry(f.Leaf); err == nil && e.Body != nil {
			if d := disclosureOf(e.Body); d != nil {
				out[f.Leaf] = d.SubjectAgeBand
			}
		}
	}
	return out
}

func (s *Server) anomaliesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	st := s.snapshot()
	anomalous := map[string]int{}
	if st.Report != nil {
		for _, v := range st.Report.Anomalies.Volume {
			if v.Kind == audit.AnomalyVolumeParty {
				anomalous[v.Party]++
			}
		}
	}
	s.render(w, "afwijkingen.html", ss, st, map[string]any{"Verdicts": s.tables.verdicts(anomalous), "MinDays": audit.VolumeMinHistoryDays,
		"Window": audit.VolumeWindowDays, "Factor": audit.VolumeMADFactor})
}

// reportPage serves the printable Dutch audit report of the last audit.
func (s *Server) reportPage(w http.ResponseWriter, r *http.Request, _ *session) {
	st := s.snapshot()
	if st.Report == nil {
		http.Error(w, "Nog geen verificatie voltooid.", http.StatusServiceUnavailable)
		return
	}
	var buf bytes.Buffer
	if err := report.WriteAudit(&buf, st.Report); err != nil {
		s.log.Warn("dashboard: the report", "err", err)
		http.Error(w, "Het rapport kon niet worden gemaakt.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}
