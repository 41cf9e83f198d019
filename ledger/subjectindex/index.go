// Package subjectindex keeps the ledger's subject index: the verifiable map
// from (index key, discloser) to the commitment of the list of a child's
// entries by that party (verifier/subjectindex defines the map, its lists,
// its hashes and its proofs; this package imports those definitions and
// keeps the newest version of the map in a key-value store).
//
// Data flow: the sequencer, for each batch it integrates, names the
// entries' map keys in a Batch (an appended disclosure or correction, an
// erasure with its tombstone, a removal once the notice period has ended);
// Apply reads the lists and tree nodes it needs through a Reader and
// returns the new root and the writes that make the store hold the new map.
// The caller commits those writes in the same durable batch as the entries
// and the index head entry that states the root, so that the stored index
// is always the one the last head describes. Prove reads a key's list and
// proof for a bundle.
//
// Only the newest map version is stored: nodes and lists are overwritten in
// place, and an older root is checked by recomputing it (RootOf in the
// verifier) from the lists as they were.
//
// Concurrency: Apply must not run concurrently with itself or with a
// commit of its writes (the sequencer is the one writer); Prove and Root
// may run concurrently with each other and with Apply, and see the map of
// whatever commit the Reader shows them.
package subjectindex

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// Reader reads the index's records. Lookup returns found = false, and no
// error, for a key that is not stored; the value is the caller's.
type Reader interface {
	Lookup(ctx context.Context, key []byte) (value []byte, found bool, err error)
}

// Write is one store write of an update: a set, or a delete when Delete is
// true.
type Write struct {
	Key, Value []byte
	Delete     bool
}

// Config configures an Index. The zero value is ready to use.
type Config struct {
	// Prefix is put before every store key of the index, to give it its
	// own part of a shared key space. Default "x/".
	Prefix string
	// Rand is where new lists' nonces come from. Default crypto/rand;
	// tests set a fixed stream to make golden vectors.
	Rand io.Reader
}

// Index reads and updates one subject index in a store.
type Index struct {
	prefix string
	rand   io.Reader
}

// New returns an Index with cfg.
func New(cfg Config) *Index {
	x := &Index{prefix: cfg.Prefix, rand: cfg.Rand}
	if x.prefix == "" {
		x.prefix = "x/"
	}
	if x.rand == nil {
		x.rand = rand.Reader
	}
	return x
}

// ErrUpdate is wrapped by every error of a Batch that does not fit the
// stored lists: an append not after the list's last leaf, an erasure or a
// removal of a leaf the list does not hold (or a removal of one not
// erased). The update is refused whole; nothing is written.
var ErrUpdate = errors.New("subjectindex: update does not fit the index")

// ErrCorrupt is wrapped when the stored index is not a valid map: a node
// or list record that does not parse, or a tree whose shape breaks the
// map's rules. The sequencer must stop rather than build on it.
var ErrCorrupt = errors.New("subjectindex: stored index is corrupt")

type opKind uint8

const (
	opAppend opKind = iota + 1
	opErase
	opDrop
)

type op struct {
	kind            opKind
	leaf, tombstone uint64
}

// Batch collects the changes of one sequencer batch, per map key, in the
// order they are added. The zero value is empty and ready to use.
type Batch struct {
	ops map[vsi.MapKey][]op
}

func (b *Batch) add(k vsi.MapKey, o op) {
	if b.ops == nil {
		b.ops = make(map[vsi.MapKey][]op)
	}
	b.ops[k] = append(b.ops[k], o)
}

// Append adds leaf, a new entry about the child by the party of k, at the
// end of k's list (making the list if k has none).
func (b *Batch) Append(k vsi.MapKey, leaf uint64) { b.add(k, op{kind: opAppend, leaf: leaf}) }

// Erase marks leaf erased by the tombstone at leaf index tombstone.
func (b *Batch) Erase(k vsi.MapKey, leaf, tombstone uint64) {
	b.add(k, op{kind: opErase, leaf: leaf, tombstone: tombstone})
}

// Drop removes an erased leaf from k's list once the notice period has
// passed; the caller checks the tombstone's age. A list left empty leaves
// the map.
func (b *Batch) Drop(k vsi.MapKey, leaf uint64) { b.add(k, op{kind: opDrop, leaf: leaf}) }

// Len is the number of map keys the batch changes.
func (b *Batch) Len() int { return len(b.ops) }

// Update is the result of Apply.
type Update struct {
	// Root is the root of the map after the batch.
	Root vsi.Hash
	// Writes make the store hold the new map; commit them with the batch's
	// entries.
	Writes []Write
}

// Apply computes the map after b and the writes that store it. It reads
// through r and writes nothing itself.
func (x *Index) Apply(ctx context.Context, r Reader, b *Batch) (*Update, error) {
	u := &Update{}
	changes := make([]change, 0, len(b.ops))
	for k, ops := range b.ops {
		c, err := x.applyList(ctx, r, k, ops, u)
		if err != nil {
			return nil, err
		}
		changes = append(changes, c)
	}
	slices.SortFunc(changes, func(a, b change) int { return bytes.Compare(a.key[:], b.key[:]) })
	t := &treeUpdate{x: x, r: r, ctx: ctx, u: u}
	var zero vsi.MapKey
	old, err := t.read(0, &zero)
	if err != nil {
		return nil, err
	}
	root, err := t.update(0, zero, old, changes)
	if err != nil {
		return nil, err
	}
	t.put(0, &zero, old, root)
	u.Root = root.hash()
	return u, nil
}

// applyList applies ops to k's stored list, adds the list's write to u and
// returns the change of k's value in the map.
func (x *Index) applyList(ctx context.Context, r Reader, k vsi.MapKey, ops []op, u *Update) (change, error) {
	key := x.listKey(&k)
	b, found, err := r.Lookup(ctx, key)
	if err != nil {
		return change{}, fmt.Errorf("couldn't read the list of key %x: %w", k[:8], err)
	}
	l := new(vsi.List)
	if found {
		if l, err = vsi.ParseList(b); err != nil {
			return change{}, fmt.Errorf("%w: list of key %x: %w", ErrCorrupt, k[:8], err)
		}
	} else if _, err := io.ReadFull(x.rand, l.Nonce[:]); err != nil {
		return change{}, fmt.Errorf("couldn't draw a list nonce: %w", err)
	}
	for _, o := range ops {
		if err := applyOp(l, o); err != nil {
			return change{}, fmt.Errorf("%w: key %x: %w", ErrUpdate, k[:8], err)
		}
	}
	if len(l.Items) == 0 {
		if found {
			u.Writes = append(u.Writes, Write{Key: key, Delete: true})
		}
		return change{key: k, del: true}, nil
	}
	nb, err := l.MarshalBinary()
	if err != nil {
		return change{}, fmt.Errorf("%w: key %x: %w", ErrUpdate, k[:8], err)
	}
	u.Writes = append(u.Writes, Write{Key: key, Value: nb})
	return change{key: k, value: vsi.CommitmentOf(k, nb)}, nil
}

func applyOp(l *vsi.List, o op) error {
	i, held := slices.BinarySearchFunc(l.Items, o.leaf, func(it vsi.Item, leaf uint64) int {
		switch {
		case it.Leaf < leaf:
			return -1
		case it.Leaf > leaf:
			return 1
		}
		return 0
	})
	switch o.kind {
	case opAppend:
		if n := len(l.Items); n > 0 && l.Items[n-1].Leaf >= o.leaf {
			return fmt.Errorf("append of leaf %d: not after the list's last leaf %d", o.leaf, l.Items[n-1].Leaf)
		}
		l.Items = append(l.Items, vsi.Item{Leaf: o.leaf})
	case opErase:
		if !held || l.Items[i].Erased {
			return fmt.Errorf("erasure of leaf %d: not a live entry of the list", o.leaf)
		}
		if o.tombstone <= o.leaf {
			return fmt.Errorf("erasure of leaf %d: tombstone %d is not after it", o.leaf, o.tombstone)
		}
		l.Items[i] = vsi.Item{Leaf: o.leaf, Erased: true, Tombstone: o.tombstone}
	case opDrop:
		if !held || !l.Items[i].Erased {
			return fmt.Errorf("removal of leaf %d: not an erased entry of the list", o.leaf)
		}
		l.Items = slices.Delete(l.Items, i, i+1)
	}
	return nil
}

// Store keys: prefix "l" map key for a list; prefix "n" depth (2 bytes)
// and the path's first ceil(depth/8) bytes for a tree node.

func (x *Index) listKey(k *vsi.MapKey) []byte {
	b := make([]byte, 0, len(x.prefix)+1+32)
	b = append(b, x.prefix...)
	b = append(b, 'l')
	return append(b, k[:]...)
}

func (x *Index) nodeKey(depth int, path *vsi.MapKey) []byte {
	n := (depth + 7) / 8
	b := make([]byte, 0, len(x.prefix)+3+n)
	b = append(b, x.prefix...)
	b = append(b, 'n')
	b = binary.BigEndian.AppendUint16(b, uint16(depth))
	return append(b, path[:n]...)
}

// ListKey returns the store key of k's list, for a caller that reads a
// list directly (a bundle's nonce and items come from it).
func (x *Index) ListKey(k vsi.MapKey) []byte { return x.listKey(&k) }
