package audit

// This file is the audit's account of the witnesses (issue 20, "verifiers
// use the policy"). It runs after the pass over the entries, because it
// needs what that pass established: the covenant versions in force by leaf
// index, every leaf's integrated_at, and the kept checkpoints by number.
//
// Data flow:
//
//	WitnessSource.WitnessedCheckpoints --OpenCheckpoint (pinned keys)-->
//	  same size and root as the kept checkpoint of that number
//	  --CheckWitnessPolicy (policy of the covenant version in force at its size)-->
//	  the checkpoints that met their policy, with the first and latest time
//	  their policy witnesses state
//	--> every leaf's integrated_at between the last such checkpoint without
//	    it and the first with it (within the skew)
//	--> the stretches of the log that no such checkpoint covered yet
//
// A log whose covenant never had a policy is not asked for witnessed
// checkpoints, and its report has no witnessing part: nothing changes
// for it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// WitnessSource is implemented by sources that can list the stored
// witnessed checkpoints: the store, the running ledger, and HTTPSource
// (GET /v1/witnessed-checkpoints with the FG's token).
type WitnessSource interface {
	// WitnessedCheckpoints returns every stored witnessed checkpoint in
	// ascending checkpoint number: Seq is the number of the checkpoint it
	// cosigns, Note that checkpoint's signed note with the witnesses'
	// cosignature lines appended.
	WitnessedCheckpoints(ctx context.Context) ([]StoredCheckpoint, error)
}

// DefaultWitnessSkew is the skew allowed between the ledger's integrated_at
// and the witnesses' times when Config.WitnessSkew is zero: clocks of
// different parties, and the time a round of cosigning takes (a timeout of
// a second or so per witness), stay well within it.
const DefaultWitnessSkew = 5 * time.Minute

// Witnessing is the report's part on the witnesses; it is present only when
// a covenant version in the log has a witness policy.
type Witnessing struct {
	// Available is false when the source cannot list the witnessed
	// checkpoints (a ledger's HTTP API from before witnesses); the rest is
	// then empty, and Reason says why.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// PolicyFromLeaf is the leaf of the first covenant version with a
	// witness policy: the entries from there on were logged under one.
	PolicyFromLeaf uint64 `json:"policy_from_leaf"`
	// SkewSeconds is the skew allowed around the witnessed times.
	SkewSeconds int64 `json:"skew_seconds"`
	// Checkpoints counts the stored witnessed checkpoints; MetPolicy those
	// that met the policy in force at their size.
	Checkpoints int `json:"checkpoints"`
	MetPolicy   int `json:"met_policy"`
	// Newest is the newest witnessed checkpoint that met its policy.
	Newest *WitnessedCheckpointInfo `json:"newest,omitempty"`
	// Uncovered counts the entries beyond Newest (logged under a policy,
	// witnessed by nobody yet).
	Uncovered uint64 `json:"uncovered"`
	// LongestByEntries and LongestByTime are the stretches of the log
	// (from PolicyFromLeaf on) that waited longest for a witnessed
	// checkpoint, in entries and in time (see Definition).
	LongestByEntries *UnwitnessedStretch `json:"longest_by_entries,omitempty"`
	LongestByTime    *UnwitnessedStretch `json:"longest_by_time,omitempty"`
	// Definition and DefinitionNL say how the checks and the stretches are
	// measured.
	Definition   string `json:"definition"`
	DefinitionNL string `json:"definition_nl"`
}

// WitnessedCheckpointInfo describes one witnessed checkpoint that met its
// policy.
type WitnessedCheckpointInfo struct {
	Seq  uint64 `json:"seq"`
	Size uint64 `json:"size"`
	// Witnesses are the policy's witnesses whose cosignature verifies.
	Witnesses []string `json:"witnesses"`
	// FirstAt and LatestAt are the earliest and the latest time among
	// their cosignatures. LatestAt is the checkpoint's witnessed time:
	// every entry in it existed by then, as long as one of them is honest.
	FirstAt  time.Time `json:"first_at"`
	LatestAt time.Time `json:"latest_at"`
}

// UnwitnessedStretch is a run of consecutive entries that became covered
// by a witnessed checkpoint together (or that none covers yet).
type UnwitnessedStretch struct {
	// FromLeaf and Entries: the leaves [FromLeaf, FromLeaf+Entries).
	FromLeaf uint64 `json:"from_leaf"`
	Entries  uint64 `json:"entries"`
	// Since is the integrated_at of its first entry; Until the witnessed
	// time of the checkpoint that first covered it (CoveredBy), or, when
	// Open, the log's own time on its newest checkpoint.
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Seconds   int64     `json:"seconds"`
	CoveredBy *uint64   `json:"covered_by,omitempty"`
	Open      bool      `json:"open,omitempty"`
}

// witnessDefinition states the witnessing checks, in English and Dutch.
func witnessDefinition(skew time.Duration) (string, string) {
	return fmt.Sprintf("Every stored witnessed checkpoint must verify with the pinned keys, be the kept checkpoint of its "+
			"number, and meet the witness policy of the covenant version in force at its size (the newest version among "+
			"its leaves). Of a checkpoint that met it, the witnessed time is the latest time its policy witnesses state "+
			"(the tree existed by then, if one of them is honest), and the earliest time is when the first of them saw it. "+
			"Each entry's integrated_at may not be after the witnessed time of the first witnessed checkpoint that "+
			"includes it plus %s, nor before the earliest time of the last witnessed checkpoint without it minus %s. "+
			"A stretch is a run of entries, from the first covenant version with a policy on, that became covered "+
			"together: its time runs from its first entry's integrated_at to the witnessed time of the checkpoint that "+
			"covered it (or, when none does yet, to the log's own time on its newest checkpoint).", skew, skew),
		fmt.Sprintf("Elk bewaard getuigd checkpoint moet kloppen met de vastgepinde sleutels, hetzelfde zijn als het "+
			"bewaarde checkpoint met dat nummer, en voldoen aan het getuigenbeleid van de convenantversie die gold bij "+
			"zijn grootte (de nieuwste versie onder zijn vermeldingen). Van een checkpoint dat voldoet is de getuigde "+
			"tijd de laatste tijd die zijn getuigen opgeven (de boom bestond toen, als één van hen eerlijk is), en de "+
			"vroegste tijd het moment waarop de eerste van hen hem zag. Het moment van vastleggen (integrated_at) van "+
			"elke vermelding mag niet later zijn dan de getuigde tijd van het eerste getuigde checkpoint dat haar bevat "+
			"plus %s, en niet vroeger dan de vroegste tijd van het laatste getuigde checkpoint zonder haar min %s. Een "+
			"periode zonder getuigen is een reeks vermeldingen, vanaf de eerste convenantversie met een beleid, die "+
			"samen getuigd werd: van het vastleggen van de eerste tot de getuigde tijd van het checkpoint dat haar "+
			"bevatte (of, zolang geen dat doet, tot de tijd van het logboek op zijn nieuwste checkpoint).", skew, skew)
}

// witnessTimeNote replaces timeNote when the log has a witness policy.
const witnessTimeNote = "integrated_at and the checkpoint times are the ledger's own signed statements; from the first " +
	"covenant version with a witness policy on, the times of the witnesses' cosignatures bound integrated_at within the " +
	"stated skew (see witnessing). occurred_at is the discloser's statement in its signed envelope."

// anchor is a witnessed checkpoint that met its policy.
type anchor struct {
	seq, size         uint64
	firstAt, latestAt time.Time
}

// witnessAudit checks the witnessed checkpoints and the entries' times
// against them, and fills the report's Witnessing part.
func (a *auditor) witnessAudit(ctx context.Context, src Source) error {
	policyFrom, ok := a.firstPolicyLeaf()
	if !ok {
		return nil
	}
	skew := a.cfg.WitnessSkew
	if skew <= 0 {
		skew = DefaultWitnessSkew
	}
	w := &Witnessing{PolicyFromLeaf: policyFrom, SkewSeconds: int64(skew / time.Second)}
	w.Definition, w.DefinitionNL = witnessDefinition(skew)
	a.rep.Witnessing = w
	a.rep.TimeNote = witnessTimeNote
	ws, ok := src.(WitnessSource)
	if !ok {
		w.Reason = "this source cannot list the witnessed checkpoints"
		return nil
	}
	stored, err := ws.WitnessedCheckpoints(ctx)
	switch {
	case errors.Is(err, tlogclient.ErrNotFound):
		w.Reason = "the ledger does not serve the witnessed checkpoints (GET /v1/witnessed-checkpoints: 404)"
		return nil
	case err != nil:
		return fmt.Errorf("couldn't read the witnessed checkpoints: %w", err)
	}
	w.Available = true
	w.Checkpoints = len(stored)
	anchors := a.witnessedCheckpoints(stored)
	w.MetPolicy = len(anchors)
	if n := len(anchors); n > 0 {
		last := anchors[n-1]
		info := &WitnessedCheckpointInfo{Seq: last.seq, Size: last.size, FirstAt: last.firstAt, LatestAt: last.latestAt}
		info.Witnesses = a.anchorWitnesses[last.seq]
		w.Newest = info
	}
	a.witnessedTimes(anchors, skew)
	a.stretches(w, anchors, policyFrom)
	return nil
}

// firstPolicyLeaf returns the leaf of the first covenant version with a
// witness policy.
func (a *auditor) firstPolicyLeaf() (uint64, bool) {
	for _, leaf := range a.covenantLeaves() {
		if a.covenants[leaf].Covenant.WitnessPolicy != "" {
			return leaf, true
		}
	}
	return 0, false
}

// covenantLeaves returns the leaves of the valid covenant versions, in order.
func (a *auditor) covenantLeaves() []uint64 {
	leaves := make([]uint64, 0, len(a.covenants))
	for leaf := range a.covenants {
		leaves = append(leaves, leaf)
	}
	slices.Sort(leaves)
	return leaves
}

// witnessedCheckpoints checks each stored witnessed checkpoint and returns
// those that met the policy in force at their size, by size and number.
func (a *auditor) witnessedCheckpoints(stored []StoredCheckpoint) []anchor {
	leaves := a.covenantLeaves()
	policies := map[uint64]*events.WitnessPolicy{} // by covenant leaf
	a.anchorWitnesses = map[uint64][]string{}
	var out []anchor
	for _, sc := range stored {
		cp, err := verifier.OpenCheckpoint(sc.Note, a.cfg.Keys)
		if err != nil {
			a.problem(CheckWitnessPolicy, nil, ptr(sc.Seq), "the witnessed checkpoint does not verify with the pinned keys: %v", err)
			continue
		}
		if kept, ok := a.bySeq[sc.Seq]; ok && (kept.Size != cp.Size || kept.Hash != cp.Hash) {
			a.problem(CheckWitnessPolicy, nil, ptr(sc.Seq), "the witnessed checkpoint names size %d and root %x, but the kept checkpoint %d names size %d and root %x",
				cp.Size, cp.Hash[:8], sc.Seq, kept.Size, kept.Hash[:8])
			continue
		}
		if cp.Size > a.size {
			a.problem(CheckWitnessPolicy, nil, ptr(sc.Seq), "the witnessed checkpoint has size %d, beyond the newest kept checkpoint's %d", cp.Size, a.size)
			continue
		}
		// The version in force at size n is the newest among leaves [0, n).
		i, _ := slices.BinarySearch(leaves, cp.Size)
		if i == 0 {
			continue // no covenant in the tree, hence no policy: nothing to check
		}
		leaf := leaves[i-1]
		sc2 := a.covenants[leaf]
		if sc2.Covenant.WitnessPolicy == "" {
			continue // witnessed though no policy was in force: nothing to hold it to
		}
		p, ok := policies[leaf]
		if !ok {
			p, err = events.ParseWitnessPolicy(sc2.Covenant.WitnessPolicy)
			if err != nil {
				// The chain accepted the version, so only a bug gets here.
				a.problem(CheckWitnessPolicy, nil, ptr(sc.Seq), "the witness policy of covenant version %d does not parse: %v", sc2.Covenant.Version, err)
				continue
			}
			policies[leaf] = p
		}
		res, err := verifier.CheckWitnessPolicy(cp, p)
		if err != nil {
			var names []string
			if res != nil {
				for _, c := range res.Cosigned {
					names = append(names, c.Witness)
				}
			}
			a.problem(CheckWitnessPolicy, nil, ptr(sc.Seq), "the witnessed checkpoint of size %d does not meet the witness policy of covenant version %d (cosigned by %q): %v",
				cp.Size, sc2.Covenant.Version, names, err)
			continue
		}
		an := anchor{seq: sc.Seq, size: cp.Size}
		var names []string
		for _, c := range res.Cosigned {
			names = append(names, c.Witness)
			if an.firstAt.IsZero() || c.Time.Before(an.firstAt) {
				an.firstAt = c.Time
			}
			if c.Time.After(an.latestAt) {
				an.latestAt = c.Time
			}
		}
		a.anchorWitnesses[sc.Seq] = names
		out = append(out, an)
	}
	slices.SortStableFunc(out, func(x, y anchor) int { return cmpJoin(cmpU64(x.size, y.size), cmpU64(x.seq, y.seq)) })
	return out
}

func cmpU64(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// witnessedTimes checks every leaf's integrated_at against the anchors
// (sorted by size): not after the witnessed time of the first anchor that
// includes it (+skew), not before the earliest time of the last anchor
// without it (-skew).
func (a *auditor) witnessedTimes(anchors []anchor, skew time.Duration) {
	var lower *anchor // the last anchor without the leaf: size <= idx
	j := 0            // anchors[j] is the first with size > idx, if any
	for idx := uint64(0); idx < uint64(len(a.integrated)) && idx < a.size; idx++ {
		for j < len(anchors) && anchors[j].size <= idx {
			lower = &anchors[j]
			j++
		}
		ms := a.integrated[idx]
		if ms == 0 {
			continue // an unreadable leaf record, reported already
		}
		at := time.UnixMilli(ms).UTC()
		if j < len(anchors) {
			first := anchors[j]
			if at.After(first.latestAt.Add(skew)) {
				a.problem(CheckWitnessedTime, ptr(idx), nil, "integrated_at %s is after %s, the witnessed time of checkpoint %d (size %d), the first witnessed one that includes leaf %d, by more than %s",
					at.Format(time.RFC3339), first.latestAt.Format(time.RFC3339), first.seq, first.size, idx, skew)
			}
		}
		if lower != nil && at.Before(lower.firstAt.Add(-skew)) {
			a.problem(CheckWitnessedTime, ptr(idx), nil, "integrated_at %s is before %s, when a witness cosigned checkpoint %d (size %d) without leaf %d, by more than %s",
				at.Format(time.RFC3339), lower.firstAt.Format(time.RFC3339), lower.seq, lower.size, idx, skew)
		}
	}
}

// stretches finds the runs of entries from policyFrom on that became
// covered together, and keeps the longest in entries and in time.
func (a *auditor) stretches(w *Witnessing, anchors []anchor, policyFrom uint64) {
	integrated := func(idx uint64) time.Time {
		if idx < uint64(len(a.integrated)) && a.integrated[idx] != 0 {
			return time.UnixMilli(a.integrated[idx]).UTC()
		}
		return time.Time{}
	}
	consider := func(s UnwitnessedStretch) {
		if !s.Since.IsZero() && s.Until.After(s.Since) {
			s.Seconds = int64(s.Until.Sub(s.Since) / time.Second)
		} else {
			s.Until = s.Since
		}
		if w.LongestByEntries == nil || s.Entries > w.LongestByEntries.Entries {
			c := s
			w.LongestByEntries = &c
		}
		if w.LongestByTime == nil || s.Seconds > w.LongestByTime.Seconds {
			c := s
			w.LongestByTime = &c
		}
	}
	from := policyFrom
	for _, an := range anchors {
		if an.size <= from {
			continue
		}
		consider(UnwitnessedStretch{FromLeaf: from, Entries: an.size - from, Since: integrated(from), Until: an.latestAt, CoveredBy: ptr(an.seq)})
		from = an.size
	}
	if from < a.size {
		w.Uncovered = a.size - from
		var until time.Time
		if n := a.rep.Checkpoints.Newest; n != nil {
			until = n.CosignedAt
		}
		consider(UnwitnessedStretch{FromLeaf: from, Entries: a.size - from, Since: integrated(from), Until: until, Open: true})
	}
}
