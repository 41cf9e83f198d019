// Package interop holds Spoor's interoperability tests against code not
// written here:
//
//   - witness: an implementation of the witness protocol
//     (github.com/transparency-dev/witness): its client drives
//     `spoor witness`, its witness cosigns Spoor's checkpoints;
//   - client: Spoor's witness client gathers cosignatures from both;
//   - tessera: a log not written here (github.com/transparency-dev/tessera
//     v1.0.4 on its POSIX driver) names `spoor witness serve`, the binary
//     built from ../cmd/spoor and run as its own process, in its witness
//     policy; Tessera's own witness gateway sends it the checkpoints and
//     consistency proofs, publishes only what the policy accepts, and
//     Tessera's own policy code counts Spoor's cosignature (and not one by
//     a key outside the policy).
//
// It is a module of its own so that these libraries' dependencies
// (a pre-release of transparency-dev/merkle among them, with which Spoor's
// ledger benched 14-32% slower) stay out of Spoor's build. The README's
// test command and CI run it: cd interop && go test -race -count=1 ./...
package interop
