// Package datadir is the layout of a ledger's data folder: the one place
// that says where, below the folder given with --data, spoor serve keeps
// its store, its keys and tokens, the embedded NATS server's store and the
// demo material, and where the other commands (audit, inzage, retention,
// simulate), the bench and the test ledgers look for them.
//
//	DIR/ledger/            the Pebble store (ledger/pebblestore)
//	DIR/nats/              the embedded NATS server's JetStream store
//	DIR/datakeys/          the data keys that seal envelopes at rest
//	DIR/log.key            the log's signing key (secret)
//	DIR/log.vkey           the log's verifier key: pin it
//	DIR/index-vrf.key      the subject index's map-key VRF secret
//	DIR/cosigner.key       the cosigner's signing key (secret)
//	DIR/cosigner.vkey      the cosigner's verifier key: pin it
//	DIR/fg.token           the FG's bearer token (secret)
//	DIR/demo-keys/         the demo covenant and its keys (events/demo), and
//	                       the demo desk users' tokens, <user>.token
//	DIR/nats-credentials/  NATS seeds made for parties, <party>.nk (secret)
//	DIR/nats.url           the NATS URL the ledger last started on, for the
//	                       clients on this machine (simulate's default)
//
// A backup (spoor serve --backup-dir) is a folder with the same layout that
// holds only the store.
package datadir

import "path/filepath"

// The names of the files and folders in a data folder.
const (
	LedgerName          = "ledger"
	NATSName            = "nats"
	DataKeysName        = "datakeys"
	LogKeyName          = "log.key"
	LogVkeyName         = "log.vkey"
	CosignerKeyName     = "cosigner.key"
	CosignerVkeyName    = "cosigner.vkey"
	FGTokenName         = "fg.token"
	DemoKeysName        = "demo-keys"
	NATSCredentialsName = "nats-credentials"
	DeskUsersName       = "desk-users.json"
	NATSURLName         = "nats.url"
	NotifyName          = "notify"
	IndexVRFKeyName     = "index-vrf.key"
)

// Dir is a data folder: the path given with --data.
type Dir string

// Ledger is the folder of the Pebble store.
func (d Dir) Ledger() string { return filepath.Join(string(d), LedgerName) }

// NATS is the embedded NATS server's JetStream store.
func (d Dir) NATS() string { return filepath.Join(string(d), NATSName) }

// DataKeys is the folder of the data keys.
func (d Dir) DataKeys() string { return filepath.Join(string(d), DataKeysName) }

// LogKey is the log's signing key file.
func (d Dir) LogKey() string { return filepath.Join(string(d), LogKeyName) }

// LogVkey is the log's verifier key file.
func (d Dir) LogVkey() string { return filepath.Join(string(d), LogVkeyName) }

// IndexVRFKey is the subject index's VRF key file (secret, 0600): only the
// ledger can derive map keys with it (ledger/subjectindex.OpenVRFKey).
func (d Dir) IndexVRFKey() string { return filepath.Join(string(d), IndexVRFKeyName) }

// CosignerKey is the cosigner's signing key file.
func (d Dir) CosignerKey() string { return filepath.Join(string(d), CosignerKeyName) }

// CosignerVkey is the cosigner's verifier key file.
func (d Dir) CosignerVkey() string { return filepath.Join(string(d), CosignerVkeyName) }

// FGToken is the FG's bearer token file.
func (d Dir) FGToken() string { return filepath.Join(string(d), FGTokenName) }

// DemoKeys is the folder of the demo covenant's material.
func (d Dir) DemoKeys() string { return filepath.Join(string(d), DemoKeysName) }

// DeskUsers is the desk users file `spoor desk` reads on a demo machine
// (a real desk keeps it on its own machine, not in the ledger's folder).
func (d Dir) DeskUsers() string { return filepath.Join(string(d), DeskUsersName) }

// DemoDeskToken is the bearer token file of a demo desk user.
func (d Dir) DemoDeskToken(user string) string { return filepath.Join(d.DemoKeys(), user+".token") }

// NATSCredentials is the folder of the NATS seeds made for parties.
func (d Dir) NATSCredentials() string { return filepath.Join(string(d), NATSCredentialsName) }

// NATSURL is the file that holds the NATS URL the ledger last started on.
func (d Dir) NATSURL() string { return filepath.Join(string(d), NATSURLName) }

// Notify is the notifier's folder: its outbox and dead-letter list
// (ledger/notify).
func (d Dir) Notify() string { return filepath.Join(string(d), NotifyName) }
