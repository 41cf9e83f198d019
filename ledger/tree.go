package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/spoor-ledger/spoor/verifier"
)

var hasher = rfc6962.DefaultHasher

// rangeFactory hashes interior nodes with verifier.HashChildren, from one
// stack buffer: the sequencer computes about two per leaf.
var rangeFactory = &compact.RangeFactory{Hash: verifier.HashChildren}

// tree is the right edge of the Merkle tree: the compact range that gives
// the root, and the newest (partial) tile of each level, which is what a
// batch of appends changes. It is owned by the sequencer goroutine.
type tree struct {
	rng *compact.Range
	// edge[L] holds the hashes of the newest tile of level L: the
	// level-8L node hashes from index (count/256)*256 up to count.
	edge [][]byte
	// dirty marks the tiles a batch touched, by level: the tile index
	// written, possibly two per level when a tile fills and a new one starts.
	dirty map[tileID][]byte
	// tileRoots receives, during one append, the compact range's new nodes
	// at levels 8, 16, ...: each is the root of a tile that just filled,
	// which so need not be hashed a second time from the tile's bytes.
	tileRoots [8][]byte
	visit     compact.VisitFn
}

type tileID struct {
	level int
	index uint64
}

func newTree() *tree {
	t := &tree{rng: rangeFactory.NewEmptyRange(0), dirty: map[tileID][]byte{}}
	t.visit = func(id compact.NodeID, hash []byte) {
		if id.Level > 0 && id.Level%verifier.TileHeight == 0 && int(id.Level/verifier.TileHeight) <= len(t.tileRoots) {
			t.tileRoots[id.Level/verifier.TileHeight-1] = hash
		}
	}
	return t
}

func (t *tree) size() uint64 { return t.rng.End() }

// append adds one leaf hash at index size() and updates the edge tiles.
func (t *tree) append(leafHash []byte) error {
	idx := t.rng.End()
	// Only a leaf that fills a tile (every 256th) creates tile roots.
	var visit compact.VisitFn
	if idx%verifier.TileWidth == verifier.TileWidth-1 {
		visit = t.visit
		clear(t.tileRoots[:])
	}
	if err := t.rng.Append(leafHash, visit); err != nil {
		return fmt.Errorf("compact range append: %w", err)
	}
	h := leafHash
	for level := 0; ; level++ {
		if level == len(t.edge) {
			t.edge = append(t.edge, make([]byte, 0, verifier.TileWidth*sha256.Size))
		}
		tileIndex := idx / verifier.TileWidth
		t.edge[level] = append(t.edge[level], h...)
		full := len(t.edge[level]) == verifier.TileWidth*sha256.Size
		t.dirty[tileID{level, tileIndex}] = t.edge[level]
		if !full {
			return nil
		}
		// A full tile's root is a node of the next tile level: the
		// compact range has just computed it (the merge that filled the
		// tile); a tree deeper than the visitor records hashes it anew.
		h = nil
		if level < len(t.tileRoots) {
			h = t.tileRoots[level]
		}
		if h == nil {
			h = subtreeRoot(t.edge[level])
		}
		t.edge[level] = make([]byte, 0, verifier.TileWidth*sha256.Size)
		idx = tileIndex
	}
}

// root returns the tree's root hash.
func (t *tree) root() ([32]byte, error) {
	var r [32]byte
	if t.size() == 0 {
		return sha256.Sum256(nil), nil
	}
	h, err := t.rng.GetRootHash(nil)
	if err != nil {
		return r, fmt.Errorf("compact range root: %w", err)
	}
	copy(r[:], h)
	return r, nil
}

// takeDirty returns the tiles changed since the last call, each as its key
// and a copy of its current bytes, and forgets them.
func (t *tree) takeDirty(add func(level int, index uint64, data []byte)) {
	for id, data := range t.dirty {
		add(id.level, id.index, append([]byte(nil), data...))
	}
	clear(t.dirty)
}

// subtreeRoot hashes a power-of-two run of node hashes into their root.
func subtreeRoot(hashes []byte) []byte {
	n := len(hashes) / sha256.Size
	level := make([][]byte, n)
	for i := range level {
		level[i] = hashes[i*sha256.Size : (i+1)*sha256.Size]
	}
	for len(level) > 1 {
		next := level[:len(level)/2]
		for i := range next {
			next[i] = hasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = next
	}
	return level[0]
}

// TileReader reads stored tiles: the data of tile (level, index), which is
// at least as wide as any tree size the caller has seen a checkpoint for.
type TileReader interface {
	ReadTile(ctx context.Context, level int, index uint64) ([]byte, error)
}

// nodeHash returns the hash of the complete subtree node (level, index),
// computed from the tile row below it. ErrNotFound means the tiles do not
// cover it (yet).
func nodeHash(ctx context.Context, tr TileReader, level uint, index uint64) ([]byte, error) {
	tileLevel := int(level / verifier.TileHeight)
	r := level % verifier.TileHeight
	first := index << r
	count := uint64(1) << r
	tileIndex := first / verifier.TileWidth
	data, err := tr.ReadTile(ctx, tileLevel, tileIndex)
	if err != nil {
		return nil, err
	}
	lo := (first % verifier.TileWidth) * sha256.Size
	hi := lo + count*sha256.Size
	if uint64(len(data)) < hi {
		return nil, fmt.Errorf("node (%d, %d): tile %d/%d has %d hashes: %w", level, index, tileLevel, tileIndex, len(data)/sha256.Size, ErrNotFound)
	}
	if count == 1 {
		return append([]byte(nil), data[lo:hi]...), nil
	}
	return subtreeRoot(append([]byte(nil), data[lo:hi]...)), nil
}

// loadTree rebuilds the right edge of a tree of the given size from stored
// tiles: the compact range from its nodes, and each level's newest tile.
func loadTree(ctx context.Context, tr TileReader, size uint64) (*tree, error) {
	t := newTree()
	if size == 0 {
		return t, nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, 0, len(ids))
	for _, id := range ids {
		h, err := nodeHash(ctx, tr, id.Level, id.Index)
		if err != nil {
			return nil, fmt.Errorf("couldn't read tree node (level %d, index %d): %w", id.Level, id.Index, err)
		}
		hashes = append(hashes, h)
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("couldn't rebuild compact range: %w", err)
	}
	t.rng = rng
	for level, count := 0, size; count > 0; level, count = level+1, count/verifier.TileWidth {
		w := count % verifier.TileWidth
		edge := make([]byte, 0, verifier.TileWidth*sha256.Size)
		if w > 0 {
			data, err := tr.ReadTile(ctx, level, count/verifier.TileWidth)
			if err != nil {
				return nil, fmt.Errorf("couldn't read edge tile %d/%d: %w", level, count/verifier.TileWidth, err)
			}
			if uint64(len(data)) < w*sha256.Size {
				return nil, fmt.Errorf("edge tile %d/%d has %d hashes, the tree needs %d: %w", level, count/verifier.TileWidth, len(data)/sha256.Size, w, ErrCorrupt)
			}
			edge = append(edge, data[:w*sha256.Size]...)
		}
		t.edge = append(t.edge, edge)
	}
	return t, nil
}

// ErrCorrupt means the stored log disagrees with itself (for example the
// tiles with the last checkpoint); the ledger refuses to start on it.
var ErrCorrupt = errors.New("ledger: store is inconsistent")
