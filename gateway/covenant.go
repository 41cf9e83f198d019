package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/spoor-ledger/spoor/events"
)

// LoadCovenantChain parses the signed covenant versions, oldest first, and
// checks them as a chain whose version 1 names and is signed by the pinned
// administrator key (events.NewChain, Chain.Append). The gateway checks
// disclosures against the chain's latest version, and FollowCovenants
// appends the versions the ledger logs later.
func LoadCovenantChain(signed [][]byte, pinnedAdmin string) (*events.Chain, error) {
	if pinnedAdmin == "" {
		return nil, errors.New("the gateway needs the pinned administrator key to trust a covenant")
	}
	if len(signed) == 0 {
		return nil, errors.New("no covenant given")
	}
	var ch *events.Chain
	for i, b := range signed {
		sc, err := events.ParseSignedCovenant(b)
		if err != nil {
			return nil, fmt.Errorf("covenant file %d: %w", i+1, err)
		}
		if i == 0 {
			if ch, err = events.NewChain(sc, pinnedAdmin); err != nil {
				return nil, fmt.Errorf("covenant file 1: %w", err)
			}
			continue
		}
		if err := ch.Append(sc); err != nil {
			return nil, fmt.Errorf("covenant file %d: %w", i+1, err)
		}
	}
	return ch, nil
}

// DefaultCovenantPoll is how often FollowCovenants asks the ledger for new
// covenant versions: a new version is rare and announced, and takes effect
// at the gateway within this interval of the ledger logging it.
const DefaultCovenantPoll = 30 * time.Second

// CovenantsPath is the ledger's public route that lists the covenant
// versions it logged (events.CovenantVersions).
const CovenantsPath = "/v1/covenants"

// FollowCovenants asks the ledger at ledgerURL (its HTTP API) for its
// covenant versions every interval (0 means DefaultCovenantPoll), until ctx
// ends, and takes each new one in force (UpdateCovenant). A ledger that
// does not answer, or serves a version that does not follow the chain, is
// logged and asked again: the gateway keeps the version it has, which the
// ledger's ingest enforces too.
func (g *Gateway) FollowCovenants(ctx context.Context, client *http.Client, ledgerURL string, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultCovenantPoll
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := g.UpdateCovenant(ctx, client, ledgerURL); err != nil && ctx.Err() == nil {
			g.log.Warn("couldn't follow the ledger's covenant versions", "err", err, "covenant_version", g.covenant().Version)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UpdateCovenant asks the ledger once for its covenant versions and appends
// those newer than the gateway's to its chain, each checked against the
// administrator key of the version before it (events.ExtendChain). The
// newest that the gateway can work with is put in force: it must still list
// the gateway's pseudonym key and every party whose key the gateway holds
// (otherwise the gateway would sign events that ingest refuses; it keeps
// the version before and says why). It returns the version in force.
func (g *Gateway) UpdateCovenant(ctx context.Context, client *http.Client, ledgerURL string) (int, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ledgerURL+CovenantsPath, nil)
	if err != nil {
		return 0, fmt.Errorf("couldn't ask for the covenant versions: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("couldn't ask the ledger for its covenant versions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the ledger answered %s to %s", resp.Status, CovenantsPath)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, events.MaxCovenantVersionsBody+1))
	if err != nil {
		return 0, fmt.Errorf("couldn't read the covenant versions: %w", err)
	}
	if len(b) > events.MaxCovenantVersionsBody {
		return 0, errors.New("the ledger's covenant versions exceed the size limit")
	}
	vs, err := events.ParseCovenantVersions(b)
	if err != nil {
		return 0, err
	}
	g.chainMu.Lock()
	defer g.chainMu.Unlock()
	n, err := events.ExtendChain(g.cfg.Chain, vs)
	if n > 0 {
		latest := g.cfg.Chain.Latest().Covenant
		if perr := g.usable(latest); perr != nil {
			return g.covenant().Version, errors.Join(err, fmt.Errorf("covenant version %d is logged but not put in force here: %w", latest.Version, perr))
		}
		g.cov.Store(latest)
		g.log.Info("covenant version in force", "covenant_version", latest.Version, "appended", n)
	}
	return g.covenant().Version, err
}

// usable says why the gateway cannot publish under c, nil if it can.
func (g *Gateway) usable(c *events.Covenant) error {
	if !slices.Contains(c.SubjectKeys, g.cfg.SubjectKey.ID) {
		return fmt.Errorf("it does not list pseudonym key %q", g.cfg.SubjectKey.ID)
	}
	for id := range g.parties {
		if _, ok := c.Party(id); !ok {
			return fmt.Errorf("party %s, whose key the gateway holds, is not in it", id)
		}
	}
	return nil
}
