// Package tlogclient reads a Spoor log (any C2SP tlog-tiles log of height
// 8) over HTTP: the signed checkpoint, hash tiles and entry bundles, and from
// them inclusion and consistency proofs and authenticated leaf records. The
// monitor, the FG's audit over HTTP and `spoor verify --consistency` use it.
//
// Data flows: GET checkpoint --verifier.OpenCheckpoint (pinned keys)-->
// a tree; GET tiles --tlog (x/mod) checked against that tree--> proofs;
// GET entry bundles --verifier.LeafHash against the checked tiles--> leaf
// records. Nothing read is trusted before it is checked.
//
// It lives apart from package verifier so that the library a parent's tool
// or a browser build imports carries no HTTP client (verifier/arch_test.go
// checks that verifier does not depend on net/http).
package tlogclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/verifier"
)

// ErrNotFound is returned (wrapped, naming the path) when the server answers
// 404 Not Found.
var ErrNotFound = errors.New("tlogclient: not found")

// Response size limits: a signed checkpoint, a full hash tile, a full
// entry bundle of maximal entries.
const (
	maxTileSize   = verifier.TileWidth * 32
	maxBundleSize = verifier.TileWidth * (2 + verifier.MaxEntrySize)
)

// Client reads a Spoor log (or any C2SP tlog-tiles log of height 8) over
// HTTP. It trusts nothing it reads until it is checked: Checkpoint verifies
// the signatures against Keys, and the proofs and leaf records it returns
// are authenticated against a tree taken from a verified checkpoint. Tile
// and Entries return raw, unchecked bytes.
//
// A Client is safe for concurrent use once its fields are set.
type Client struct {
	// URL is the log's base URL; paths such as "checkpoint" and
	// "tile/0/000" are resolved below it.
	URL string
	// HTTP is the client used for requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Keys are the pinned log and cosigner keys.
	Keys *verifier.LogKeys
}

// get fetches a path below c.URL and returns its body, refusing bodies
// larger than limit. Errors name the path and the HTTP status.
func (c *Client) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+"/"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("tlogclient: GET /%s: %w", path, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tlogclient: GET /%s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: GET /%s: %s", ErrNotFound, path, resp.Status)
		}
		return nil, fmt.Errorf("tlogclient: GET /%s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("tlogclient: GET /%s: reading body: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("tlogclient: GET /%s: body exceeds %d bytes", path, limit)
	}
	return b, nil
}

// Checkpoint fetches the log's current checkpoint and opens it with c.Keys.
func (c *Client) Checkpoint(ctx context.Context) (*verifier.Checkpoint, error) {
	if c.Keys == nil {
		return nil, errors.New("tlogclient: Client has no pinned keys")
	}
	b, err := c.get(ctx, "checkpoint", verifier.MaxCheckpointSize)
	if err != nil {
		return nil, err
	}
	cp, err := verifier.OpenCheckpoint(b, c.Keys)
	if err != nil {
		return nil, fmt.Errorf("GET /checkpoint: %w", err)
	}
	return cp, nil
}

// Tile fetches the hash tile at level (0..63) and index n, of width 1..256,
// and checks only its length. When a partial tile is not found it falls
// back to the full tile and truncates it, as C2SP tlog-tiles allows logs to
// drop partial tiles once the full one exists.
func (c *Client) Tile(ctx context.Context, level int, n uint64, width int) ([]byte, error) {
	if level < 0 || level > verifier.MaxTileLevel || width < 1 || width > verifier.TileWidth {
		return nil, fmt.Errorf("tlogclient: no tile at level %d of width %d", level, width)
	}
	path := verifier.TilePath(level, n, width)
	b, err := c.get(ctx, path, maxTileSize)
	if errors.Is(err, ErrNotFound) && width < verifier.TileWidth {
		path = verifier.TilePath(level, n, verifier.TileWidth)
		if full, ferr := c.get(ctx, path, maxTileSize); ferr == nil {
			b, err = full, nil
			if len(b) == maxTileSize {
				b = b[:width*32]
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if len(b) != width*32 {
		return nil, fmt.Errorf("tlogclient: GET /%s: %d bytes, want %d", path, len(b), width*32)
	}
	return b, nil
}

// Entries fetches entry bundle n of width 1..256 and splits it into its
// entries (leaf records, unchecked). A missing partial bundle falls back to
// the full one, as Tile does.
func (c *Client) Entries(ctx context.Context, n uint64, width int) ([][]byte, error) {
	if width < 1 || width > verifier.TileWidth {
		return nil, fmt.Errorf("tlogclient: no entry bundle of width %d", width)
	}
	path := verifier.EntryBundlePath(n, width)
	b, err := c.get(ctx, path, maxBundleSize)
	truncate := false
	if errors.Is(err, ErrNotFound) && width < verifier.TileWidth {
		path = verifier.EntryBundlePath(n, verifier.TileWidth)
		if full, ferr := c.get(ctx, path, maxBundleSize); ferr == nil {
			b, err, truncate = full, nil, true
		}
	}
	if err != nil {
		return nil, err
	}
	entries, err := verifier.ParseEntryBundle(b)
	if err != nil {
		return nil, fmt.Errorf("GET /%s: %w", path, err)
	}
	if truncate && len(entries) == verifier.TileWidth {
		entries = entries[:width]
	}
	if len(entries) != width {
		return nil, fmt.Errorf("%w: GET /%s: %d entries, want %d", verifier.ErrMalformedEntryBundle, path, len(entries), width)
	}
	return entries, nil
}

// TileReader returns an adapter through which golang.org/x/mod/sumdb/tlog
// reads this log's hash tiles, so that tlog.TileHashReader(tree, reader)
// serves hashes authenticated against tree. tlog names tiles with an extra
// height element (tile/8/L/N); the adapter maps them to C2SP paths. Its
// requests use ctx, since tlog's interface carries none. Tiles that tlog
// has authenticated are kept in a small memory cache for the adapter's
// lifetime; tlog re-authenticates cached tiles on every use.
func (c *Client) TileReader(ctx context.Context) tlog.TileReader {
	return &tileReader{ctx: ctx, client: c, cache: make(map[tlog.Tile][]byte)}
}

// maxCachedTiles bounds the adapter's cache (8 KiB per full tile).
const maxCachedTiles = 1024

type tileReader struct {
	ctx    context.Context
	client *Client

	mu    sync.Mutex
	cache map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return verifier.TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != verifier.TileHeight || t.L < 0 || t.N < 0 {
			return nil, fmt.Errorf("tlogclient: tlog asked for tile %s, which a height-%d log does not have", t.Path(), verifier.TileHeight)
		}
		r.mu.Lock()
		b, ok := r.cache[t]
		r.mu.Unlock()
		if ok {
			data[i] = b
			continue
		}
		b, err := r.client.Tile(r.ctx, t.L, uint64(t.N), t.W)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	return data, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, t := range tiles {
		if len(r.cache) >= maxCachedTiles {
			clear(r.cache)
		}
		r.cache[t] = data[i]
	}
}

// ProveInclusion computes, from the log's tiles, the inclusion proof of
// leaf index in tree (take tree from a verified Checkpoint). Every hash in
// it is authenticated against tree.Hash, so the result verifies with
// VerifyInclusion for the right leaf hash.
func (c *Client) ProveInclusion(ctx context.Context, index uint64, tree tlog.Tree) ([][]byte, error) {
	if tree.N <= 0 || index >= uint64(tree.N) {
		return nil, fmt.Errorf("tlogclient: leaf %d is not in a tree of size %d", index, tree.N)
	}
	p, err := tlog.ProveRecord(tree.N, int64(index), tlog.TileHashReader(tree, c.TileReader(ctx)))
	if err != nil {
		return nil, fmt.Errorf("couldn't prove inclusion of leaf %d in tree of size %d: %w", index, tree.N, err)
	}
	return hashesToBytes(p), nil
}

// ProveConsistency computes, from the log's tiles, the consistency proof
// from the tree of size oldSize to tree (take it from a verified
// Checkpoint). It is empty when oldSize is 0 or tree.N.
func (c *Client) ProveConsistency(ctx context.Context, oldSize uint64, tree tlog.Tree) ([][]byte, error) {
	if tree.N < 0 || oldSize > uint64(tree.N) {
		return nil, fmt.Errorf("tlogclient: tree size %d is larger than %d", oldSize, tree.N)
	}
	if oldSize == 0 || oldSize == uint64(tree.N) {
		return [][]byte{}, nil
	}
	p, err := tlog.ProveTree(tree.N, int64(oldSize), tlog.TileHashReader(tree, c.TileReader(ctx)))
	if err != nil {
		return nil, fmt.Errorf("couldn't prove consistency of tree size %d with %d: %w", oldSize, tree.N, err)
	}
	return hashesToBytes(p), nil
}

func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// Leaf is one leaf of the log as LeafRecords yields it.
type Leaf struct {
	// Index is the leaf's index in the log.
	Index uint64
	// Data is the leaf record's bytes, whose LeafHash is the Merkle leaf.
	Data []byte
	// Record is Data parsed.
	Record *verifier.LeafRecord
}

// LeafRecords reads the leaves [from, to) of tree (take it from a verified
// Checkpoint) from the entry bundles, one bundle per request, and checks
// each leaf record's hash against the level-0 hashes authenticated against
// tree.Hash (a mismatch is ErrProof) before it parses and yields it.
// Iteration stops after the first error, which is yielded with a zero
// Leaf.
func (c *Client) LeafRecords(ctx context.Context, tree tlog.Tree, from, to uint64) iter.Seq2[Leaf, error] {
	return func(yield func(Leaf, error) bool) {
		if tree.N < 0 || from > to || to > uint64(tree.N) {
			yield(Leaf{}, fmt.Errorf("tlogclient: leaves [%d, %d) are not in a tree of size %d", from, to, tree.N))
			return
		}
		hr := tlog.TileHashReader(tree, c.TileReader(ctx))
		size := uint64(tree.N)
		for start := from; start < to; {
			bundle := start / verifier.TileWidth
			first := bundle * verifier.TileWidth
			width := min(uint64(verifier.TileWidth), size-first)
			end := min(to, first+width)
			entries, err := c.Entries(ctx, bundle, int(width))
			if err != nil {
				yield(Leaf{}, err)
				return
			}
			indexes := make([]int64, 0, end-start)
			for i := start; i < end; i++ {
				indexes = append(indexes, tlog.StoredHashIndex(0, int64(i)))
			}
			hashes, err := hr.ReadHashes(indexes)
			if err != nil {
				yield(Leaf{}, fmt.Errorf("couldn't read leaf hashes %d..%d of tree size %d: %w", start, end-1, size, err))
				return
			}
			for i := start; i < end; i++ {
				data := entries[i-first]
				if verifier.LeafHash(data) != hashes[i-start] {
					yield(Leaf{}, fmt.Errorf("%w: entry %d in /%s does not match the tree of size %d",
						verifier.ErrProof, i, verifier.EntryBundlePath(bundle, int(width)), size))
					return
				}
				rec, err := verifier.ParseLeafRecord(data)
				if err != nil {
					yield(Leaf{}, fmt.Errorf("leaf %d: %w", i, err))
					return
				}
				if !yield(Leaf{Index: i, Data: data, Record: rec}, nil) {
					return
				}
			}
			start = end
		}
	}
}
