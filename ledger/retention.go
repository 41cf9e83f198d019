package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// TombstoneRequest asks the sequencer to erase one disclosure.
type TombstoneRequest struct {
	// ErasedIndex is the leaf of the disclosure to erase.
	ErasedIndex uint64
	// RuleID says why, e.g. "retention:gezondheid" or "erasure:avg-17".
	RuleID string

	// Beside, when set, makes the records to commit in the tombstone's own
	// batch once its leaf index is known: for an erasure on request, the
	// confirmed decision with the tombstone's index (ledger/answer), so
	// that neither is committed without the other. It runs on the
	// sequencer; an error fails this tombstone alone.
	Beside func(tombstone uint64) ([]Record, error)
}

// ErasureNotice is what a parent is still told after an erasure, kept under
// the pseudonym for the covenant's erasure_notice_days.
type ErasureNotice struct {
	// Discloser is the party whose disclosure was erased, so that a desk
	// tells only about its own parties' erasures.
	Discloser      string    `json:"discloser"`
	ErasedIndex    uint64    `json:"erased_index"`
	TombstoneIndex uint64    `json:"tombstone_index"`
	RuleID         string    `json:"rule_id"`
	ErasedAt       time.Time `json:"erased_at"`
	KeepUntil      time.Time `json:"keep_until"`
}

// ErrAlreadyErased is the outcome of a tombstone for a leaf already erased.
var ErrAlreadyErased = errors.New("ledger: already erased")

var ruleIDRE = regexp.MustCompile(`^[a-z0-9._:-]{1,64}$`)

// tombstone adds the erasure of one disclosure to the batch b (sequencer
// only): the tombstone leaf, and the deletion of the envelope, its indices
// and findings. The event id index stays (ids are random, not personal),
// so that a re-published erased event is still recognised as logged.
func (l *Ledger) tombstone(ctx context.Context, w *batchWork, t *TombstoneRequest, changedKeys map[string]bool) Outcome {
	b, now, covIdx, erased := &w.b, w.now, w.covIdx, w.erased
	fail := func(err error) Outcome { return Outcome{Index: t.ErasedIndex, Err: err} }
	if !ruleIDRE.MatchString(t.RuleID) {
		return fail(fmt.Errorf("rule id %q: want 1-64 of [a-z0-9._:-]", t.RuleID))
	}
	if erased[t.ErasedIndex] {
		return fail(ErrAlreadyErased)
	}
	if t.ErasedIndex >= l.tree.size() {
		return fail(fmt.Errorf("leaf %d is beyond the log: %w", t.ErasedIndex, ErrNotFound))
	}
	raw, err := l.store.Get(ctx, u64Key(tagEntry, t.ErasedIndex))
	if errors.Is(err, ErrNotFound) {
		return fail(ErrAlreadyErased)
	}
	if err != nil {
		return fail(err)
	}
	recBytes, err := l.store.Get(ctx, u64Key(tagLeaf, t.ErasedIndex))
	if err != nil {
		return fail(err)
	}
	rec, err := verifier.ParseLeafRecord(recBytes)
	switch {
	case err == nil && rec.Type == verifier.EntryAnswer && t.RuleID == verifier.AnswerRetentionRule:
		return l.tombstoneAnswer(b, t, raw, recBytes, now, covIdx, erased)
	case err != nil || rec.Type != verifier.EntryDisclosure || t.RuleID == verifier.AnswerRetentionRule:
		return fail(fmt.Errorf("leaf %d under rule %s: only disclosures are erased, and answer entries under %s alone",
			t.ErasedIndex, t.RuleID, verifier.AnswerRetentionRule))
	}
	plain, err := l.cfg.DataKeys.open(t.ErasedIndex, raw)
	if err != nil {
		return fail(err)
	}
	env, err := events.ParseEnvelope(plain)
	if err != nil {
		return fail(fmt.Errorf("stored envelope %d: %w", t.ErasedIndex, err))
	}
	d, err := events.DecodeDisclosure(env.Payload)
	if err != nil {
		return fail(fmt.Errorf("stored envelope %d: %w", t.ErasedIndex, err))
	}
	cov := l.covenant.Load()
	var mk vsi.MapKey
	if l.sidx != nil {
		// Before the tombstone leaf: a refusal must leave the tree as
		// it was.
		if mk, err = l.sidx.mapKeyOf(d); err != nil {
			return fail(err)
		}
	}
	idx, err := l.addTombstone(b, t, recBytes, now, covIdx)
	if err != nil {
		return fail(err)
	}
	b.Delete(u64Key(tagEntry, t.ErasedIndex))
	b.Delete(u64Key(tagFindings, t.ErasedIndex))
	deleteLDVIndex(b, d, t.ErasedIndex)
	b.Delete(partyKey(d.Discloser, t.ErasedIndex))
	b.Delete(occurredKey(uint64(d.OccurredAt.UnixMilli()), t.ErasedIndex))
	b.Set(u64Key(tagErased, t.ErasedIndex), binary.BigEndian.AppendUint64(nil, idx))
	keep := now.Add(time.Duration(cov.Covenant.Retention.ErasureNoticeDays) * 24 * time.Hour)
	// The entry stays in its child's list, marked erased, until the
	// notice period is over (index.go).
	if l.sidx != nil {
		l.indexErase(w, mk, t.ErasedIndex, idx, keep)
	}
	if p, err := decodeHex32(d.Subject.Pseudonym); err == nil {
		b.Delete(subjectKey(p, t.ErasedIndex))
		n, _ := json.Marshal(ErasureNotice{Discloser: d.Discloser, ErasedIndex: t.ErasedIndex, TombstoneIndex: idx, RuleID: t.RuleID,
			ErasedAt: now, KeepUntil: keep})
		b.Set(noticeKey(p, idx), n)
	}
	if id := sealedKeyID(raw); id != "" && l.keyCounts[id] > 0 {
		l.keyCounts[id]--
		changedKeys[id] = true
	}
	if t.Beside != nil {
		recs, err := t.Beside(idx)
		if err != nil {
			return fail(fmt.Errorf("records beside tombstone %d: %w", idx, err))
		}
		for _, r := range recs {
			r.set(b)
		}
	}
	erased[t.ErasedIndex] = true
	return Outcome{Index: idx}
}

// addTombstone adds the tombstone leaf of t, erasing the leaf whose record
// is recBytes, to the batch b and returns its index (sequencer only).
func (l *Ledger) addTombstone(b *Batch, t *TombstoneRequest, recBytes []byte, now time.Time, covIdx uint64) (uint64, error) {
	lh := verifier.LeafHash(recBytes)
	body, err := json.Marshal(verifier.TombstoneBody{Schema: verifier.TombstoneSchema, Origin: l.origin, ErasedIndex: t.ErasedIndex,
		ErasedLeafHash: hex.EncodeToString(lh[:]), RuleID: t.RuleID, CovenantVersion: l.covenant.Load().Covenant.Version})
	if err != nil {
		return 0, err
	}
	idx := l.tree.size()
	trec := verifier.LeafRecord{Type: verifier.EntryTombstone, BodyHash: sha256.Sum256(body), IntegratedAt: now,
		CovenantIndex: covIdx, ErasedIndex: t.ErasedIndex, RuleID: t.RuleID}
	if err := l.addLeaf(b, idx, &trec, body); err != nil {
		return 0, err
	}
	return idx, nil
}

// tombstoneAnswer erases an inzage answer's body past the covenant's
// answer retention (sequencer only): the tombstone leaf, the deletion of
// the body and of the bundle kept beside it for downloads (it holds the
// disclosures it showed). The request's answer index (tagAnswerID) stays,
// as an erased event's id does, so that the request is never answered a
// second time; so does the access request record, the desk's log of who
// asked and when. No erasure notice: a parent is told of erased
// disclosures, and an answer is not one.
func (l *Ledger) tombstoneAnswer(b *Batch, t *TombstoneRequest, raw, recBytes []byte, now time.Time, covIdx uint64, erased map[uint64]bool) Outcome {
	fail := func(err error) Outcome { return Outcome{Index: t.ErasedIndex, Err: err} }
	body, err := verifier.ParseAnswerBody(raw)
	if err != nil {
		return fail(fmt.Errorf("stored answer %d: %w", t.ErasedIndex, errors.Join(err, ErrCorrupt)))
	}
	idx, err := l.addTombstone(b, t, recBytes, now, covIdx)
	if err != nil {
		return fail(err)
	}
	b.Delete(u64Key(tagEntry, t.ErasedIndex))
	b.Delete(eventIDKey(byte(RecordAnswerBundle), body.Request.ID))
	// The index proofs hold the child's lists: gone with the answer.
	b.Delete(answerIndexKey(body.Request.ID))
	b.Set(u64Key(tagErased, t.ErasedIndex), binary.BigEndian.AppendUint64(nil, idx))
	erased[t.ErasedIndex] = true
	return Outcome{Index: idx}
}

func (l *Ledger) loadKeyCounts(ctx context.Context) error {
	l.keyCounts = map[string]uint64{}
	return l.store.Scan(ctx, []byte{tagKeyCount}, []byte{tagKeyCount + 1}, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("data key count: %w", ErrCorrupt)
		}
		l.keyCounts[string(k[1:])] = binary.BigEndian.Uint64(v)
		return nil
	})
}

// ErasedBy returns the tombstone index of an erased leaf.
func (l *Ledger) ErasedBy(ctx context.Context, index uint64) (uint64, error) {
	v, err := l.store.Get(ctx, u64Key(tagErased, index))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("erased index entry: %w", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// ErasureNotices returns the erasure notices kept for a pseudonym.
func (l *Ledger) ErasureNotices(ctx context.Context, pseudonym string) ([]ErasureNotice, error) {
	p, err := decodeHex32(pseudonym)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: %w", err)
	}
	prefix := append([]byte{tagNotice}, p...)
	var out []ErasureNotice
	err = l.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, v []byte) error {
		var n ErasureNotice
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("erasure notice: %w", errors.Join(err, ErrCorrupt))
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

// Erase erases one disclosure now, on a legal ground (an erasure request
// where the law allows it, AVG art. 17): a tombstone with rule
// "erasure:<ground>".
func (l *Ledger) Erase(ctx context.Context, index uint64, ground string) (uint64, error) {
	out, err := l.submitWait(ctx, []Submission{{Tombstone: &TombstoneRequest{ErasedIndex: index, RuleID: "erasure:" + ground}}})
	if err != nil {
		return 0, err
	}
	if out[0].Err != nil {
		return 0, out[0].Err
	}
	return out[0].Index, nil
}

func (l *Ledger) submitWait(ctx context.Context, subs []Submission) ([]Outcome, error) {
	p, err := l.Submit(ctx, subs)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// RetentionReport says what a retention run did (or, dry, would do).
type RetentionReport struct {
	DryRun        bool      `json:"dry_run"`
	At            time.Time `json:"at"`
	Checked       int       `json:"checked"`
	Expired       int       `json:"expired"`
	Tombstoned    int       `json:"tombstoned"`
	NoticesPurged int       `json:"notices_purged"`
	KeysDestroyed []string  `json:"keys_destroyed"`
	// ByRule counts expired disclosures per rule id.
	ByRule map[string]int `json:"by_rule"`
}

// RetentionProgress is called as a run proceeds.
type RetentionProgress func(phase string, done, total int)

// RunRetention finds every stored disclosure past its retention period
// (counted from integrated_at, by the categories' periods in the covenant
// version in force), and every inzage answer past the covenant's answer
// retention (AnswerRetentionDays, rule verifier.AnswerRetentionRule), and
// tombstones it, then purges erasure notices past
// their term, compacts the store so erased keys leave its files, and
// destroys data keys whose envelopes are all gone and whose term is over.
// It is safe to run again after a crash: erased leaves have no envelope
// left to find, and a tombstone and its deletions commit together.
func (l *Ledger) RunRetention(ctx context.Context, dryRun bool, progress RetentionProgress) (*RetentionReport, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	now := l.cfg.Now().UTC()
	rep := &RetentionReport{DryRun: dryRun, At: now, ByRule: map[string]int{}, KeysDestroyed: []string{}}
	cov := l.covenant.Load().Covenant
	var todo []TombstoneRequest
	// Only logged entries: the envelopes of a batch being committed may be
	// in the store a moment before their leaves (Batch.SetAhead).
	var size uint64
	if h := l.head.Load(); h != nil {
		size = h.Size
	}
	err := l.store.Scan(ctx, []byte{tagEntry}, u64Key(tagEntry, size), func(k, raw []byte) error {
		idx := binary.BigEndian.Uint64(k[1:])
		rec, err := l.LeafRecord(ctx, idx)
		if err != nil {
			return err
		}
		if rec.Type == verifier.EntryAnswer {
			rep.Checked++
			if now.Before(rec.IntegratedAt.Add(time.Duration(cov.AnswerRetentionDays()) * 24 * time.Hour)) {
				return nil
			}
			todo = append(todo, TombstoneRequest{ErasedIndex: idx, RuleID: verifier.AnswerRetentionRule})
			rep.ByRule[verifier.AnswerRetentionRule]++
			return nil
		}
		if rec.Type != verifier.EntryDisclosure {
			return nil
		}
		rep.Checked++
		plain, err := l.cfg.DataKeys.open(idx, bytes.Clone(raw))
		if err != nil {
			return fmt.Errorf("envelope %d: %w", idx, err)
		}
		env, err := events.ParseEnvelope(plain)
		if err != nil {
			return fmt.Errorf("envelope %d: %w", idx, err)
		}
		d, err := events.DecodeDisclosure(env.Payload)
		if err != nil {
			return fmt.Errorf("envelope %d: %w", idx, err)
		}
		days := cov.RetentionDaysFor(d.Categories)
		if now.Before(rec.IntegratedAt.Add(time.Duration(days) * 24 * time.Hour)) {
			return nil
		}
		rule := "retention:" + retentionRuleCategory(cov, d.Categories, days)
		todo = append(todo, TombstoneRequest{ErasedIndex: idx, RuleID: rule})
		rep.ByRule[rule]++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention scan: %w", err)
	}
	rep.Expired = len(todo)
	if dryRun {
		return rep, nil
	}
	chunk := l.cfg.RetentionBatch
	if chunk <= 0 {
		chunk = 1000
	}
	for start := 0; start < len(todo); start += chunk {
		part := todo[start:min(start+chunk, len(todo))]
		subs := make([]Submission, len(part))
		for i := range part {
			subs[i] = Submission{Tombstone: &part[i]}
		}
		out, err := l.submitWait(ctx, subs)
		if err != nil {
			return rep, fmt.Errorf("retention: %w", err)
		}
		for _, o := range out {
			switch {
			case o.Err == nil:
				rep.Tombstoned++
			case errors.Is(o.Err, ErrAlreadyErased):
			default:
				return rep, fmt.Errorf("retention: tombstone of leaf %d: %w", o.Index, o.Err)
			}
		}
		progress("tombstones", start+len(part), len(todo))
		l.log.Info("retention progress", "tombstoned", rep.Tombstoned, "expired", rep.Expired)
	}
	if err := l.purgeNotices(ctx, now, rep); err != nil {
		return rep, err
	}
	if c, ok := l.store.(Compacter); ok {
		progress("compaction", 0, 1)
		if err := c.Compact(ctx, []byte{0}, []byte{0xff}); err != nil {
			return rep, fmt.Errorf("retention: %w", err)
		}
		progress("compaction", 1, 1)
	}
	if err := l.destroyExpiredKeys(ctx, now, rep); err != nil {
		return rep, err
	}
	l.metrics.retentionTombstones.Add(float64(rep.Tombstoned))
	l.metrics.retentionKeysDestroyed.Add(float64(len(rep.KeysDestroyed)))
	l.log.Info("retention run done", "checked", rep.Checked, "tombstoned", rep.Tombstoned,
		"notices_purged", rep.NoticesPurged, "keys_destroyed", len(rep.KeysDestroyed))
	return rep, nil
}

// retentionRuleCategory names the category whose period applied (the
// shortest), or "default".
func retentionRuleCategory(c *events.Covenant, cats []string, days int) string {
	sorted := slices.Clone(cats)
	slices.Sort(sorted)
	for _, cat := range sorted {
		if _, ok := c.Retention.Categories[cat]; ok && c.RetentionDays(cat) == days {
			return cat
		}
	}
	return "default"
}

// purgeNotices deletes erasure notices past their keep-until time.
func (l *Ledger) purgeNotices(ctx context.Context, now time.Time, rep *RetentionReport) error {
	var b Batch
	err := l.store.Scan(ctx, []byte{tagNotice}, []byte{tagNotice + 1}, func(k, v []byte) error {
		var n ErasureNotice
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("erasure notice: %w", errors.Join(err, ErrCorrupt))
		}
		if !now.Before(n.KeepUntil) {
			b.Delete(bytes.Clone(k))
		}
		return nil
	})
	if err != nil || b.Len() == 0 {
		return err
	}
	// Through the sequencer, so that standbys purge them too.
	if err := l.commitRecords(ctx, b.Ops); err != nil {
		return fmt.Errorf("couldn't purge erasure notices: %w", err)
	}
	rep.NoticesPurged = b.Len()
	return nil
}

// destroyExpiredKeys removes data keys that no stored envelope uses and
// that no new envelope will use (their month is over).
func (l *Ledger) destroyExpiredKeys(ctx context.Context, now time.Time, rep *RetentionReport) error {
	k := l.cfg.DataKeys
	if k == nil {
		return nil
	}
	ids, err := k.ids()
	if err != nil {
		return err
	}
	for _, id := range ids {
		days, monthEnd, ok := parseDataKeyID(id)
		if !ok || now.Before(monthEnd.Add(time.Duration(days)*24*time.Hour)) {
			continue
		}
		v, err := l.store.Get(ctx, keyCountKey(id))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if len(v) == 8 && binary.BigEndian.Uint64(v) > 0 {
			l.log.Warn("data key past its term still has envelopes; keeping it", "key", id, "envelopes", binary.BigEndian.Uint64(v))
			continue
		}
		if err := k.destroy(id); err != nil {
			return err
		}
		rep.KeysDestroyed = append(rep.KeysDestroyed, id)
		l.log.Info("data key destroyed", "key", id)
	}
	return nil
}
