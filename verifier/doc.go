// Package verifier is what auditors, parents' tools, monitors and the ledger
// itself use to check Spoor's public log. It holds the log's public byte
// formats and the code that checks them, and nothing that stores, serves or
// fetches: no Pebble, no NATS, no HTTP (arch_test.go keeps it that way).
//
// Data flows through it like this. The ledger builds a LeafRecord for each
// entry it integrates, stores the record's bytes as the Merkle leaf data
// (leaf hash: LeafHash, RFC 6962), and publishes the tree as C2SP tlog-tiles
// (TilePath, EntryBundlePath, AppendEntry) with a checkpoint signed by a
// CheckpointSigner: a signed note by the log key plus a timestamped
// tlog-cosignature/v1 by the log's own cosigner key. A verifier pins the two
// public keys (ParseLogKeys), opens a checkpoint (OpenCheckpoint), and then
// checks inclusion and consistency proofs against it (VerifyInclusion,
// VerifyConsistency), either from a bundle or computed from the tiles a
// server serves (verifier/tlogclient, which reads checkpoints, tiles and
// entry bundles over HTTP and never trusts a byte it has not checked
// against a signed checkpoint).
//
// What builds on this package lives beside it, so that a parent's tool or a
// browser build that imports it carries no audit engine and no HTTP client
// (arch_test.go): the FG's audit engine (verifier/audit), the tiles client
// (verifier/tlogclient), the monitor (verifier/monitor) and the Dutch
// reports (verifier/report).
//
// The formats, byte for byte, are documented where they are defined:
// leafrecord.go (leaf records), checkpoint.go (checkpoints, keys and their
// fingerprints), tiles.go (tile height, paths and entry bundles),
// tombstone.go (tombstone bodies), bundle.go (inzage bundles and their
// verification, which the ledger runs on every bundle it builds),
// readapi.go (the bodies of the ledger's /v1/entries and /v1/checkpoints).
// The ledger writes them from these definitions; none has a second home.
package verifier
