package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spoor-ledger/spoor/events"
)

// Client is who a bearer token belongs to: a system of one party.
type Client struct {
	// Name names the client in log lines (never the token).
	Name string
	// Party is the one party the client publishes for.
	Party string
	// OIN is the OIN of the client's verified certificate, "" without one.
	OIN string
}

// TokenHash is what a tokens file lists for a token: its SHA-256. The
// gateway never holds a token itself.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// tokenEntry is one client of a tokens file.
type tokenEntry struct {
	Name        string `json:"name"`
	Party       string `json:"party"`
	TokenSHA256 string `json:"token_sha256"`
}

// ParseTokens decodes a tokens file: a JSON array of {"name", "party",
// "token_sha256"}, the token's SHA-256 in lower-case hex. Each token maps
// to exactly one party; a hash listed twice is refused.
func ParseTokens(b []byte) (map[[32]byte]Client, error) {
	var entries []tokenEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	out := make(map[[32]byte]Client, len(entries))
	for i, e := range entries {
		h, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(h) != sha256.Size || hex.EncodeToString(h) != e.TokenSHA256 {
			return nil, fmt.Errorf("tokens file: entry %d: token_sha256 must be 64 lower-case hex characters", i)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("tokens file: entry %d needs a name", i)
		}
		if !events.ValidPartyID(e.Party) {
			return nil, fmt.Errorf("tokens file: entry %d (%s): party must be a party id", i, e.Name)
		}
		if _, dup := out[[32]byte(h)]; dup {
			return nil, fmt.Errorf("tokens file: entry %d (%s): the same token hash is listed twice", i, e.Name)
		}
		out[[32]byte(h)] = Client{Name: e.Name, Party: e.Party}
	}
	return out, nil
}

// LoadTokens reads a tokens file.
func LoadTokens(path string) (map[[32]byte]Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read tokens file: %w", err)
	}
	t, err := ParseTokens(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}
