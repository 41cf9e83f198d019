// Package audit is the FG's audit engine: Run reads a whole Spoor log
// through a Source and checks it from the bottom up against the pinned log,
// cosigner and administrator keys, and returns a Report of integrity
// problems (each a typed Check), covenant findings, statistics and
// anomalies, and the erasures on request. `spoor audit` prints the Report as
// JSON; verifier/report renders it in Dutch for the FG.
//
// Data flows in one direction:
//
//	Source (the ledger's stopped store or running ledger, ledger/auditsource.go;
//	        or a ledger's HTTP API, HTTPSource)
//	  --checkpoints, entries, tiles, erasure proposals--> Run
//	  --verifier (OpenCheckpoint, LeafHash, ParseLeafRecord, the formats)--> Report
//
// It lives apart from package verifier so that what a parent's tool or a
// browser build imports (formats, checkpoints, proofs, bundle
// verification) carries no audit engine and no HTTP client: verifier never
// imports this package (internal/layering and verifier/arch_test.go check
// it). The formats the audit reads are the verifier's; none has a second
// home here.
package audit
