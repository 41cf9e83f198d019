package audit

// This file is the Source over a ledger's HTTP API, for an FG who
// audits a running ledger from elsewhere: the kept checkpoints from
// GET /v1/checkpoints, the witnessed ones from GET /v1/witnessed-checkpoints
// and the stored entries from GET /v1/entries (all paged, role fg, bearer
// token), and the public level-0 tiles. Nothing read
// here is trusted: Run checks every byte against the pinned keys.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/subjectindex"
	"github.com/spoor-ledger/spoor/verifier/tlogclient"
)

// ErrUnauthorized is returned (wrapped) when the server refuses the
// bearer token.
var ErrUnauthorized = errors.New("audit: the server refused the bearer token")

// maxAuditPage bounds one page's body: a page of /v1/entries holds at most
// 1000 envelopes, each at most 64 KiB, plus the JSON around them.
const maxAuditPage = 160 << 20

// HTTPSource reads a ledger's stored entries and checkpoints over its
// HTTP API. It implements Source and TileSource. It is safe for
// concurrent use once its fields are set. It also implements
// ErasureSource.
type HTTPSource struct {
	// URL is the ledger's base URL.
	URL string
	// Token is the FG's bearer token.
	Token string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// PageSize is how many entries to ask for per request; 0 means 500
	// (the server serves at most 1000).
	PageSize int
}

// ErasureProposals implements ErasureSource: GET /v1/erasures with
// the FG's token.
func (s *HTTPSource) ErasureProposals(ctx context.Context) ([]verifier.ErasureProposal, error) {
	var list verifier.ErasureList
	if err := s.get(ctx, "/v1/erasures", url.Values{}, &list); err != nil {
		return nil, err
	}
	return list.Proposals, nil
}

// get fetches path?query with the bearer token and decodes the JSON body.
func (s *HTTPSource) get(ctx context.Context, path string, query url.Values, v any) error {
	return s.call(ctx, http.MethodGet, path, query, nil, v)
}

// call sends a request with the bearer token (a JSON body when body is
// not nil) and decodes the JSON answer into v.
func (s *HTTPSource) call(ctx context.Context, method, path string, query url.Values, body []byte, v any) error {
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(s.URL, "/") + path + "?" + query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("audit: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("audit: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%w: GET %s: %s (the FG's token, role fg, is needed)", ErrUnauthorized, path, resp.Status)
	case http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("%w: GET %s?%s: %s", tlogclient.ErrNotFound, path, query.Encode(), resp.Status)
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("audit: GET %s?%s: %s", path, query.Encode(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAuditPage+1))
	if err != nil {
		return fmt.Errorf("audit: GET %s: reading body: %w", path, err)
	}
	if len(b) > maxAuditPage {
		return fmt.Errorf("audit: GET %s: body exceeds %d bytes", path, maxAuditPage)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("audit: GET %s?%s: the answer is not the expected JSON: %w", path, query.Encode(), err)
	}
	return nil
}

// Checkpoints implements Source: GET /v1/checkpoints, paged.
func (s *HTTPSource) Checkpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	return s.checkpointPages(ctx, "/v1/checkpoints")
}

// WitnessedCheckpoints implements WitnessSource: GET
// /v1/witnessed-checkpoints, paged. A ledger from before witnesses answers
// 404, returned wrapping tlogclient.ErrNotFound.
func (s *HTTPSource) WitnessedCheckpoints(ctx context.Context) ([]StoredCheckpoint, error) {
	return s.checkpointPages(ctx, "/v1/witnessed-checkpoints")
}

// checkpointPages reads every page of a list of checkpoints
// (verifier.CheckpointsResponse) at path, checking that the numbers only
// go up.
func (s *HTTPSource) checkpointPages(ctx context.Context, path string) ([]StoredCheckpoint, error) {
	var out []StoredCheckpoint
	from := uint64(0)
	for {
		var page verifier.CheckpointsResponse
		q := url.Values{"from": {strconv.FormatUint(from, 10)}}
		if err := s.get(ctx, path, q, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Checkpoints {
			if len(out) > 0 && c.Seq <= out[len(out)-1].Seq {
				return nil, fmt.Errorf("audit: GET %s: checkpoint %d after %d: not in order", path, c.Seq, out[len(out)-1].Seq)
			}
			out = append(out, StoredCheckpoint{Seq: c.Seq, Note: []byte(c.Note)})
		}
		if page.Next == nil {
			return out, nil
		}
		if *page.Next <= from || len(page.Checkpoints) == 0 {
			return nil, fmt.Errorf("audit: GET %s: the next page (%d) does not move on from %d", path, *page.Next, from)
		}
		from = *page.Next
	}
}

// Entries implements Source. A page the server cannot serve (one
// leaf record missing, 404, or one stored entry it cannot read) is read
// again one entry at a time: a missing leaf record is skipped, so that
// Run names it, and an entry that still fails is named in the error.
//
// The next page is fetched and decoded while fn takes the current one, so
// that the network and JSON decoding overlap with the audit's own work.
func (s *HTTPSource) Entries(ctx context.Context, from, to uint64, fn func(*Entry) error) error {
	size := uint64(s.PageSize)
	if size == 0 {
		size = 500
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops a prefetch nobody will take
	var next <-chan fetchedPage
	if from < to {
		next = s.prefetch(ctx, from, min(size, to-from))
	}
	for start := from; start < to; {
		n := min(size, to-start)
		f := <-next
		next = nil
		if after := start + n; after < to {
			next = s.prefetch(ctx, after, min(size, to-after))
		}
		var delivered uint64
		var cbErr error
		err := f.err
		if err == nil {
			err = f.deliver(func(e *Entry) error {
				delivered = e.Index + 1 - start
				cbErr = fn(e)
				return cbErr
			})
		}
		if cbErr != nil {
			return cbErr
		}
		if err != nil && n > 1 && !errors.Is(err, ErrUnauthorized) && ctx.Err() == nil {
			// Entries already passed to fn are not passed again.
			for i := start + delivered; i < start+n; i++ {
				err := s.page(ctx, i, 1, fn)
				switch {
				case err == nil, errors.Is(err, tlogclient.ErrNotFound):
				case errors.Is(err, ErrUnauthorized) || ctx.Err() != nil:
					return err
				default:
					if err := s.unreadable(ctx, i, to, err, fn); err != nil {
						return err
					}
				}
			}
			err = nil
		}
		if err != nil {
			return err
		}
		start += n
	}
	return nil
}

// fetchedPage is one page of /v1/entries as fetched, not yet delivered.
type fetchedPage struct {
	start, n uint64
	query    url.Values
	page     *verifier.EntriesResponse
	err      error
}

// prefetch fetches entries [start, start+n) in the background; the channel
// yields the page once.
func (s *HTTPSource) prefetch(ctx context.Context, start, n uint64) <-chan fetchedPage {
	ch := make(chan fetchedPage, 1)
	go func() { ch <- s.fetch(ctx, start, n) }()
	return ch
}

func (s *HTTPSource) fetch(ctx context.Context, start, n uint64) fetchedPage {
	f := fetchedPage{start: start, n: n, page: &verifier.EntriesResponse{},
		query: url.Values{"from": {strconv.FormatUint(start, 10)}, "limit": {strconv.FormatUint(n, 10)}}}
	f.err = s.get(ctx, "/v1/entries", f.query, f.page)
	return f
}

// page reads entries [start, start+n) and passes them to fn.
func (s *HTTPSource) page(ctx context.Context, start, n uint64, fn func(*Entry) error) error {
	f := s.fetch(ctx, start, n)
	if f.err != nil {
		return f.err
	}
	return f.deliver(fn)
}

// deliver passes the fetched page's entries to fn, checking that they are
// the ones asked for, in order.
func (f fetchedPage) deliver(fn func(*Entry) error) error {
	start, n, q, page := f.start, f.n, f.query, f.page
	want := start
	for _, e := range page.Entries {
		if e.Index != want || e.Index >= start+n {
			return fmt.Errorf("audit: GET /v1/entries?%s: entry %d where %d was expected", q.Encode(), e.Index, want)
		}
		want++
		ae := &Entry{Index: e.Index, LeafRecord: e.LeafRecord, Findings: e.Findings}
		switch {
		case e.Erased:
		case len(e.Envelope) > 0:
			// The envelope's exact logged bytes (base64 in the page).
			ae.Body = e.Envelope
		default:
			ae.Body = e.Body
			if ae.Body == nil {
				ae.Body = []byte{}
			}
		}
		if err := fn(ae); err != nil {
			return err
		}
	}
	if want != start+n && page.Next != nil {
		return fmt.Errorf("audit: GET /v1/entries?%s: %d entries, want %d", q.Encode(), want-start, n)
	}
	return nil
}

// unreadable passes entry i, which the server could not serve, to fn with
// its leaf record from the public entry bundle (which Run checks like
// any other) and the reason, so that the audit names the leaf and goes on.
func (s *HTTPSource) unreadable(ctx context.Context, i, size uint64, cause error, fn func(*Entry) error) error {
	c := &tlogclient.Client{URL: s.URL, HTTP: s.HTTP}
	n := i / verifier.TileWidth
	width := int(min(uint64(verifier.TileWidth), size-n*verifier.TileWidth))
	recs, err := c.Entries(ctx, n, width)
	if err != nil {
		return fmt.Errorf("entry %d cannot be read over HTTP (%w), nor its leaf record: %w", i, cause, err)
	}
	return fn(&Entry{Index: i, LeafRecord: recs[i-n*verifier.TileWidth],
		BodyError: "the server could not serve the stored entry (" + cause.Error() + "); a damaged stored envelope can do this: audit the stopped ledger or a backup with --data"})
}

// LeafTile implements TileSource from the public tile endpoint.
func (s *HTTPSource) LeafTile(ctx context.Context, n uint64, width int) ([]byte, error) {
	c := &tlogclient.Client{URL: s.URL, HTTP: s.HTTP}
	return c.Tile(ctx, 0, n, width)
}

var (
	_ Source        = (*HTTPSource)(nil)
	_ TileSource    = (*HTTPSource)(nil)
	_ WitnessSource = (*HTTPSource)(nil)
)

// IndexMapKeys implements IndexSource: POST /v1/index/map-keys, at most
// verifier.MaxIndexMapKeys pairs a request. A ledger without the subject
// index answers 404, returned wrapping tlogclient.ErrNotFound.
func (s *HTTPSource) IndexMapKeys(ctx context.Context, pairs []IndexPair) ([]IndexMapKey, error) {
	out := make([]IndexMapKey, 0, len(pairs))
	for from := 0; from < len(pairs); from += verifier.MaxIndexMapKeys {
		chunk := pairs[from:min(from+verifier.MaxIndexMapKeys, len(pairs))]
		req := verifier.IndexMapKeysRequest{Pairs: make([]verifier.IndexPairRequest, len(chunk))}
		for i, p := range chunk {
			req.Pairs[i] = verifier.IndexPairRequest{IDType: p.IDType, KeyID: p.KeyID, Pseudonym: p.Pseudonym, Party: p.Party}
		}
		body, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		var resp verifier.IndexMapKeysResponse
		if err := s.call(ctx, http.MethodPost, "/v1/index/map-keys", url.Values{}, body, &resp); err != nil {
			return nil, err
		}
		if len(resp.MapKeys) != len(chunk) {
			return nil, fmt.Errorf("audit: POST /v1/index/map-keys: %d map keys for %d pairs", len(resp.MapKeys), len(chunk))
		}
		for _, m := range resp.MapKeys {
			var mk subjectindex.MapKey
			if b, err := hex.DecodeString(m.MapKey); err != nil || len(b) != len(mk) {
				return nil, fmt.Errorf("audit: POST /v1/index/map-keys: a map key is not 64 hex characters")
			} else {
				copy(mk[:], b)
			}
			out = append(out, IndexMapKey{MapKey: mk, VRFProof: m.VRFProof})
		}
	}
	return out, nil
}

// IndexLists implements IndexSource: GET /v1/index/lists, paged.
func (s *HTTPSource) IndexLists(ctx context.Context, fn func(subjectindex.MapKey, []byte) error) error {
	q := url.Values{}
	for {
		var page verifier.IndexListsResponse
		if err := s.get(ctx, "/v1/index/lists", q, &page); err != nil {
			return err
		}
		for _, l := range page.Lists {
			var mk subjectindex.MapKey
			if b, err := hex.DecodeString(l.MapKey); err != nil || len(b) != len(mk) {
				return fmt.Errorf("audit: GET /v1/index/lists: a map key is not 64 hex characters")
			} else {
				copy(mk[:], b)
			}
			if err := fn(mk, l.List); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Set("after", page.Next)
	}
}

var _ IndexSource = (*HTTPSource)(nil)
