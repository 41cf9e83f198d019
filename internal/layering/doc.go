// Package layering holds no code: its test states the project's layer
// rules (which package may depend on which) and checks them against the
// import graph of every package, so that the map in docs/architecture.md
// stays true as packages are added.
package layering
