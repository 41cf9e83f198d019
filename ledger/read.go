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
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/spoor-ledger/spoor/events"
	"github.com/spoor-ledger/spoor/verifier"
)

// Origin is the log's origin (the checkpoint's first line).
func (l *Ledger) Origin() string { return l.origin }

// Head returns the newest committed checkpoint.
func (l *Ledger) Head() *Head { return l.head.Load() }

// Covenant returns the covenant version in force and its leaf index: the
// one events are opened and checked against.
func (l *Ledger) Covenant() (*events.SignedCovenant, uint64) {
	return l.covenant.Load(), l.covIdx.Load()
}

// ReadTile returns the stored hashes of tile (level, index); the newest
// tile of a level is partial. It implements TileReader.
func (l *Ledger) ReadTile(ctx context.Context, level int, index uint64) ([]byte, error) {
	return l.store.Get(ctx, tileKey(level, index))
}

// Tile returns tile (level, index) truncated to width hashes (1..256), as
// C2SP tlog-tiles serves it. ErrNotFound if the log is not that wide yet.
func (l *Ledger) Tile(ctx context.Context, level int, index uint64, width int) ([]byte, error) {
	// Only hashes covered by a committed checkpoint are served.
	if !l.covered(level, index, width) {
		return nil, fmt.Errorf("tile %d/%d width %d is beyond the checkpoint: %w", level, index, width, ErrNotFound)
	}
	data, err := l.ReadTile(ctx, level, index)
	if err != nil {
		return nil, err
	}
	if len(data) < width*sha256.Size {
		return nil, fmt.Errorf("tile %d/%d has %d hashes, %d asked: %w", level, index, len(data)/sha256.Size, width, ErrNotFound)
	}
	return data[:width*sha256.Size], nil
}

func (l *Ledger) covered(level int, index uint64, width int) bool {
	h := l.head.Load()
	if h == nil {
		return false
	}
	// The hashes at this level, and the tile's place among them, compared
	// without computing index*TileWidth: for index >= 2^56 that product
	// wraps, and tile 2^56 would pass for tile 0.
	count := h.Size >> (verifier.TileHeight * uint(level))
	full := count / verifier.TileWidth
	if index < full {
		return true
	}
	return index == full && uint64(width) <= count%verifier.TileWidth
}

// LeafRecord returns the parsed leaf record at index.
func (l *Ledger) LeafRecord(ctx context.Context, index uint64) (*verifier.LeafRecord, error) {
	b, err := l.store.Get(ctx, u64Key(tagLeaf, index))
	if err != nil {
		return nil, fmt.Errorf("leaf record %d: %w", index, err)
	}
	rec, err := verifier.ParseLeafRecord(b)
	if err != nil {
		return nil, fmt.Errorf("leaf record %d: %w", index, errors.Join(err, ErrCorrupt))
	}
	return rec, nil
}

// LeafRecordBytes returns the stored leaf record bytes at index, if a
// committed checkpoint covers it.
func (l *Ledger) LeafRecordBytes(ctx context.Context, index uint64) ([]byte, error) {
	if !l.logged(index) {
		return nil, fmt.Errorf("leaf %d is beyond the checkpoint: %w", index, ErrNotFound)
	}
	return l.store.Get(ctx, u64Key(tagLeaf, index))
}

// logged reports whether a committed checkpoint covers leaf index. With a
// Merkle backend, leaves beyond it may be stored but still pending (the
// backend has not yet agreed, see merkle.go), and the store may hold a
// batch a moment before its head is published: neither is answered for.
func (l *Ledger) logged(index uint64) bool {
	h := l.head.Load()
	return h != nil && index < h.Size
}

// EntryBundle returns the C2SP entry bundle of tile index n with width
// entries: the leaf records, each with a 2-byte length.
func (l *Ledger) EntryBundle(ctx context.Context, n uint64, width int) ([]byte, error) {
	if !l.covered(0, n, width) {
		return nil, fmt.Errorf("entry bundle %d width %d is beyond the checkpoint: %w", n, width, ErrNotFound)
	}
	// One allocation: leaf records are small and of about one size
	// (entryBundleGuess bytes with the length prefix); a tombstone's are
	// longer, and append grows the buffer then.
	out := make([]byte, 0, width*entryBundleGuess)
	first := n * verifier.TileWidth
	got := 0
	err := l.store.Scan(ctx, u64Key(tagLeaf, first), u64Key(tagLeaf, first+uint64(width)), func(k, v []byte) error {
		out = verifier.AppendEntry(out, v)
		got++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got != width {
		return nil, fmt.Errorf("entry bundle %d: %d of %d leaf records present: %w", n, got, width, ErrCorrupt)
	}
	return out, nil
}

// entryBundleGuess is the room EntryBundle makes per entry: a disclosure's
// or covenant's leaf record and its 2-byte length.
const entryBundleGuess = 2 + verifier.LeafRecordSize

// Entry returns the stored body of leaf index: a disclosure's envelope, a
// signed covenant, a tombstone. ErrNotFound once erased.
func (l *Ledger) Entry(ctx context.Context, index uint64) ([]byte, error) {
	if !l.logged(index) {
		return nil, fmt.Errorf("entry %d is beyond the checkpoint: %w", index, ErrNotFound)
	}
	body, err := l.store.Get(ctx, u64Key(tagEntry, index))
	if err != nil {
		return nil, err
	}
	return l.cfg.DataKeys.open(index, body)
}

// LoggedEvent is where an event id is logged.
type LoggedEvent struct {
	// Index is the leaf of the event.
	Index uint64
	// Hash is the SHA-256 of the envelope logged under the id (the leaf
	// record's body hash), whether or not it has been erased since.
	Hash [32]byte
	// Discloser is the party whose id it is; empty when Reserved.
	Discloser string
	// Reserved says the id was logged, and its event erased, before ids
	// were per discloser: it is taken for every party.
	Reserved bool
}

// FindEvent returns where discloser's event id is logged: under the
// discloser's own id, or an id reserved for every party. It returns
// ErrNotFound for an id that is not logged (or not yet covered by the
// checkpoint) for that discloser; another party's event under the same
// id is not found.
func (l *Ledger) FindEvent(ctx context.Context, discloser, id string) (LoggedEvent, error) {
	if !events.ValidEventID(id) || !events.ValidPartyID(discloser) {
		return LoggedEvent{}, fmt.Errorf("event id is not a UUIDv7 or party id not a party id: %w", ErrNotFound)
	}
	e := LoggedEvent{Discloser: discloser}
	var err error
	e.Index, e.Hash, err = l.lookupEventKey(ctx, partyIDKey(tagEventID, discloser, id))
	if errors.Is(err, ErrNotFound) {
		e = LoggedEvent{Reserved: true}
		e.Index, e.Hash, err = l.lookupEventKey(ctx, eventIDKey(tagReservedID, id))
	}
	if err != nil {
		return LoggedEvent{}, err
	}
	if !l.logged(e.Index) {
		// Stored, not yet covered by a checkpoint: not committed yet.
		return LoggedEvent{}, fmt.Errorf("event is at leaf %d, beyond the checkpoint: %w", e.Index, ErrNotFound)
	}
	return e, nil
}

// LookupEvent returns the leaf index of discloser's logged event id (see
// FindEvent).
func (l *Ledger) LookupEvent(ctx context.Context, discloser, id string) (uint64, error) {
	e, err := l.FindEvent(ctx, discloser, id)
	return e.Index, err
}

// EventsWithID returns every logged event under id, of any discloser and
// reserved, in no particular order; none is not an error. It is for the
// questions that come with the envelope's hash (an anonymous status
// request): what a party may learn about its own ids alone goes through
// FindEvent.
func (l *Ledger) EventsWithID(ctx context.Context, id string) ([]LoggedEvent, error) {
	if !events.ValidEventID(id) {
		return nil, nil
	}
	var out []LoggedEvent
	var keys [][]byte
	prefix := eventIDKey(tagEventID, id)
	err := l.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys = append(keys, eventIDKey(tagReservedID, id))
	for _, k := range keys {
		idx, h, err := l.lookupEventKey(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !l.logged(idx) {
			continue
		}
		e := LoggedEvent{Index: idx, Hash: h}
		if k[0] == tagReservedID {
			e.Reserved = true
		} else {
			e.Discloser = string(k[len(prefix):])
		}
		out = append(out, e)
	}
	return out, nil
}

// Rejected returns the rejection last recorded for party's event id.
func (l *Ledger) Rejected(ctx context.Context, party, id string) (*Rejection, error) {
	if !events.ValidEventID(id) {
		return nil, fmt.Errorf("event id is not a UUIDv7: %w", ErrNotFound)
	}
	v, err := l.store.Get(ctx, partyIDKey(tagRejection, party, id))
	if err != nil {
		return nil, err
	}
	return decodeRejection(v)
}

// RejectionsOf returns the rejection records of id on every party's
// subject (for a status request that comes with the envelope's hash).
func (l *Ledger) RejectionsOf(ctx context.Context, id string) ([]*Rejection, error) {
	if !events.ValidEventID(id) {
		return nil, nil
	}
	var out []*Rejection
	prefix := eventIDKey(tagRejection, id)
	err := l.store.Scan(ctx, prefix, prefixEnd(prefix), func(_, v []byte) error {
		r, err := decodeRejection(v)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func decodeRejection(v []byte) (*Rejection, error) {
	var r Rejection
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("rejection record: %w", errors.Join(err, ErrCorrupt))
	}
	return &r, nil
}

// Findings returns the covenant findings stored for leaf index.
func (l *Ledger) Findings(ctx context.Context, index uint64) ([]events.Finding, error) {
	v, err := l.store.Get(ctx, u64Key(tagFindings, index))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fs []events.Finding
	if err := json.Unmarshal(v, &fs); err != nil {
		return nil, fmt.Errorf("findings of leaf %d: %w", index, errors.Join(err, ErrCorrupt))
	}
	return fs, nil
}

// BySubject returns the leaf indices of the disclosures about a pseudonym
// (64 hex characters), in log order.
func (l *Ledger) BySubject(ctx context.Context, pseudonym string) ([]uint64, error) {
	p, err := decodeHex32(pseudonym)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: %w", err)
	}
	prefix := append([]byte{tagSubject}, p...)
	var out []uint64
	err = l.store.Scan(ctx, prefix, prefixEnd(prefix), func(k, _ []byte) error {
		if idx := binary.BigEndian.Uint64(k[len(prefix):]); l.logged(idx) {
			out = append(out, idx)
		}
		return nil
	})
	return out, err
}

// InclusionProof returns the proof that leaf index is in the tree of size.
func (l *Ledger) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if h := l.head.Load(); h == nil || size > h.Size || index >= size {
		return nil, fmt.Errorf("no inclusion proof for index %d in a tree of size %d: %w", index, size, ErrNotFound)
	}
	if l.cfg.Merkle != nil {
		// The backend's own proof, checked by it against its root, which
		// equals the ledger's at every signed size (merkle.go).
		p, err := l.cfg.Merkle.InclusionProof(ctx, index, size)
		if err != nil {
			return nil, fmt.Errorf("inclusion proof of leaf %d in tree %d from the Merkle backend: %w", index, size, err)
		}
		return p, nil
	}
	return l.localInclusionProof(ctx, index, size, nil)
}

// localInclusionProof builds an inclusion proof from the ledger's own
// tiles. A non-nil memo shares the node hashes between the proofs of one
// caller against one tree size (an inzage bundle's), whose upper nodes are
// mostly the same.
func (l *Ledger) localInclusionProof(ctx context.Context, index, size uint64, memo *proofMemo) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	return l.rehash(ctx, nodes, memo)
}

// ConsistencyProof returns the proof that the tree of size newSize extends
// the tree of size oldSize.
func (l *Ledger) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	if h := l.head.Load(); h == nil || newSize > h.Size || oldSize > newSize || oldSize == 0 {
		return nil, fmt.Errorf("no consistency proof from %d to %d: %w", oldSize, newSize, ErrNotFound)
	}
	if l.cfg.Merkle != nil {
		p, err := l.cfg.Merkle.ConsistencyProof(ctx, oldSize, newSize)
		if err != nil {
			return nil, fmt.Errorf("consistency proof from %d to %d from the Merkle backend: %w", oldSize, newSize, err)
		}
		return p, nil
	}
	nodes, err := proof.Consistency(oldSize, newSize)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return l.rehash(ctx, nodes, nil)
}

func (l *Ledger) rehash(ctx context.Context, nodes proof.Nodes, memo *proofMemo) ([][]byte, error) {
	size := l.head.Load().Size
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := memo.node(ctx, l, id, size)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	out, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("proof rehash: %w", err)
	}
	return out, nil
}

// Checkpoints calls fn for every kept checkpoint, oldest first.
func (l *Ledger) Checkpoints(ctx context.Context, fn func(seq uint64, note []byte) error) error {
	return l.store.Scan(ctx, []byte{tagCheckpoint}, []byte{tagCheckpoint + 1}, func(k, v []byte) error {
		return fn(binary.BigEndian.Uint64(k[1:]), v)
	})
}

// Committed returns a channel that is closed at the next commit. Callers
// waiting for an event re-check after it fires.
func (l *Ledger) Committed() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	return l.notify
}

func decodeHex32(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, errors.New("want 64 hex characters")
	}
	return b, nil
}

// proofNode returns the hash of the complete subtree node (level, index)
// of a tree of at least size leaves. A node inside a full tile comes from
// the cache of full tiles; any other from the stored tile row below it.
func (l *Ledger) proofNode(ctx context.Context, level uint, index, size uint64) ([]byte, error) {
	return l.proofNodeFrom(ctx, l, level, index, size)
}

// proofNodeFrom is proofNode reading tiles that are not full through tr.
func (l *Ledger) proofNodeFrom(ctx context.Context, tr TileReader, level uint, index, size uint64) ([]byte, error) {
	tileLevel := level / verifier.TileHeight
	r := level % verifier.TileHeight
	first := index << r
	tileIndex := first / verifier.TileWidth
	if (tileIndex+1)*verifier.TileWidth > size>>(verifier.TileHeight*tileLevel) {
		return nodeHash(ctx, tr, level, index)
	}
	nodes, err := l.fullTiles.get(ctx, l, int(tileLevel), tileIndex)
	if err != nil {
		return nil, err
	}
	h := nodes[tileNodeOffset[r]+int((first%verifier.TileWidth)>>r)]
	return append([]byte(nil), h[:]...), nil
}

// proofMemo remembers the node hashes read for the proofs of one caller,
// so that proofs against one tree size that share upper nodes (all of an
// inzage bundle's do) read each node, and each tile at the right edge, once.
// A nil *proofMemo remembers nothing. It is safe for concurrent use: the
// proofs of a bundle are built on several goroutines. Two of them may
// read the same node at once; both get the same hash.
type proofMemo struct {
	l  *Ledger // whose tiles it reads
	mu sync.Mutex
	// nodes are the hashes read so far. A proof node is a complete
	// subtree, whose hash never changes once the log has it, so entries
	// stay valid while the log grows.
	nodes map[compact.NodeID][]byte
	// partial are the tiles at the right edge read so far (the full ones
	// come from the ledger's cache of full tiles). A tile read later in
	// the same bundle may only have grown, which leaves the hashes of the
	// nodes asked for, all complete at the bundle's size, unchanged.
	partial map[tileID][]byte
}

// ReadTile implements TileReader for nodeHash, reading each tile once.
func (m *proofMemo) ReadTile(ctx context.Context, level int, index uint64) ([]byte, error) {
	id := tileID{level, index}
	m.mu.Lock()
	t, ok := m.partial[id]
	m.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := m.l.ReadTile(ctx, level, index)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.partial == nil {
		m.partial = map[tileID][]byte{}
	}
	m.partial[id] = t
	m.mu.Unlock()
	return t, nil
}

// node returns the hash of node id, from the memo when it was read before.
// The returned slice must not be modified: the proofs share it.
func (m *proofMemo) node(ctx context.Context, l *Ledger, id compact.NodeID, size uint64) ([]byte, error) {
	if m == nil {
		return l.proofNode(ctx, id.Level, id.Index, size)
	}
	m.mu.Lock()
	h, ok := m.nodes[id]
	m.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := l.proofNodeFrom(ctx, m, id.Level, id.Index, size)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.nodes == nil {
		m.nodes = map[compact.NodeID][]byte{}
	}
	m.nodes[id] = h
	m.mu.Unlock()
	return h, nil
}

// tileNodes holds every node of a full tile below the tile's own root:
// the 256 hashes of the tile, then the 128 nodes one level up, and so on
// to the 2 nodes just below the root.
type tileNodes [2*verifier.TileWidth - 2][sha256.Size]byte

// tileNodeOffset[r] is where the nodes of height r start in tileNodes.
var tileNodeOffset = func() (o [verifier.TileHeight]int) {
	for r := 1; r < verifier.TileHeight; r++ {
		o[r] = o[r-1] + verifier.TileWidth>>(r-1)
	}
	return o
}()

// fullTileCacheSize bounds the cache of full tiles: 4096 tiles of 16 KiB.
const fullTileCacheSize = 4096

// fullTileCache keeps the node hashes of recently used full tiles, so that
// the proofs of an inzage bundle (or of many clients) do not each read a
// tile and rehash up to 255 of its nodes. A full tile never changes (the
// log only grows and tombstones leave the tree alone), so a cached tile is
// never stale; partial tiles at the right edge are always read afresh. The
// zero value is ready to use; it is safe for concurrent use.
type fullTileCache struct {
	mu    sync.Mutex
	tiles map[tileID]*tileNodes
	ring  []tileID // insertion order; the oldest is evicted first
	next  int
}

func (c *fullTileCache) get(ctx context.Context, tr TileReader, level int, index uint64) (*tileNodes, error) {
	id := tileID{level, index}
	c.mu.Lock()
	n, ok := c.tiles[id]
	c.mu.Unlock()
	if ok {
		return n, nil
	}
	data, err := tr.ReadTile(ctx, level, index)
	if err != nil {
		return nil, err
	}
	if len(data) < verifier.TileWidth*sha256.Size {
		return nil, fmt.Errorf("tile %d/%d has %d hashes but the tree says it is full: %w", level, index, len(data)/sha256.Size, ErrCorrupt)
	}
	n = new(tileNodes)
	for i := range verifier.TileWidth {
		copy(n[i][:], data[i*sha256.Size:])
	}
	// RFC 6962 interior nodes, SHA-256(0x01 || left || right), without
	// an allocation per node.
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	for r := 1; r < verifier.TileHeight; r++ {
		below, at := tileNodeOffset[r-1], tileNodeOffset[r]
		for i := range verifier.TileWidth >> r {
			copy(buf[1:], n[below+2*i][:])
			copy(buf[1+sha256.Size:], n[below+2*i+1][:])
			n[at+i] = sha256.Sum256(buf[:])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tiles == nil {
		c.tiles = make(map[tileID]*tileNodes, fullTileCacheSize)
	}
	if _, ok := c.tiles[id]; !ok {
		if len(c.ring) < fullTileCacheSize {
			c.ring = append(c.ring, id)
		} else {
			delete(c.tiles, c.ring[c.next])
			c.ring[c.next] = id
			c.next = (c.next + 1) % fullTileCacheSize
		}
		c.tiles[id] = n
	}
	return n, nil
}
