package verifier

// Follow-ups (issue 22, docs/subject-index.md): a follow-up is itself a
// registered request, released by a second desk user and logged as an
// answer entry, so its bundle is a v3 bundle that proves itself complete.
// CompareFollowUp adds what a parent asks of it next to an earlier answer:
// that the log of the later one extends the log of the earlier one (the
// consistency proof between their checkpoints), and exactly what changed
// in the child's lists in between: nothing (every list the same, nonce
// and all), or the leaves added, the leaves erased since, and the erased
// leaves removed (each only with a tombstone older than the covenant's
// notice period at the later head).

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// ErrFollowUp is wrapped by every reason a later bundle is not a follow-up
// of an earlier one, or hides a change.
var ErrFollowUp = errors.New("verifier: not a follow-up of the earlier answer")

// FollowUp is what changed between an earlier answer and a follow-up.
type FollowUp struct {
	// Unchanged says every list of the child in scope is the same.
	Unchanged bool
	// Added are the leaves the later lists hold and the earlier did not,
	// by party; Erased the leaves erased since (still listed, marked);
	// Removed the erased leaves dropped since.
	Added   map[string][]uint64
	Erased  []uint64
	Removed []uint64
}

// CompareFollowUp compares two verified v3 bundles about one child with
// one scope: the earlier answer and its follow-up. consistency is the
// consistency proof from the earlier checkpoint's tree to the later's
// (GET /v1/proof/consistency of the log, or tlogclient).
func CompareFollowUp(earlier, later *VerifiedBundle, consistency [][]byte) (*FollowUp, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrFollowUp, fmt.Sprintf(format, args...))
	}
	switch {
	case earlier == nil || later == nil || earlier.Completeness == nil || later.Completeness == nil:
		return nil, bad("both bundles must prove their completeness (format %s)", BundleFormatV3)
	case earlier.Bundle.Origin != later.Bundle.Origin:
		return nil, bad("the bundles come from two logs")
	case earlier.Bundle.Subject.IDType != later.Bundle.Subject.IDType || !slices.Equal(earlier.Bundle.Subject.Pseudonyms, later.Bundle.Subject.Pseudonyms):
		return nil, bad("the bundles are about two children (or two sets of pseudonyms)")
	case !slices.Equal(earlier.Completeness.Parties, later.Completeness.Parties):
		return nil, bad("the bundles prove completeness for other organisations")
	case later.Answer.Index <= earlier.Answer.Index || later.Checkpoint.Size < earlier.Checkpoint.Size:
		return nil, bad("the later answer (leaf %d) does not follow the earlier (leaf %d)", later.Answer.Index, earlier.Answer.Index)
	}
	if err := VerifyConsistency(earlier.Checkpoint.Size, later.Checkpoint.Size, earlier.Checkpoint.Hash, later.Checkpoint.Hash, consistency); err != nil {
		return nil, bad("the later checkpoint does not extend the earlier one: %v", err)
	}
	oldLists, err := bundleLists(earlier)
	if err != nil {
		return nil, err
	}
	newLists, err := bundleLists(later)
	if err != nil {
		return nil, err
	}
	// A tombstone's age: from either bundle (the later may no longer
	// show it once the notice has been purged).
	tombs := map[uint64]*VerifiedErasure{}
	for _, vb := range []*VerifiedBundle{earlier, later} {
		for _, e := range vb.Erased {
			tombs[e.ErasedIndex] = e
		}
	}
	notice := func(e *VerifiedErasure) (time.Duration, bool) {
		for _, vb := range []*VerifiedBundle{later, earlier} {
			for _, vc := range vb.Covenants {
				if vc.Index == e.CovenantIndex {
					return time.Duration(vc.Signed.Covenant.Retention.ErasureNoticeDays) * 24 * time.Hour, true
				}
			}
		}
		return 0, false
	}
	out := &FollowUp{Unchanged: true, Added: map[string][]uint64{}}
	earlierHead := earlier.Completeness.HeadIndex
	for k, nl := range newLists {
		ol := oldLists[k]
		if ol != nil && nl != nil && ol.Nonce != nl.Nonce {
			return nil, bad("the list of party %s under key %s has another nonce: the ledger made it anew", k.party, k.key)
		}
		oldItems := map[uint64]subjectindex.Item{}
		if ol != nil {
			for _, it := range ol.Items {
				oldItems[it.Leaf] = it
			}
		}
		newItems := map[uint64]subjectindex.Item{}
		if nl != nil {
			for _, it := range nl.Items {
				newItems[it.Leaf] = it
				old, was := oldItems[it.Leaf]
				switch {
				case !was && it.Leaf < earlierHead:
					return nil, bad("leaf %d of party %s was logged before the earlier answer's index head but is not in its list: the earlier list hid it", it.Leaf, k.party)
				case !was:
					out.Added[k.party] = append(out.Added[k.party], it.Leaf)
					out.Unchanged = false
				case old.Erased && !it.Erased:
					return nil, bad("leaf %d of party %s was erased and is live again", it.Leaf, k.party)
				case !old.Erased && it.Erased:
					out.Erased = append(out.Erased, it.Leaf)
					out.Unchanged = false
				case old != it:
					return nil, bad("leaf %d of party %s changed its tombstone", it.Leaf, k.party)
				}
			}
		}
		for leaf, it := range oldItems {
			if _, still := newItems[leaf]; still {
				continue
			}
			e := tombs[leaf]
			if !it.Erased || e == nil || e.Index != it.Tombstone {
				return nil, bad("leaf %d of party %s is gone from its list without a tombstone", leaf, k.party)
			}
			d, ok := notice(e)
			if !ok || e.ErasedAt.Add(d).After(later.Completeness.HeadAt) {
				return nil, bad("leaf %d of party %s was removed before its tombstone (%s) was older than the notice period", leaf, k.party, e.ErasedAt.Format(time.RFC3339))
			}
			out.Removed = append(out.Removed, leaf)
			out.Unchanged = false
		}
	}
	for k := range oldLists {
		if _, ok := newLists[k]; !ok {
			return nil, bad("the later bundle carries no proof for party %s under key %s", k.party, k.key)
		}
	}
	slices.Sort(out.Erased)
	slices.Sort(out.Removed)
	return out, nil
}

type partyKey struct{ party, key string }

// bundleLists decodes a verified v3 bundle's lists (nil for an absence
// proof); VerifyBundle checked them against its head.
func bundleLists(vb *VerifiedBundle) (map[partyKey]*subjectindex.List, error) {
	out := map[partyKey]*subjectindex.List{}
	for _, p := range vb.Bundle.Index.Proofs {
		var l *subjectindex.List
		if p.List != nil {
			var err error
			if l, err = subjectindex.ParseList(p.List); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrFollowUp, err)
			}
		}
		out[partyKey{p.Party, p.KeyID}] = l
	}
	return out, nil
}
