// Package webhook is the receiving side of Spoor's notifications: the
// CloudEvents a ledger posts to an organisation's or the FG's webhook, their
// data bodies, and the HTTP Message Signature (RFC 9421, Ed25519) with its
// Content-Digest (RFC 9530, sha-256) that proves a request came from the
// ledger. A receiver imports this package and nothing of the ledger: it pins
// the notification key the covenant lists (Covenant.NotificationKey) and
// calls Verify on each request before it trusts a byte of the body.
//
// Data flows like this: ledger/notify builds an event with NewEvent, signs
// the request with Sign and posts it; the receiver calls Verify (signature,
// covered components, digest of the body, age) and then ParseEvent.
//
// The signature code is a small, strict implementation of exactly what is
// used (see httpsig.go for why no library): the derived components @method,
// @target-uri, @authority, @scheme, @path, @query and @request-target and
// plain header fields, without component parameters; the Ed25519 algorithm
// only; the created, expires, keyid, alg, nonce and tag parameters. A
// signature that uses anything else is refused, not skipped.
package webhook
