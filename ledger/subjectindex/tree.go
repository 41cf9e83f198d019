package subjectindex

import (
	"context"
	"fmt"

	vsi "github.com/spoor-ledger/spoor/verifier/subjectindex"
)

// A stored node is the non-empty subtree at one position (depth and path):
// a leaf (the one key it holds and its value) or an inner node (its hash;
// it holds two or more keys, and its children sit at depth+1). An empty
// subtree is not stored. Node record: 0x00 key value (65 bytes) for a
// leaf, 0x01 hash (33 bytes) for an inner node.

type nodeKind uint8

const (
	empty nodeKind = iota
	leaf
	inner
)

type node struct {
	kind  nodeKind
	key   vsi.MapKey // leaf
	value vsi.Hash   // leaf: the list commitment; inner: the node hash
}

func (n node) hash() vsi.Hash {
	switch n.kind {
	case leaf:
		return vsi.LeafHash(n.key, n.value)
	case inner:
		return n.value
	}
	return vsi.EmptyHash
}

func (n node) record() []byte {
	if n.kind == leaf {
		b := make([]byte, 0, 65)
		b = append(b, 0)
		b = append(b, n.key[:]...)
		return append(b, n.value[:]...)
	}
	b := make([]byte, 0, 33)
	b = append(b, 1)
	return append(b, n.value[:]...)
}

func parseNode(b []byte) (node, bool) {
	var n node
	switch {
	case len(b) == 65 && b[0] == 0:
		n.kind = leaf
		copy(n.key[:], b[1:33])
		copy(n.value[:], b[33:])
	case len(b) == 33 && b[0] == 1:
		n.kind = inner
		copy(n.value[:], b[1:])
	default:
		return node{}, false
	}
	return n, true
}

// change is a new value for a key, or its removal.
type change struct {
	key   vsi.MapKey
	value vsi.Hash
	del   bool
}

// treeUpdate is one Apply's walk over the tree.
type treeUpdate struct {
	x   *Index
	r   Reader
	ctx context.Context
	u   *Update
}

func (t *treeUpdate) read(depth int, path *vsi.MapKey) (node, error) {
	return t.x.readNode(t.ctx, t.r, depth, path)
}

func (x *Index) readNode(ctx context.Context, r Reader, depth int, path *vsi.MapKey) (node, error) {
	b, found, err := r.Lookup(ctx, x.nodeKey(depth, path))
	if err != nil {
		return node{}, fmt.Errorf("couldn't read the index node at depth %d: %w", depth, err)
	}
	if !found {
		return node{}, nil
	}
	n, ok := parseNode(b)
	if !ok {
		return node{}, fmt.Errorf("%w: node record at depth %d", ErrCorrupt, depth)
	}
	if n.kind == leaf && !onPath(&n.key, path, depth) {
		return node{}, fmt.Errorf("%w: the leaf at depth %d is off its path", ErrCorrupt, depth)
	}
	return n, nil
}

// put records the write that turns the stored node at a position from old
// into want, if they differ.
func (t *treeUpdate) put(depth int, path *vsi.MapKey, old, want node) {
	switch {
	case old == want:
	case want.kind == empty:
		t.u.Writes = append(t.u.Writes, Write{Key: t.x.nodeKey(depth, path), Delete: true})
	default:
		t.u.Writes = append(t.u.Writes, Write{Key: t.x.nodeKey(depth, path), Value: want.record()})
	}
}

// child returns the path of the child of path (at depth) on side b.
func child(path vsi.MapKey, depth int, b byte) vsi.MapKey {
	if b == 1 {
		path[depth/8] |= 0x80 >> (depth % 8)
	}
	return path
}

// onPath reports whether k's first depth bits are path's.
func onPath(k, path *vsi.MapKey, depth int) bool {
	full := depth / 8
	if string(k[:full]) != string(path[:full]) {
		return false
	}
	if r := depth % 8; r != 0 {
		mask := byte(0xff) << (8 - r)
		return k[full]&mask == path[full]&mask
	}
	return true
}

// splitAt returns the index of the first change whose key has bit d set;
// cs is sorted and shares its first d bits.
func splitAt(cs []change, d int) int {
	i := 0
	for i < len(cs) && vsi.Bit(&cs[i].key, d) == 0 {
		i++
	}
	return i
}

// update returns the subtree at (depth, path), stored as old, after the
// sorted changes cs (all on this path). It records the writes below this
// position; the caller records the write at it.
func (t *treeUpdate) update(depth int, path vsi.MapKey, old node, cs []change) (node, error) {
	if len(cs) == 0 {
		return old, nil
	}
	if err := t.ctx.Err(); err != nil {
		return node{}, err
	}
	if old.kind == inner {
		if depth >= vsi.KeyBits {
			return node{}, fmt.Errorf("%w: an inner node at depth %d", ErrCorrupt, depth)
		}
		i := splitAt(cs, depth)
		parts := [2][]change{cs[:i], cs[i:]}
		var olds, news [2]node
		for b := range byte(2) {
			p := child(path, depth, b)
			o, err := t.read(depth+1, &p)
			if err != nil {
				return node{}, err
			}
			n, err := t.update(depth+1, p, o, parts[b])
			if err != nil {
				return node{}, err
			}
			olds[b], news[b] = o, n
		}
		if olds[0].kind == empty || olds[1].kind == empty {
			// Not fatal to compute, but a stored tree with a unary
			// node over a single leaf breaks the map's shape.
			if olds[0].kind != inner && olds[1].kind != inner {
				return node{}, fmt.Errorf("%w: an inner node at depth %d over fewer than two keys", ErrCorrupt, depth)
			}
		}
		return t.join(depth, path, olds, news), nil
	}
	// An empty subtree or a single leaf: the keys it will hold are the
	// old leaf's (unless changed) and the changes that set a value.
	leaves := make([]vsi.Leaf, 0, len(cs)+1)
	oldKept := old.kind == leaf
	for _, c := range cs {
		if old.kind == leaf && c.key == old.key {
			oldKept = false
		} else if c.del {
			return node{}, fmt.Errorf("%w: removal of key %x, which the map does not hold", ErrCorrupt, c.key[:8])
		}
		if !c.del {
			leaves = append(leaves, vsi.Leaf{Key: c.key, Value: c.value})
		}
	}
	if oldKept {
		k := old.key
		i := 0
		for i < len(leaves) && string(leaves[i].Key[:]) < string(k[:]) {
			i++
		}
		leaves = append(leaves[:i], append([]vsi.Leaf{{Key: k, Value: old.value}}, leaves[i:]...)...)
	}
	return t.build(depth, path, leaves), nil
}

// join makes the node at (depth, path) from its children's new states and
// records the writes at the children's positions: the children stay where
// they are under an inner node, and leave when the subtree shrinks to one
// key (that leaf moves up) or none.
func (t *treeUpdate) join(depth int, path vsi.MapKey, olds, news [2]node) node {
	var n node
	switch {
	case news[0].kind == empty && news[1].kind != inner:
		n = news[1]
	case news[1].kind == empty && news[0].kind != inner:
		n = news[0]
	default:
		n = node{kind: inner, value: vsi.NodeHash(news[0].hash(), news[1].hash())}
	}
	for b := range byte(2) {
		want := node{}
		if n.kind == inner {
			want = news[b]
		}
		p := child(path, depth, b)
		t.put(depth+1, &p, olds[b], want)
	}
	return n
}

// build makes the subtree at (depth, path) holding the sorted leaves where
// nothing was stored below, and records the writes of its inner positions.
func (t *treeUpdate) build(depth int, path vsi.MapKey, leaves []vsi.Leaf) node {
	switch len(leaves) {
	case 0:
		return node{}
	case 1:
		return node{kind: leaf, key: leaves[0].Key, value: leaves[0].Value}
	}
	i := 0
	for i < len(leaves) && vsi.Bit(&leaves[i].Key, depth) == 0 {
		i++
	}
	parts := [2][]vsi.Leaf{leaves[:i], leaves[i:]}
	var kids [2]node
	for b := range byte(2) {
		p := child(path, depth, b)
		kids[b] = t.build(depth+1, p, parts[b])
		t.put(depth+1, &p, node{}, kids[b])
	}
	return node{kind: inner, value: vsi.NodeHash(kids[0].hash(), kids[1].hash())}
}

// Root returns the root of the stored map.
func (x *Index) Root(ctx context.Context, r Reader) (vsi.Hash, error) {
	var zero vsi.MapKey
	n, err := x.readNode(ctx, r, 0, &zero)
	if err != nil {
		return vsi.Hash{}, err
	}
	return n.hash(), nil
}

// Prove returns the proof of what the stored map holds at k, and k's list
// (nil when k is absent). The proof is checked against the stored root
// with the verifier's own functions before it is returned, so a corrupt
// index yields ErrCorrupt rather than a proof that fails at the verifier.
// The Reader must show one commit throughout (a snapshot, or the
// sequencer's own view between commits).
func (x *Index) Prove(ctx context.Context, r Reader, k vsi.MapKey) (*vsi.Proof, *vsi.List, error) {
	var path vsi.MapKey
	root, err := x.readNode(ctx, r, 0, &path)
	if err != nil {
		return nil, nil, err
	}
	p := &vsi.Proof{}
	n := root
	for depth := 0; n.kind == inner; depth++ {
		if depth >= vsi.KeyBits {
			return nil, nil, fmt.Errorf("%w: an inner node at depth %d", ErrCorrupt, depth)
		}
		bit := vsi.Bit(&k, depth)
		on, off := child(path, depth, bit), child(path, depth, 1-bit)
		next, err := x.readNode(ctx, r, depth+1, &on)
		if err != nil {
			return nil, nil, err
		}
		sib, err := x.readNode(ctx, r, depth+1, &off)
		if err != nil {
			return nil, nil, err
		}
		p.Siblings = append(p.Siblings, sib.hash())
		n, path = next, on
	}
	var l *vsi.List
	switch {
	case n.kind == empty:
		p.Kind = vsi.AbsentEmpty
		err = vsi.VerifyAbsence(root.hash(), k, p)
	case n.key != k:
		p.Kind, p.OtherKey, p.OtherValue = vsi.AbsentOther, n.key, n.value
		err = vsi.VerifyAbsence(root.hash(), k, p)
	default:
		p.Kind = vsi.Inclusion
		b, found, rerr := r.Lookup(ctx, x.listKey(&k))
		if rerr != nil {
			return nil, nil, fmt.Errorf("couldn't read the list of key %x: %w", k[:8], rerr)
		}
		if !found {
			return nil, nil, fmt.Errorf("%w: key %x is in the tree without a list", ErrCorrupt, k[:8])
		}
		if l, err = vsi.ParseList(b); err != nil {
			return nil, nil, fmt.Errorf("%w: list of key %x: %w", ErrCorrupt, k[:8], err)
		}
		err = vsi.VerifyList(root.hash(), k, l, p)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the proof of key %x does not verify: %w", ErrCorrupt, k[:8], err)
	}
	return p, l, nil
}

// Check walks the whole stored tree and returns its root after checking
// every record: each inner node's hash against its children, the tree's
// shape against the map's rules, and each leaf's value against the
// commitment of its stored list. It reads every node and list once, so it
// costs as much as recomputing the index; Open and a standby run it to
// refuse a store whose index differs from what its index head states. It
// cannot see a list record that no leaf names (the Reader has no scan);
// such a record changes no proof.
func (x *Index) Check(ctx context.Context, r Reader) (vsi.Hash, error) {
	var path vsi.MapKey
	root, err := x.readNode(ctx, r, 0, &path)
	if err != nil {
		return vsi.Hash{}, err
	}
	return x.check(ctx, r, 0, path, root)
}

func (x *Index) check(ctx context.Context, r Reader, depth int, path vsi.MapKey, n node) (vsi.Hash, error) {
	switch n.kind {
	case empty:
		return vsi.EmptyHash, nil
	case leaf:
		b, found, err := r.Lookup(ctx, x.listKey(&n.key))
		if err != nil {
			return vsi.Hash{}, fmt.Errorf("couldn't read the list of key %x: %w", n.key[:8], err)
		}
		if !found {
			return vsi.Hash{}, fmt.Errorf("%w: key %x is in the tree without a list", ErrCorrupt, n.key[:8])
		}
		if _, err := vsi.ParseList(b); err != nil {
			return vsi.Hash{}, fmt.Errorf("%w: list of key %x: %w", ErrCorrupt, n.key[:8], err)
		}
		if vsi.CommitmentOf(n.key, b) != n.value {
			return vsi.Hash{}, fmt.Errorf("%w: the leaf of key %x does not hold its list's commitment", ErrCorrupt, n.key[:8])
		}
		return n.hash(), nil
	}
	if err := ctx.Err(); err != nil {
		return vsi.Hash{}, err
	}
	if depth >= vsi.KeyBits {
		return vsi.Hash{}, fmt.Errorf("%w: an inner node at depth %d", ErrCorrupt, depth)
	}
	var kids [2]node
	var hashes [2]vsi.Hash
	for b := range byte(2) {
		p := child(path, depth, b)
		k, err := x.readNode(ctx, r, depth+1, &p)
		if err != nil {
			return vsi.Hash{}, err
		}
		if hashes[b], err = x.check(ctx, r, depth+1, p, k); err != nil {
			return vsi.Hash{}, err
		}
		kids[b] = k
	}
	if (kids[0].kind == empty || kids[1].kind == empty) && kids[0].kind != inner && kids[1].kind != inner {
		return vsi.Hash{}, fmt.Errorf("%w: an inner node at depth %d over fewer than two keys", ErrCorrupt, depth)
	}
	if h := vsi.NodeHash(hashes[0], hashes[1]); h != n.value {
		return vsi.Hash{}, fmt.Errorf("%w: the inner node at depth %d does not hash its children", ErrCorrupt, depth)
	}
	return n.value, nil
}
