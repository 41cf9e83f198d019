package desk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spoor-ledger/spoor/events"
)

// LedgerError is a refusal from the ledger's API: its HTTP status and the
// code and message of its JSON body.
type LedgerError struct {
	Status  int
	Code    string
	Message string
}

func (e *LedgerError) Error() string {
	return fmt.Sprintf("the ledger answered %d (%s): %s", e.Status, e.Code, e.Message)
}

// ledgerCall sends one request of the desk user's to the ledger's API with
// their bearer token. A non-nil body is sent as JSON; the answer's bytes
// and headers come back. Refusals are *LedgerError.
func (s *Server) ledgerCall(ctx context.Context, u *user, method, path string, body any) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.ledger.JoinPath(path).String(), rd)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't make the ledger request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+u.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't reach the ledger: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the ledger's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		le := &LedgerError{Status: resp.StatusCode}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil {
			le.Code, le.Message = e.Code, e.Message
		}
		return nil, nil, le
	}
	return data, resp.Header, nil
}

// requestPath is the ledger's path of request id, after checking that id
// is a request id (a UUID): nothing typed into a URL reaches the ledger's
// path unchecked.
func requestPath(id string, rest ...string) (string, bool) {
	if !events.ValidEventID(id) {
		return "", false
	}
	p := "/v1/inzage/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p, true
}
