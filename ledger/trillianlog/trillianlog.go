// Package trillianlog keeps a copy of the ledger's Merkle log in a Trillian
// PREORDERED_LOG tree, reached over gRPC, so that operators who already
// trust Trillian (and the database behind it) hold a second, independently
// computed tree, and so that the ledger signs no checkpoint that Trillian
// does not agree with.
//
// Data flow, per batch, in the order the sequencer follows:
//
//  1. the batch's leaf records are durably pending in the ledger's own store
//     (so that after a crash the very same records are sent again);
//  2. Integrate sends them with AddSequencedLeaves at the ledger's own
//     contiguous leaf indices, in chunks;
//  3. Integrate polls GetLatestSignedLogRoot until Trillian's signer has
//     integrated them (it does so every --sequencer_interval), decodes the
//     LogRootV1 (unsigned in Trillian 1.8) and returns Trillian's root at
//     exactly the batch's end;
//  4. the sequencer compares that root with the root it computed itself; a
//     mismatch halts it;
//  5. only then does the sequencer sign the checkpoint and ack the batch.
//
// A leaf that Trillian refuses as already present counts as integrated only
// when GetLeavesByRange shows the same leaf hash at that index; otherwise
// Integrate returns ErrDiverged and the sequencer must halt.
//
// Reads: InclusionProof and ConsistencyProof come from GetInclusionProof
// and GetConsistencyProof and are checked, before they are returned,
// against Trillian's own roots with github.com/transparency-dev/merkle/proof
// and its RFC 6962 hasher, which is what Trillian itself uses.
//
// Only Trillian's API packages are imported (github.com/google/trillian and
// github.com/google/trillian/types): its server and storage packages pull
// in cloud clients that Spoor has no use for.
package trillianlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Sentinel errors, wrapped with detail. ErrDiverged and ErrBadProof are
// fatal for the sequencer: Trillian and the ledger no longer hold the same
// tree, or Trillian contradicts itself.
var (
	// ErrDiverged means Trillian holds a different leaf at one of the
	// ledger's indices.
	ErrDiverged = errors.New("trillianlog: Trillian holds a different leaf")
	// ErrBadProof means a proof Trillian served does not verify against
	// Trillian's own roots.
	ErrBadProof = errors.New("trillianlog: Trillian's proof does not verify")
	// ErrNotCovered means the leaf index or tree size asked for is beyond
	// the tree Trillian has integrated.
	ErrNotCovered = errors.New("trillianlog: beyond Trillian's tree")
	// ErrGap means Integrate was asked to add leaves after a gap: Trillian
	// integrates only a contiguous run, so they would never be integrated.
	// The caller re-sends its records from Size onwards first.
	ErrGap = errors.New("trillianlog: leaves would leave a gap in Trillian's tree")
	// ErrWrongTree means the tree id does not name an active, undeleted
	// PREORDERED_LOG tree.
	ErrWrongTree = errors.New("trillianlog: not an active PREORDERED_LOG tree")
)

// Options configures a Backend. The zero value is a sane default for a
// Trillian on loopback or a private network.
type Options struct {
	// ChunkSize is the most leaves sent in one AddSequencedLeaves request;
	// 0 means 1000.
	ChunkSize int
	// IntegrateTimeout bounds one Integrate call, including waiting for
	// Trillian's signer and riding out a restarting log server; 0 means 2
	// minutes. On expiry the error wraps context.DeadlineExceeded.
	IntegrateTimeout time.Duration
	// ReadTimeout bounds one Size, Root, InclusionProof or
	// ConsistencyProof call, retries included; 0 means 10 seconds.
	ReadTimeout time.Duration
	// MinPoll and MaxPoll bound the delay between polls of Trillian's
	// root, and between retries of a call that failed as unavailable; the
	// delay grows from MinPoll to MaxPoll. 0 means 10ms and 250ms.
	MinPoll, MaxPoll time.Duration
	// DialOptions replace the default transport (plaintext, as a
	// trillian_log_server without --tls_cert_file serves); pass
	// grpc.WithTransportCredentials with TLS credentials otherwise.
	DialOptions []grpc.DialOption
	// Logger receives retries and slow integrations; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1000
	}
	if o.IntegrateTimeout <= 0 {
		o.IntegrateTimeout = 2 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.MinPoll <= 0 {
		o.MinPoll = 10 * time.Millisecond
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = 250 * time.Millisecond
	}
	if o.MaxPoll < o.MinPoll {
		o.MaxPoll = o.MinPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// hasher is RFC 6962 with SHA-256: the hasher Trillian 1.8 uses for every
// log tree, and the ledger's.
var hasher = rfc6962.DefaultHasher

// maxRoots bounds the cache of verified roots; when it is full the cache is
// emptied and refilled on demand.
const maxRoots = 1 << 14

// Backend is the ledger's Merkle log mirrored in one Trillian
// PREORDERED_LOG tree. Its methods are safe for concurrent use, but
// Integrate calls for one tree must be made in index order, one at a time
// (the ledger's one sequencer does so): a call refuses to add leaves beyond
// what Trillian has integrated (ErrGap).
type Backend struct {
	conn    *grpc.ClientConn
	client  trillian.TrillianLogClient
	treeID  int64
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	roots map[uint64][32]byte // roots verified against Trillian, by tree size
}

// Dial connects to the Trillian log server at addr (host:port) and checks,
// within opts.ReadTimeout, that treeID names an active PREORDERED_LOG tree
// whose root can be read. The connection re-establishes itself when the
// server restarts; Close releases it.
func Dial(ctx context.Context, addr string, treeID int64, opts Options) (*Backend, error) {
	opts = opts.withDefaults()
	dialOpts := append([]grpc.DialOption(nil), opts.DialOptions...)
	if len(dialOpts) == 0 {
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	// Wait for a reconnecting server instead of failing at once; every
	// call is bounded by a deadline.
	dialOpts = append(dialOpts, grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up a gRPC client for Trillian at %s: %w", addr, err)
	}
	b := &Backend{
		conn:    conn,
		client:  trillian.NewTrillianLogClient(conn),
		treeID:  treeID,
		opts:    opts,
		log:     opts.Logger.With("trillian_tree_id", treeID),
		metrics: newMetrics(),
		roots:   map[uint64][32]byte{},
	}
	if err := b.checkTree(ctx, addr); err != nil {
		conn.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backend) checkTree(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReadTimeout)
	defer cancel()
	admin := trillian.NewTrillianAdminClient(b.conn)
	var tree *trillian.Tree
	err := b.call(ctx, "GetTree", func(ctx context.Context) (err error) {
		tree, err = admin.GetTree(ctx, &trillian.GetTreeRequest{TreeId: b.treeID})
		return err
	})
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%w: Trillian at %s has no tree %d", ErrWrongTree, addr, b.treeID)
	}
	if err != nil {
		return fmt.Errorf("couldn't read tree %d from Trillian at %s: %w", b.treeID, addr, err)
	}
	if tree.GetTreeType() != trillian.TreeType_PREORDERED_LOG || tree.GetTreeState() != trillian.TreeState_ACTIVE || tree.GetDeleted() {
		return fmt.Errorf("%w: tree %d is %s, %s, deleted=%t", ErrWrongTree, b.treeID,
			tree.GetTreeType(), tree.GetTreeState(), tree.GetDeleted())
	}
	root, err := b.latest(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the root of tree %d (was it initialised, as createtree does?): %w", b.treeID, err)
	}
	b.metrics.treeSize.Set(float64(root.TreeSize))
	return nil
}

// Close releases the connection.
func (b *Backend) Close() error { return b.conn.Close() }

// TreeID returns the Trillian tree the backend writes to.
func (b *Backend) TreeID() int64 { return b.treeID }

// Integrate adds the leaf records leaves at indices first, first+1, ... to
// Trillian's tree, waits until Trillian has integrated them, and returns
// Trillian's root of the tree of size first+len(leaves). The caller
// compares it with its own root before it signs anything.
//
// It is idempotent: a leaf Trillian already holds at its index counts as
// done when its leaf hash is the same (ErrDiverged otherwise), so a batch
// re-sent after a crash or a failed call succeeds, and it still returns the
// root at exactly that size when Trillian has since grown further. leaves
// must be non-empty byte strings (Trillian refuses empty values); first
// must not exceed Trillian's integrated size (ErrGap). Errors that leave
// the outcome open (a timeout, Trillian unavailable) can be retried with
// the same arguments.
func (b *Backend) Integrate(ctx context.Context, first uint64, leaves [][]byte) ([32]byte, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, b.opts.IntegrateTimeout)
	defer cancel()
	end := first + uint64(len(leaves))
	if end < first || end > math.MaxInt64 {
		return [32]byte{}, fmt.Errorf("trillianlog: leaves %d..+%d overflow Trillian's int64 indices", first, len(leaves))
	}
	if len(leaves) == 0 {
		return b.root(ctx, first)
	}
	hashes := make([][32]byte, len(leaves))
	for i, l := range leaves {
		if len(l) == 0 {
			return [32]byte{}, fmt.Errorf("trillianlog: leaf %d is empty, which Trillian refuses", first+uint64(i))
		}
		hashes[i] = leafHash(l)
	}

	cur, err := b.latest(ctx)
	if err != nil {
		return [32]byte{}, err
	}
	if cur.TreeSize < first {
		return [32]byte{}, fmt.Errorf("%w: Trillian has integrated %d leaves, asked to add from %d", ErrGap, cur.TreeSize, first)
	}

	var refused []uint64
	for off := 0; off < len(leaves); off += b.opts.ChunkSize {
		hi := min(off+b.opts.ChunkSize, len(leaves))
		r, err := b.addChunk(ctx, first+uint64(off), leaves[off:hi], hashes[off:hi])
		if err != nil {
			return [32]byte{}, err
		}
		refused = append(refused, r...)
	}
	b.metrics.leaves.WithLabelValues("added").Add(float64(len(leaves) - len(refused)))
	b.metrics.leaves.WithLabelValues("present").Add(float64(len(refused)))

	root, err := b.waitFor(ctx, end)
	if err != nil {
		return [32]byte{}, err
	}
	// Trillian only lists leaves below its integrated size, so the refused
	// ones are checked now that it covers them. A refused leaf that differs
	// has been integrated in place of ours: Trillian's root will differ too,
	// and the sequencer must not sign.
	if err := b.checkPresent(ctx, first, refused, hashes); err != nil {
		return [32]byte{}, err
	}
	var out [32]byte
	if root.TreeSize == end {
		copy(out[:], root.RootHash)
	} else {
		// Trillian is further along: a retry after a crash, or a
		// re-sent older batch.
		if out, err = b.rootBelow(ctx, end, hashes[len(hashes)-1], root); err != nil {
			return [32]byte{}, err
		}
	}
	b.remember(end, out)
	b.metrics.integrateSeconds.Observe(time.Since(start).Seconds())
	return out, nil
}

// addChunk sends one AddSequencedLeaves request and returns the indices
// Trillian refused as already present (to be checked once integrated).
func (b *Backend) addChunk(ctx context.Context, first uint64, leaves [][]byte, hashes [][32]byte) ([]uint64, error) {
	req := &trillian.AddSequencedLeavesRequest{LogId: b.treeID, Leaves: make([]*trillian.LogLeaf, len(leaves))}
	for i := range leaves {
		idx := first + uint64(i)
		id := identityHash(idx, hashes[i])
		req.Leaves[i] = &trillian.LogLeaf{
			LeafIndex:        int64(idx),
			LeafValue:        leaves[i],
			MerkleLeafHash:   append([]byte(nil), hashes[i][:]...),
			LeafIdentityHash: id[:],
		}
	}
	var resp *trillian.AddSequencedLeavesResponse
	err := b.call(ctx, "AddSequencedLeaves", func(ctx context.Context) (err error) {
		resp, err = b.client.AddSequencedLeaves(ctx, req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't add leaves %d..%d to Trillian: %w", first, first+uint64(len(leaves))-1, err)
	}
	if len(resp.GetResults()) != len(leaves) {
		return nil, fmt.Errorf("trillianlog: AddSequencedLeaves answered %d results for %d leaves", len(resp.GetResults()), len(leaves))
	}
	var refused []uint64
	for i, r := range resp.GetResults() {
		// OK: stored now. ALREADY_EXISTS (MySQL storage) or
		// FAILED_PRECONDITION (PostgreSQL storage): an entry with this
		// index or identity hash was there already; which leaf it is,
		// GetLeavesByRange tells.
		switch c := codes.Code(r.GetStatus().GetCode()); c {
		case codes.OK:
		case codes.AlreadyExists, codes.FailedPrecondition:
			refused = append(refused, first+uint64(i))
		default:
			return nil, fmt.Errorf("trillianlog: Trillian refused leaf %d: %s: %s", first+uint64(i), c, r.GetStatus().GetMessage())
		}
	}
	return refused, nil
}

// checkPresent checks that Trillian holds, at each refused index, the leaf
// whose hash the caller sent.
func (b *Backend) checkPresent(ctx context.Context, first uint64, refused []uint64, hashes [][32]byte) error {
	for i := 0; i < len(refused); {
		// One GetLeavesByRange per contiguous run of refused indices.
		j := i + 1
		for j < len(refused) && refused[j] == refused[j-1]+1 {
			j++
		}
		got, err := b.leafHashes(ctx, refused[i], uint64(j-i))
		if err != nil {
			return err
		}
		for k, h := range got {
			idx := refused[i] + uint64(k)
			if h != hashes[idx-first] {
				return fmt.Errorf("%w: at index %d Trillian has leaf hash %x, the ledger %x", ErrDiverged, idx, h, hashes[idx-first])
			}
		}
		i = j
	}
	return nil
}

// leafHashes returns the leaf hashes of count leaves from start, each
// recomputed from the leaf value Trillian returns and checked against the
// hash Trillian stored with it.
func (b *Backend) leafHashes(ctx context.Context, start, count uint64) ([][32]byte, error) {
	out := make([][32]byte, 0, count)
	for uint64(len(out)) < count {
		next := start + uint64(len(out))
		var resp *trillian.GetLeavesByRangeResponse
		err := b.call(ctx, "GetLeavesByRange", func(ctx context.Context) (err error) {
			resp, err = b.client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{
				LogId: b.treeID, StartIndex: int64(next), Count: int64(count - uint64(len(out)))})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("couldn't read leaves from %d: %w", next, err)
		}
		if len(resp.GetLeaves()) == 0 {
			return nil, fmt.Errorf("%w: Trillian has no leaf at index %d", ErrNotCovered, next)
		}
		for _, l := range resp.GetLeaves() {
			idx := start + uint64(len(out))
			if uint64(l.GetLeafIndex()) != idx {
				return nil, fmt.Errorf("%w: asked for leaf %d, Trillian returned leaf %d", ErrDiverged, idx, l.GetLeafIndex())
			}
			h := leafHash(l.GetLeafValue())
			if !bytes.Equal(l.GetMerkleLeafHash(), h[:]) {
				return nil, fmt.Errorf("%w: leaf %d: stored leaf hash %x is not the hash of its value %x",
					ErrDiverged, idx, l.GetMerkleLeafHash(), h)
			}
			out = append(out, h)
			if uint64(len(out)) == count {
				break
			}
		}
	}
	return out, nil
}

// waitFor polls Trillian's latest root until it covers size.
func (b *Backend) waitFor(ctx context.Context, size uint64) (*types.LogRootV1, error) {
	delay := b.opts.MinPoll
	for {
		root, err := b.latest(ctx)
		if err != nil {
			return nil, err
		}
		if root.TreeSize >= size {
			return root, nil
		}
		if !sleep(ctx, delay) {
			return nil, fmt.Errorf("trillianlog: Trillian had integrated %d of %d leaves when time ran out: %w", root.TreeSize, size, ctx.Err())
		}
		delay = min(delay*3/2, b.opts.MaxPoll)
	}
}

// latest reads and decodes Trillian's latest log root. In Trillian 1.8 the
// LogRootV1 carries no signature: the ledger's own checkpoint signature is
// what clients verify.
func (b *Backend) latest(ctx context.Context) (*types.LogRootV1, error) {
	var resp *trillian.GetLatestSignedLogRootResponse
	err := b.call(ctx, "GetLatestSignedLogRoot", func(ctx context.Context) (err error) {
		resp, err = b.client.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: b.treeID})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read Trillian's latest root: %w", err)
	}
	root, err := decodeRoot(resp.GetSignedLogRoot())
	if err != nil {
		return nil, err
	}
	b.metrics.treeSize.Set(float64(root.TreeSize))
	return root, nil
}

func decodeRoot(slr *trillian.SignedLogRoot) (*types.LogRootV1, error) {
	if slr == nil {
		return nil, errors.New("trillianlog: Trillian answered without a log root")
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(slr.GetLogRoot()); err != nil {
		return nil, fmt.Errorf("trillianlog: couldn't decode Trillian's LogRootV1: %w", err)
	}
	if len(root.RootHash) != sha256.Size {
		return nil, fmt.Errorf("trillianlog: Trillian's root hash is %d bytes, want %d", len(root.RootHash), sha256.Size)
	}
	if root.TreeSize > math.MaxInt64 {
		return nil, fmt.Errorf("trillianlog: Trillian's tree size %d is out of range", root.TreeSize)
	}
	return &root, nil
}

// Size returns the number of leaves Trillian has integrated.
func (b *Backend) Size(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReadTimeout)
	defer cancel()
	root, err := b.latest(ctx)
	if err != nil {
		return 0, err
	}
	return root.TreeSize, nil
}

// Root returns the root of Trillian's tree at size, which may be below
// Trillian's newest size; ErrNotCovered if it is beyond it.
func (b *Backend) Root(ctx context.Context, size uint64) ([32]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReadTimeout)
	defer cancel()
	return b.root(ctx, size)
}

func (b *Backend) root(ctx context.Context, size uint64) ([32]byte, error) {
	if size == 0 {
		return sha256.Sum256(nil), nil
	}
	if r, ok := b.cached(size); ok {
		return r, nil
	}
	latest, err := b.latest(ctx)
	if err != nil {
		return [32]byte{}, err
	}
	if latest.TreeSize < size {
		return [32]byte{}, fmt.Errorf("%w: tree size %d asked, Trillian has %d", ErrNotCovered, size, latest.TreeSize)
	}
	var out [32]byte
	if latest.TreeSize == size {
		copy(out[:], latest.RootHash)
	} else {
		last, err := b.leafHashes(ctx, size-1, 1)
		if err != nil {
			return [32]byte{}, err
		}
		if out, err = b.rootBelow(ctx, size, last[0], latest); err != nil {
			return [32]byte{}, err
		}
	}
	b.remember(size, out)
	return out, nil
}

// rootBelow computes the root of the tree of size from Trillian's nodes and
// proves it against latest, a newer root of Trillian's.
//
// Trillian's API only hands out its newest root. The inclusion proof of the
// last leaf of a tree holds exactly the roots of the complete subtrees to
// its left, so folding the leaf hash with it gives that tree's root; the
// consistency proof from size to latest.TreeSize then binds that root to
// Trillian's newest root (a different older root would not verify). Reading
// every leaf and recomputing the tree would prove the same at a cost linear
// in the tree size; this costs two proofs of logarithmic size.
func (b *Backend) rootBelow(ctx context.Context, size uint64, lastLeaf [32]byte, latest *types.LogRootV1) ([32]byte, error) {
	path, err := b.inclusionPath(ctx, size-1, size)
	if err != nil {
		return [32]byte{}, err
	}
	r, err := proof.RootFromInclusionProof(hasher, size-1, size, lastLeaf[:], path)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: inclusion path of leaf %d in tree %d: %w", ErrBadProof, size-1, size, err)
	}
	cons, err := b.consistencyPath(ctx, size, latest.TreeSize)
	if err != nil {
		return [32]byte{}, err
	}
	if err := proof.VerifyConsistency(hasher, size, latest.TreeSize, cons, r, latest.RootHash); err != nil {
		return [32]byte{}, fmt.Errorf("%w: tree %d is not a prefix of Trillian's tree %d: %w", ErrBadProof, size, latest.TreeSize, err)
	}
	var out [32]byte
	copy(out[:], r)
	return out, nil
}

// InclusionProof returns Trillian's proof that leaf index is in the tree of
// size, after checking it against Trillian's root at size and the leaf
// Trillian holds at index.
func (b *Backend) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReadTimeout)
	defer cancel()
	if index >= size || size > math.MaxInt64 {
		return nil, fmt.Errorf("%w: no inclusion proof for index %d in a tree of size %d", ErrNotCovered, index, size)
	}
	root, err := b.root(ctx, size)
	if err != nil {
		return nil, err
	}
	leaf, err := b.leafHashes(ctx, index, 1)
	if err != nil {
		return nil, err
	}
	path, err := b.inclusionPath(ctx, index, size)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyInclusion(hasher, index, size, leaf[0][:], path, root[:]); err != nil {
		return nil, fmt.Errorf("%w: inclusion of leaf %d in tree %d: %w", ErrBadProof, index, size, err)
	}
	return path, nil
}

// ConsistencyProof returns Trillian's proof that the tree of size newSize
// extends the tree of size oldSize, after checking it against Trillian's
// roots at both sizes. 0 < oldSize <= newSize.
func (b *Backend) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ReadTimeout)
	defer cancel()
	if oldSize == 0 || oldSize > newSize || newSize > math.MaxInt64 {
		return nil, fmt.Errorf("%w: no consistency proof from %d to %d", ErrNotCovered, oldSize, newSize)
	}
	newRoot, err := b.root(ctx, newSize)
	if err != nil {
		return nil, err
	}
	if oldSize == newSize {
		return [][]byte{}, nil
	}
	oldRoot, err := b.root(ctx, oldSize)
	if err != nil {
		return nil, err
	}
	path, err := b.consistencyPath(ctx, oldSize, newSize)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyConsistency(hasher, oldSize, newSize, path, oldRoot[:], newRoot[:]); err != nil {
		return nil, fmt.Errorf("%w: consistency of tree %d with %d: %w", ErrBadProof, oldSize, newSize, err)
	}
	return path, nil
}

func (b *Backend) inclusionPath(ctx context.Context, index, size uint64) ([][]byte, error) {
	var resp *trillian.GetInclusionProofResponse
	err := b.call(ctx, "GetInclusionProof", func(ctx context.Context) (err error) {
		resp, err = b.client.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{
			LogId: b.treeID, LeafIndex: int64(index), TreeSize: int64(size)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't get Trillian's inclusion proof of leaf %d in tree %d: %w", index, size, err)
	}
	// Trillian answers without a proof when the size is beyond the root it
	// read (a lagging replica, for example).
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("%w: Trillian has no tree of size %d yet", ErrNotCovered, size)
	}
	if uint64(resp.GetProof().GetLeafIndex()) != index {
		return nil, fmt.Errorf("%w: asked for the proof of leaf %d, got leaf %d's", ErrBadProof, index, resp.GetProof().GetLeafIndex())
	}
	return checkHashes(resp.GetProof().GetHashes())
}

func (b *Backend) consistencyPath(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	var resp *trillian.GetConsistencyProofResponse
	err := b.call(ctx, "GetConsistencyProof", func(ctx context.Context) (err error) {
		resp, err = b.client.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{
			LogId: b.treeID, FirstTreeSize: int64(oldSize), SecondTreeSize: int64(newSize)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't get Trillian's consistency proof from %d to %d: %w", oldSize, newSize, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("%w: Trillian has no tree of size %d yet", ErrNotCovered, newSize)
	}
	return checkHashes(resp.GetProof().GetHashes())
}

func checkHashes(hashes [][]byte) ([][]byte, error) {
	for i, h := range hashes {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: proof element %d is %d bytes", ErrBadProof, i, len(h))
		}
	}
	if hashes == nil {
		hashes = [][]byte{}
	}
	return hashes, nil
}

// call runs one RPC, retrying it while Trillian is unavailable (a log
// server restarting, a database failing over) until ctx ends. Every RPC
// the backend makes is safe to repeat: reads, and AddSequencedLeaves, whose
// second answer "already present" is checked like any other.
func (b *Backend) call(ctx context.Context, rpc string, f func(context.Context) error) error {
	delay := b.opts.MinPoll
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if !transient(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("trillian %s: %w: %w", rpc, ctx.Err(), err)
			}
			return fmt.Errorf("trillian %s: %w", rpc, err)
		}
		b.metrics.retries.WithLabelValues(rpc).Inc()
		b.log.Warn("trillian call failed; retrying", "rpc", rpc, "err", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return fmt.Errorf("trillian %s: %w: %w", rpc, ctx.Err(), err)
		}
		delay = min(delay*2, b.opts.MaxPoll)
	}
}

func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *Backend) cached(size uint64) ([32]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.roots[size]
	return r, ok
}

func (b *Backend) remember(size uint64, root [32]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.roots) >= maxRoots {
		clear(b.roots)
	}
	b.roots[size] = root
}

// leafHash is the RFC 6962 leaf hash, SHA-256(0x00 || record), as
// verifier.LeafHash computes it.
func leafHash(record []byte) [32]byte {
	var out [32]byte
	copy(out[:], hasher.HashLeaf(record))
	return out
}

// identityHash is the leaf_identity_hash sent with leaf idx. Trillian's
// storage refuses a second leaf with an identity hash it holds anywhere in
// the tree (by default the identity hash is the leaf hash), and its
// PostgreSQL storage matches results to leaves by it; binding the index
// makes every (index, leaf) pair distinct, so that two equal leaf records
// at different indices cannot wedge the tree.
func identityHash(idx uint64, leaf [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("spoor/trillian/leaf-identity/v1\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, idx))
	h.Write(leaf[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// metrics are the backend's Prometheus collectors (low-cardinality labels).
type metrics struct {
	integrateSeconds prometheus.Histogram
	leaves           *prometheus.CounterVec
	retries          *prometheus.CounterVec
	treeSize         prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		integrateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spoor_trillian_integrate_seconds",
			Help: "Time to add a batch to Trillian and see it integrated.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		leaves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_trillian_leaves_total",
			Help: "Leaves sent to Trillian, by result: added, or present (already there, checked)."}, []string{"result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoor_trillian_rpc_retries_total",
			Help: "Trillian calls retried because Trillian was unavailable, by RPC."}, []string{"rpc"}),
		treeSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spoor_trillian_tree_size",
			Help: "Size of Trillian's newest root, as last read."}),
	}
}

// Metrics returns the backend's collectors for main to register.
func (b *Backend) Metrics() []prometheus.Collector {
	m := b.metrics
	return []prometheus.Collector{m.integrateSeconds, m.leaves, m.retries, m.treeSize}
}
