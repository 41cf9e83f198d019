package audit

// The FG's recomputation of the subject index (issue 22,
// docs/subject-index.md): the audit reads every envelope, so it can say
// which disclosures each child has at each party; with the map keys of
// those (child, party) pairs, each checked against its VRF proof under the
// key the index heads publish, and the stored lists (whose nonces only the
// ledger keeps), it recomputes the last index head's root from scratch
// (verifier/subjectindex.RootOf) and raises index-recompute when the
// stored index does not say what the log says. Only the newest map is
// stored, so older heads are not recomputed: the report says so.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/internal/parallel"
	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/subjectindex"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// IndexSource is implemented by sources that can read the subject index
// (the ledger's store with its VRF key): Run then recomputes the last
// index head.
type IndexSource interface {
	// IndexMapKeys returns, for each pair, its map key and the VRF proof
	// of it (under the key the index heads publish).
	IndexMapKeys(ctx context.Context, pairs []IndexPair) ([]IndexMapKey, error)
	// IndexLists calls fn with every list the stored index holds: its
	// map key and its byte form (verifier/subjectindex.List).
	IndexLists(ctx context.Context, fn func(mk subjectindex.MapKey, list []byte) error) error
}

// IndexPair is one child (by identifier type, pseudonym key version and
// pseudonym) at one party.
type IndexPair struct {
	IDType, KeyID, Pseudonym, Party string
}

// IndexMapKey is a pair's map key with its VRF proof.
type IndexMapKey struct {
	MapKey   subjectindex.MapKey
	VRFProof []byte
}

// IndexReport is what the audit found of the subject index.
type IndexReport struct {
	// Heads counts the index heads; LastHead is the last one's leaf.
	Heads    int    `json:"heads"`
	LastHead uint64 `json:"last_head"`
	// Recomputed says the last head's root was recomputed from the
	// envelopes and the stored lists (and matched, or a problem says
	// not); Lists and Items are what it covered.
	Recomputed bool `json:"recomputed"`
	Lists      int  `json:"lists,omitempty"`
	Items      int  `json:"items,omitempty"`
	// NotRecomputed says why older heads, or the last, were not.
	NotRecomputed string `json:"not_recomputed,omitempty"`
}

// CheckIndexRecompute: the stored subject index differs from what the
// log's envelopes and tombstones say, or from its last head's root.
const CheckIndexRecompute Check = "index-recompute"

// indexState is what the audit collects for the recomputation.
type indexState struct {
	lastHead uint64
	root     subjectindex.Hash
	vrfKey   string
	seen     bool
	// leaves are the live disclosures per pair, in log order.
	leaves map[IndexPair][]uint64
}

// indexDisclosure notes a disclosure whose envelope the audit opened.
func (a *auditor) indexDisclosure(idx uint64, d *events.Disclosure) {
	if a.index.leaves == nil {
		a.index.leaves = map[IndexPair][]uint64{}
	}
	p := IndexPair{IDType: string(d.Subject.IDType), KeyID: d.Subject.KeyID, Pseudonym: d.Subject.Pseudonym, Party: d.Discloser}
	a.index.leaves[p] = append(a.index.leaves[p], idx)
}

// indexHeadSeen notes an index head that checked out.
func (a *auditor) indexHeadSeen(idx uint64, body *verifier.IndexHeadBody) {
	a.index.seen, a.index.lastHead, a.index.root, a.index.vrfKey = true, idx, body.RootHash(), body.VRFKey
	a.rep.Index.Heads++
	a.rep.Index.LastHead = idx
}

// indexAudit recomputes the last index head, when the source can read the
// index.
func (a *auditor) indexAudit(ctx context.Context, src Source) error {
	if !a.index.seen {
		return nil
	}
	is, ok := src.(IndexSource)
	if !ok {
		a.rep.Index.NotRecomputed = "the source does not read the subject index (it needs the ledger's store and its VRF key)"
		return nil
	}
	a.rep.Index.NotRecomputed = "older heads: only the newest index is stored, and its lists' nonces are the ledger's"
	head := verifier.IndexHeadBody{VRFKey: a.index.vrfKey}
	pub, err := head.VRFPublicKey()
	if err != nil {
		a.problem(CheckIndexRecompute, ptr(a.index.lastHead), nil, "%v", err)
		return nil
	}
	// The pairs of disclosures below the last head (later ones, logged
	// while the index was off, are not in it yet).
	var pairs []IndexPair
	want := map[IndexPair][]uint64{}
	for p, ls := range a.index.leaves {
		i, _ := slices.BinarySearch(ls, a.index.lastHead)
		if i > 0 {
			pairs = append(pairs, p)
			want[p] = ls[:i]
		}
	}
	mks, err := is.IndexMapKeys(ctx, pairs)
	if errors.Is(err, tlogclient.ErrNotFound) {
		a.rep.Index.NotRecomputed = "the ledger serves no subject index (it runs without it now)"
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read the subject index's map keys: %w", err)
	}
	if len(mks) != len(pairs) {
		return fmt.Errorf("the source gave %d map keys for %d pairs", len(mks), len(pairs))
	}
	// Each map key checked against its VRF proof, on every worker.
	bad := make([]error, len(pairs))
	parallel.For(len(pairs), a.cfg.Workers, 16, func(i int) {
		ik, err := subjectindex.DeriveIndexKey(pairs[i].IDType, pairs[i].KeyID, pairs[i].Pseudonym)
		if err != nil {
			bad[i] = err
			return
		}
		mk, err := pub.MapKey(ik, pairs[i].Party, mks[i].VRFProof)
		if err == nil && mk != mks[i].MapKey {
			err = errors.New("the VRF proof gives another map key")
		}
		bad[i] = err
	})
	byKey := map[subjectindex.MapKey]IndexPair{}
	for i, err := range bad {
		if err != nil {
			a.problem(CheckIndexRecompute, ptr(want[pairs[i]][0]), nil, "the map key of the list of leaf %d's child at %s does not check: %v", want[pairs[i]][0], pairs[i].Party, err)
			return nil
		}
		byKey[mks[i].MapKey] = pairs[i]
	}
	var leaves []subjectindex.Leaf
	seen := map[subjectindex.MapKey]bool{}
	err = is.IndexLists(ctx, func(mk subjectindex.MapKey, b []byte) error {
		l, err := subjectindex.ParseList(b)
		if err != nil {
			a.problem(CheckIndexRecompute, ptr(a.index.lastHead), nil, "the stored list %x does not parse: %v", mk[:8], err)
			return nil
		}
		seen[mk] = true
		var live []uint64
		for _, it := range l.Items {
			a.rep.Index.Items++
			if !it.Erased {
				live = append(live, it.Leaf)
				continue
			}
			if tomb, ok := a.tombstoned[it.Leaf]; !ok || tomb != it.Tombstone || tomb >= a.index.lastHead {
				a.problem(CheckIndexRecompute, ptr(it.Leaf), nil, "the index marks leaf %d erased by leaf %d, which the log does not show before the last head", it.Leaf, it.Tombstone)
			}
		}
		p, ok := byKey[mk]
		if !slices.Equal(live, want[p]) || (!ok && len(live) > 0) {
			first := uint64(0)
			if len(live) > 0 {
				first = live[0]
			}
			a.problem(CheckIndexRecompute, ptr(first), nil, "the stored list %x holds the live leaves %v; the log's envelopes say %v", mk[:8], clipLeaves(live), clipLeaves(want[p]))
		}
		leaves = append(leaves, subjectindex.Leaf{Key: mk, Value: subjectindex.CommitmentOf(mk, b)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't read the subject index's lists: %w", err)
	}
	for mk, p := range byKey {
		if !seen[mk] {
			a.problem(CheckIndexRecompute, ptr(want[p][0]), nil, "leaves %v of one child at %s are in no list of the stored index", clipLeaves(want[p]), p.Party)
		}
	}
	root, err := subjectindex.RootOf(leaves)
	if err != nil {
		a.problem(CheckIndexRecompute, ptr(a.index.lastHead), nil, "%v", err)
		return nil
	}
	if root != a.index.root {
		a.problem(CheckIndexRecompute, ptr(a.index.lastHead), nil, "the stored lists give the index root %x, the last index head (leaf %d) says %x",
			root[:8], a.index.lastHead, a.index.root[:8])
	}
	a.rep.Index.Recomputed = true
	a.rep.Index.Lists = len(leaves)
	return nil
}

func clipLeaves(ls []uint64) []uint64 {
	if len(ls) > 8 {
		return ls[:8]
	}
	return ls
}
