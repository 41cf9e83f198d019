package verifier

import "github.com/spoor-ledger/spoor/events"

// The bodies of the ledger's paged read API for the FG's audit: the ledger's
// HTTP server (ledger/httpapi) writes them and the FG's audit
// (verifier/audit's HTTPSource) reads them, so that both agree on every
// field. Each is JSON as encoding/json writes
// it; the server indents it.

// EntryResponse is one stored entry as the FG reads it: an element of
// GET /v1/entries, and the body of GET /v1/events/{id}.
//
// Envelope and Body are the entry's exact bytes (base64 in the JSON), so
// that their SHA-256 is the leaf record's body hash as they arrive: an
// envelope embedded as a JSON object would be re-indented with the page
// and no longer hash to its leaf.
type EntryResponse struct {
	Index      uint64           `json:"index"`
	Type       string           `json:"type"`
	LeafRecord []byte           `json:"leaf_record"`
	Envelope   []byte           `json:"envelope,omitempty"`
	Body       []byte           `json:"body,omitempty"`
	Erased     bool             `json:"erased,omitempty"`
	Findings   []events.Finding `json:"findings,omitempty"`
}

// EntriesResponse is a page of GET /v1/entries. Next is the index to ask
// for with from= to read on; it is absent on the last page.
type EntriesResponse struct {
	Entries  []*EntryResponse `json:"entries"`
	Next     *uint64          `json:"next,omitempty"`
	TreeSize uint64           `json:"tree_size"`
}

// CheckpointEntry is one kept checkpoint in GET /v1/checkpoints: its number
// among all the log's checkpoints and the signed note.
type CheckpointEntry struct {
	Seq  uint64 `json:"seq"`
	Note string `json:"note"`
}

// CheckpointsResponse is a page of GET /v1/checkpoints, and of GET
// /v1/witnessed-checkpoints (each witnessed checkpoint under the number of
// the kept checkpoint it cosigns, its note with the witnesses' cosignature
// lines appended). Next is the number to ask for with from= to read on; it
// is absent on the last page.
type CheckpointsResponse struct {
	Checkpoints []CheckpointEntry `json:"checkpoints"`
	Next        *uint64           `json:"next,omitempty"`
}
