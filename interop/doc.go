// Package interop holds Spoor's interoperability tests against an
// implementation of the witness protocol not written here
// (github.com/transparency-dev/witness): its client drives `spoor witness`,
// its witness cosigns Spoor's checkpoints, and Spoor's witness client
// gathers cosignatures from both.
//
// It is a module of its own so that the witness library's dependencies
// (a pre-release of transparency-dev/merkle among them, with which Spoor's
// ledger benched 14-32% slower) stay out of Spoor's build. The README's
// test command and CI run it: cd interop && go test -race -count=1 ./...
package interop
