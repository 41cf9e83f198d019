// Package deploy holds what an operator needs to run Spoor beyond the
// embedded default, and the tests that keep it honest; it has no Go API.
//
// The files flow from the covenant outwards: natsaccounts turns the
// covenant's parties into the NATS users and permissions of
// nats/accounts.conf (the permissions of events/natsbus.PartyPermissions);
// nats/ is the three-node JetStream cluster that includes it; compose/,
// systemd/ and kubernetes/ run that cluster, the ledger (spoor serve --nats
// ... --replicas 3) and Trillian; docker/ builds the images; tls/ makes
// throw-away certificates for trying it; spoor.yaml is the configuration
// file of spoor serve --config, every key at its default (its reference is
// Config in cmd/spoor). docs/operations.md is the guide.
//
// Docker and Kubernetes do not run in CI, so the tests parse every file
// and check that what refers to something (a service, a volume, a file, a
// flag of spoor serve or of Trillian, a password variable) finds it, and
// run nats-server -t on each NATS configuration.
package deploy
