package trillianlog

import (
	"context"
	"fmt"
	"time"

	"github.com/google/trillian"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// CreateTree makes and initialises a new PREORDERED_LOG tree on the
// Trillian log server at addr through its admin API, as createtree
// --tree_type=PREORDERED_LOG does, and returns its id. Benchmarks and tests
// use it to give every ledger a tree of its own; a production log's tree is
// made once with createtree. dialOpts replace the default plaintext
// transport, as in Options.DialOptions. displayName may have at most 20
// characters (Trillian's PostgreSQL schema).
func CreateTree(ctx context.Context, addr, displayName string, dialOpts ...grpc.DialOption) (int64, error) {
	conn, err := adminConn(addr, dialOpts)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tree, err := trillian.NewTrillianAdminClient(conn).CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState:   trillian.TreeState_ACTIVE,
		TreeType:    trillian.TreeType_PREORDERED_LOG,
		DisplayName: displayName,
		// Trillian's signer writes a new root at least this often even
		// when nothing changes; the ledger does not rely on it.
		MaxRootDuration: durationpb.New(time.Hour),
	}})
	if err != nil {
		return 0, fmt.Errorf("couldn't create a PREORDERED_LOG tree on Trillian at %s: %w", addr, err)
	}
	if _, err := trillian.NewTrillianLogClient(conn).InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
		return 0, fmt.Errorf("couldn't initialise tree %d on Trillian at %s: %w", tree.TreeId, addr, err)
	}
	return tree.TreeId, nil
}

// DeleteTree soft-deletes tree id on the Trillian log server at addr (the
// signer then leaves it alone).
func DeleteTree(ctx context.Context, addr string, id int64, dialOpts ...grpc.DialOption) error {
	conn, err := adminConn(addr, dialOpts)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := trillian.NewTrillianAdminClient(conn).DeleteTree(ctx, &trillian.DeleteTreeRequest{TreeId: id}); err != nil {
		return fmt.Errorf("couldn't delete tree %d on Trillian at %s: %w", id, addr, err)
	}
	return nil
}

func adminConn(addr string, dialOpts []grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption(nil), dialOpts...)
	if len(opts) == 0 {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up a gRPC client for Trillian at %s: %w", addr, err)
	}
	return conn, nil
}
