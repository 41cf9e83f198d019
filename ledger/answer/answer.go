// Package answer is the privacy desk's side of the ledger: access requests
// (inzageverzoeken, AVG art. 15) registered by one desk user and released
// by another, erasure proposals (AVG art. 17) proposed by one desk user and
// confirmed or withdrawn by another, the desk scope that decides whose
// disclosures a desk user answers for, and the inzage bundle that answers a
// released request.
//
// Data flows one way: ledger/httpapi calls a Service, and the Service uses
// the ledger only through its exported methods: it reads entries, leaf
// records and the covenant chain view, keeps its requests and proposals as
// records beside the log (ledger.PutRecords, committed with a batch of the
// sequencer's so that a standby has them), and erases a confirmed
// disclosure with a tombstone whose batch also holds the decision
// (ledger.TombstoneRequest.Beside). A Service holds no process-wide state:
// its locks are its own, and there is one Service per Ledger.
package answer

import (
	"sync"
	"time"

	"github.com/spoor-ledger/spoor/ledger"
	"github.com/spoor-ledger/spoor/verifier"
)

// DefaultErasureExpiry is how long a proposal waits for its confirmation
// when Config.ErasureExpiry is zero.
const DefaultErasureExpiry = 7 * 24 * time.Hour

// Config configures a Service. Ledger is required.
type Config struct {
	// Ledger is the log the desk answers from.
	Ledger *ledger.Ledger
	// LogVkey and CosignerVkey are the log's verifier keys as text (the
	// contents of DIR/log.vkey and DIR/cosigner.vkey), written into inzage
	// bundles for information (verifiers pin their own copies); empty
	// leaves them out.
	LogVkey, CosignerVkey string
	// ErasureExpiry is how long a proposed erasure on request waits for a
	// second desk user's confirmation; 0 means DefaultErasureExpiry.
	ErasureExpiry time.Duration
}

// Service runs the desk's workflows on one ledger. Make one per Ledger:
// its locks serialise the decisions on that ledger's requests and
// proposals.
type Service struct {
	cfg Config
	l   *ledger.Ledger

	accessMu  sync.Mutex // serialises releases of access requests
	erasureMu sync.Mutex // serialises decisions on erasure proposals
	// bundleCache is what checking the bundles this service builds
	// repeats (inzage.go): the head's opened checkpoint, the verified
	// covenant chain.
	bundleCache verifier.BundleCache
}

// New returns the Service for cfg.
func New(cfg Config) *Service {
	if cfg.ErasureExpiry <= 0 {
		cfg.ErasureExpiry = DefaultErasureExpiry
	}
	return &Service{cfg: cfg, l: cfg.Ledger}
}

// DeskUser is who acts in a desk workflow: a name for people and logs, and
// the credential's identity (the SHA-256 of the bearer token, hex), which is
// what tells two desk users apart.
type DeskUser struct {
	Name       string
	Credential string
}

func (u DeskUser) valid() bool { return u.Name != "" && u.Credential != "" }
