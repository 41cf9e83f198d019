package tlogclient

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/spoor-ledger/spoor/internal/memtree"
	"github.com/spoor-ledger/spoor/verifier"
)

// tileServer serves a log built in memory with golang.org/x/mod/sumdb/tlog
// at the C2SP tlog-tiles paths, truncating the newest tile of each level for
// partial widths, as a Spoor server does.
type tileServer struct {
	t       testing.TB
	log     *memtree.MemTree
	records [][]byte

	mu         sync.Mutex
	checkpoint []byte
	// dropPartials makes partial tiles 404 once their full tile exists,
	// as C2SP allows a log to do.
	dropPartials bool
	// tamper flips a byte of the response at these paths.
	tamper map[string]bool
	// status forces a response status at these paths.
	status map[string]int
	// requests counts requests per path.
	requests map[string]int
}

func newTileServer(t testing.TB, l *testLog, size int) (*tileServer, *Client) {
	t.Helper()
	s := &tileServer{t: t, log: memtree.New(), tamper: map[string]bool{}, status: map[string]int{}, requests: map[string]int{}}
	for i := range size {
		rec := verifier.LeafRecord{Type: verifier.EntryDisclosure, BodyHash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))),
			IntegratedAt: time.UnixMilli(1767603600000 + int64(i)), CovenantIndex: 0}
		if i == 0 {
			rec.Type = verifier.EntryCovenant
		}
		b, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		s.records = append(s.records, b)
		s.log.Append(t, b)
	}
	cp, err := l.signer.Sign(l.signer.Origin(), uint64(size), s.log.Root(t, int64(size)))
	if err != nil {
		t.Fatal(err)
	}
	s.checkpoint = cp
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, &Client{URL: srv.URL + "/", HTTP: srv.Client(), Keys: l.keys}
}

func (s *tileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/")
	s.requests[p]++
	if code, ok := s.status[p]; ok {
		http.Error(w, "forced", code)
		return
	}
	body, ok := s.body(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if s.tamper[p] {
		body[len(body)-1] ^= 1
	}
	w.Write(body)
}

func (s *tileServer) body(p string) ([]byte, bool) {
	if p == "checkpoint" {
		return append([]byte(nil), s.checkpoint...), true
	}
	level, n, width, entries, err := verifier.ParseTilePath(p)
	if err != nil {
		return nil, false
	}
	if entries {
		level = 0
	}
	count := uint64(s.log.Size()) >> (verifier.TileHeight * level)
	start := n * verifier.TileWidth
	if start >= count {
		return nil, false
	}
	avail := min(uint64(verifier.TileWidth), count-start)
	if uint64(width) > avail || s.dropPartials && width < verifier.TileWidth && avail == verifier.TileWidth {
		return nil, false
	}
	if entries {
		var b []byte
		for _, rec := range s.records[start : start+uint64(width)] {
			b = verifier.AppendEntry(b, rec)
		}
		return b, true
	}
	b, err := s.log.TileData(tlog.Tile{H: verifier.TileHeight, L: level, N: int64(n), W: width})
	if err != nil {
		s.t.Errorf("ReadTileData: %v", err)
		return nil, false
	}
	return b, true
}

func (s *tileServer) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

func (s *tileServer) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// testLogSize has three tile levels and partial tiles at each.
const testLogSize = 256*256 + 300

func TestClientProofs(t *testing.T) {
	l := newTestLog(t, "spoor.example/client")
	s, c := newTileServer(t, l, testLogSize)
	ctx := t.Context()

	cp, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != testLogSize {
		t.Fatalf("checkpoint size %d", cp.Size)
	}
	tree := cp.Tree()
	h, err := tlog.TreeHash(tree.N, tlog.TileHashReader(tree, c.TileReader(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	if [32]byte(h) != cp.Hash {
		t.Fatalf("tree hash from tiles %x, checkpoint %x", h, cp.Hash)
	}

	for _, i := range []uint64{0, 1, 255, 256, 12345, 65535, 65536, testLogSize - 1} {
		p, err := c.ProveInclusion(ctx, i, tree)
		if err != nil {
			t.Fatalf("ProveInclusion(%d): %v", i, err)
		}
		if err := verifier.VerifyInclusion(i, cp.Size, verifier.LeafHash(s.records[i]), p, cp.Hash); err != nil {
			t.Errorf("leaf %d: %v", i, err)
		}
	}
	for _, m := range []uint64{0, 1, 255, 256, 257, 65536, 65537, testLogSize - 1, testLogSize} {
		p, err := c.ProveConsistency(ctx, m, tree)
		if err != nil {
			t.Fatalf("ProveConsistency(%d): %v", m, err)
		}
		if err := verifier.VerifyConsistency(m, cp.Size, s.log.Root(t, int64(m)), cp.Hash, p); err != nil {
			t.Errorf("size %d: %v", m, err)
		}
	}
	if _, err := c.ProveInclusion(ctx, testLogSize, tree); err == nil {
		t.Error("ProveInclusion past the tree succeeded")
	}
	if _, err := c.ProveConsistency(ctx, testLogSize+1, tree); err == nil {
		t.Error("ProveConsistency from a larger tree succeeded")
	}
}

func TestClientLeafRecords(t *testing.T) {
	l := newTestLog(t, "spoor.example/client")
	s, c := newTileServer(t, l, testLogSize)
	ctx := t.Context()
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree := cp.Tree()

	for _, r := range [][2]uint64{{0, 0}, {0, 1}, {250, 600}, {65530, testLogSize}, {testLogSize - 1, testLogSize}} {
		next := r[0]
		for leaf, err := range c.LeafRecords(ctx, tree, r[0], r[1]) {
			if err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			if leaf.Index != next || string(leaf.Data) != string(s.records[next]) {
				t.Fatalf("%v: got leaf %d, want %d", r, leaf.Index, next)
			}
			if want, _ := verifier.ParseLeafRecord(s.records[next]); !leafRecordsEqual(leaf.Record, want) {
				t.Fatalf("leaf %d: record %+v", next, leaf.Record)
			}
			next++
		}
		if next != r[1] {
			t.Errorf("%v: stopped at %d", r, next)
		}
	}

	// Stopping early stops fetching.
	before := s.requestCount()
	for range c.LeafRecords(ctx, tree, 0, testLogSize) {
		break
	}
	if n := s.requestCount() - before; n > 6 {
		t.Errorf("breaking after one leaf made %d requests", n)
	}

	for _, r := range [][2]uint64{{1, 0}, {0, testLogSize + 1}} {
		for _, err := range c.LeafRecords(ctx, tree, r[0], r[1]) {
			if err == nil {
				t.Errorf("%v: no error", r)
			}
		}
	}

	// An entry that does not match the tree is ErrProof.
	bundle := verifier.EntryBundlePath(1, verifier.TileWidth)
	s.set(func() { s.tamper[bundle] = true })
	var got error
	for _, err := range c.LeafRecords(ctx, tree, 200, 600) {
		if err != nil {
			got = err
		}
	}
	if !errors.Is(got, verifier.ErrProof) || !strings.Contains(got.Error(), bundle) {
		t.Errorf("tampered bundle: %v", got)
	}
}

// TestClientOlderTree reads proofs and leaves for an older checkpoint's tree
// from a log that has grown and dropped the partial tiles of that tree.
func TestClientOlderTree(t *testing.T) {
	l := newTestLog(t, "spoor.example/client")
	s, c := newTileServer(t, l, 1000)
	s.set(func() { s.dropPartials = true })
	ctx := t.Context()
	old := tlog.Tree{N: 300, Hash: tlog.Hash(s.log.Root(t, 300))}
	p, err := c.ProveInclusion(ctx, 299, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.VerifyInclusion(299, 300, verifier.LeafHash(s.records[299]), p, [32]byte(old.Hash)); err != nil {
		t.Error(err)
	}
	n := 0
	for leaf, err := range c.LeafRecords(ctx, old, 0, 300) {
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Index != uint64(n) {
			t.Fatalf("leaf %d, want %d", leaf.Index, n)
		}
		n++
	}
	if n != 300 {
		t.Errorf("read %d leaves of the old tree", n)
	}
	s.mu.Lock()
	partial, full := s.requests[verifier.TilePath(0, 1, 44)], s.requests[verifier.TilePath(0, 1, verifier.TileWidth)]
	s.mu.Unlock()
	if partial == 0 || full == 0 {
		t.Errorf("no fall back from the partial to the full tile: %v", s.requests)
	}
}

func TestClientErrors(t *testing.T) {
	l := newTestLog(t, "spoor.example/client")
	s, c := newTileServer(t, l, 600)
	ctx := t.Context()
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree := cp.Tree()

	_, err = c.Tile(ctx, 0, 1000, verifier.TileWidth)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/tile/0/x001/000") || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing tile: %v", err)
	}
	_, err = c.Entries(ctx, 5, 3)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/tile/entries/005") {
		t.Errorf("missing bundle: %v", err)
	}
	if _, err := c.Tile(ctx, 64, 0, 1); err == nil {
		t.Error("Tile at level 64 accepted")
	}
	if _, err := c.Entries(ctx, 0, 0); err == nil {
		t.Error("Entries of width 0 accepted")
	}
	if got, err := c.Entries(ctx, 2, 88); err != nil || len(got) != 88 {
		t.Errorf("newest bundle: %d entries, %v", len(got), err)
	}
	if got, err := c.Tile(ctx, 1, 0, 2); err != nil || len(got) != 64 {
		t.Errorf("level-1 tile: %d bytes, %v", len(got), err)
	}

	s.set(func() { s.status["tile/0/001"] = http.StatusInternalServerError })
	_, err = c.ProveInclusion(ctx, 300, tree)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/tile/0/001") ||
		!strings.Contains(err.Error(), "500") {
		t.Errorf("server error: %v", err)
	}
	s.set(func() { delete(s.status, "tile/0/001") })

	// A tile that does not match the checkpoint is refused by tlog.
	s.set(func() { s.tamper["tile/0/000"] = true })
	if _, err := c.ProveInclusion(ctx, 3, tree); err == nil {
		t.Error("proof from a tampered tile accepted")
	}
	s.set(func() { delete(s.tamper, "tile/0/000") })
	if _, err := c.ProveInclusion(ctx, 3, tree); err != nil {
		t.Errorf("after untampering: %v", err)
	}

	// A checkpoint with a bad signature or of another log is refused.
	s.set(func() { s.tamper["checkpoint"] = true })
	if _, err := c.Checkpoint(ctx); !errors.Is(err, verifier.ErrMalformedCheckpoint) && !errors.Is(err, verifier.ErrBadSignature) {
		t.Errorf("tampered checkpoint: %v", err)
	}
	other := newTestLog(t, "spoor.example/other")
	otherCP, err := other.signer.Sign("spoor.example/other", 600, cp.Hash)
	if err != nil {
		t.Fatal(err)
	}
	s.set(func() { s.tamper["checkpoint"] = false; s.checkpoint = otherCP })
	if _, err := c.Checkpoint(ctx); !errors.Is(err, verifier.ErrWrongOrigin) {
		t.Errorf("checkpoint of another log: %v", err)
	}
	if _, err := (&Client{URL: c.URL, HTTP: c.HTTP}).Checkpoint(ctx); err == nil {
		t.Error("Checkpoint without pinned keys succeeded")
	}

	// tlog asking for a tile of another height is refused, not fetched.
	if _, err := c.TileReader(ctx).ReadTiles([]tlog.Tile{{H: 2, L: 0, N: 0, W: 4}}); err == nil {
		t.Error("ReadTiles accepted a tile of height 2")
	}
	if _, err := c.TileReader(ctx).ReadTiles([]tlog.Tile{{H: 8, L: -1, N: 0, W: 4}}); err == nil {
		t.Error("ReadTiles accepted a data tile")
	}

	// A canceled context stops requests.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Tile(canceled, 0, 0, verifier.TileWidth); err == nil {
		t.Error("request with a canceled context succeeded")
	}
}
