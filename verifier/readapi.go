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

// IndexListsResponse is a page of GET /v1/index/lists (the FG's read of
// the subject index, for the audit's recomputation): the stored lists in
// map key order. Next is the map key to ask for with after= to read on;
// it is absent on the last page.
type IndexListsResponse struct {
	Lists []IndexListEntry `json:"lists"`
	Next  string           `json:"next,omitempty"`
}

// IndexListEntry is one stored list: its map key (64 lower-case hex) and
// its byte form (verifier/subjectindex.List, base64 in the JSON).
type IndexListEntry struct {
	MapKey string `json:"map_key"`
	List   []byte `json:"list"`
}

// IndexMapKeysRequest is the body of POST /v1/index/map-keys: the (child,
// party) pairs whose map keys the FG's audit asks for, at most
// MaxIndexMapKeys.
type IndexMapKeysRequest struct {
	Pairs []IndexPairRequest `json:"pairs"`
}

// IndexPairRequest is one child (by identifier type, pseudonym key id and
// pseudonym) at one party.
type IndexPairRequest struct {
	IDType    string `json:"id_type"`
	KeyID     string `json:"key_id"`
	Pseudonym string `json:"pseudonym"`
	Party     string `json:"party"`
}

// IndexMapKeysResponse answers IndexMapKeysRequest, pair by pair: each map
// key (64 hex) with its VRF proof, which the audit checks under the key
// the index heads publish.
type IndexMapKeysResponse struct {
	MapKeys []IndexMapKeyResponse `json:"map_keys"`
}

// IndexMapKeyResponse is one pair's map key and VRF proof.
type IndexMapKeyResponse struct {
	MapKey   string `json:"map_key"`
	VRFProof []byte `json:"vrf_proof"`
}

// MaxIndexMapKeys bounds the pairs of one POST /v1/index/map-keys.
const MaxIndexMapKeys = 1000
