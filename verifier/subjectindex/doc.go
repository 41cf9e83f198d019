// Package subjectindex is the verifier's side of the subject index: the
// verifiable map from (index key, discloser) to a commitment to the ordered
// list of leaf indices of every entry about one child by one party. It
// defines the one byte form of everything the map commits to and proves
// (index keys, map keys, lists and their commitments, node hashes, proofs)
// and checks proofs against a root; it reads no store and speaks no HTTP.
//
// Data comes from the ledger (ledger/subjectindex keeps the map and makes
// the proofs, importing these definitions so that writer and verifier agree
// byte for byte) by way of a bundle; the root comes from an index head entry
// in the log. The design, and why the map is a compact sparse Merkle tree
// written here rather than one taken from a dependency, is in
// docs/subject-index.md.
//
// The tree. A map key is 256 bits, read from the most significant bit of
// its first byte. The tree is the binary trie of all keys, with every
// subtree holding exactly one key replaced by that key's leaf and every
// subtree holding none by the empty hash:
//
//	hash(empty)       = EmptyHash (32 zero bytes)
//	hash(one key k)   = SHA-256(0x00 "spoor-index-leaf" || k || value(k))
//	hash(two or more) = SHA-256(0x01 "spoor-index-node" || hash(left) || hash(right))
//
// so a key's leaf sits just below the depth at which it parts from every
// other key: about log2(n) deep for n random keys, not 256. An update
// recomputes that many hashes and a proof carries that many siblings.
// The tags keep a map node from ever equalling an RFC 6962 log node, and
// fit in the same two SHA-256 blocks as the bare prefix byte would.
package subjectindex
