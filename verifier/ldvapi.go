package verifier

// The bodies of the LDV read API (Logboek Dataverwerkingen, extension
// "lezen"; docs/ldv.md), POST /processing-activities on the ledger: one
// definition for the ledger's server and any Go client. The member names
// are the extension's; where its OpenAPI file and its text disagree the
// text is followed (docs/ldv.md lists each deviation).

// LDVAPIVersion is the version of the LDV read API as Spoor serves it,
// sent in the API-Version header.
const LDVAPIVersion = "1.0.0"

// LDVSubjectType is the dpl.core.data_subject_id_type of every answered
// processing activity: the id is Spoor's pseudonym, never a number.
const LDVSubjectType = "spoor-pseudonym"

// LDVQueryRequest is the body of POST /processing-activities. At least one
// of TraceID, ProcessingActivityID and DataSubjectID is required.
type LDVQueryRequest struct {
	// TraceID is the W3C trace id, 32 lower-case hex characters.
	TraceID string `json:"traceId,omitempty"`
	// ProcessingActivityID is the disclosure's processing activity.
	ProcessingActivityID string `json:"dpl.core.processing_activity_id,omitempty"`
	// DataSubjectID is the subject's pseudonym (64 lower-case hex), never a
	// BSN; DataSubjectIDType, when given, must be LDVSubjectType.
	DataSubjectID     string `json:"dpl.core.data_subject_id,omitempty"`
	DataSubjectIDType string `json:"dpl.core.data_subject_id_type,omitempty"`
	// StartTime and EndTime bound occurred_at, RFC 3339, inclusive.
	StartTime string `json:"startTime,omitempty"`
	EndTime   string `json:"endTime,omitempty"`
	// Limit caps the page (Spoor's: 1 to 1,000, default 100); Cursor is the
	// NextCursor of the previous page.
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// LDVMetadata describes the log answering: its origin as the logbook id,
// and the covenant's name.
type LDVMetadata struct {
	LogbookID        string `json:"logbookId"`
	OrganizationName string `json:"organizationName"`
}

// LDVProcessingActivity is one disclosure as an LDV processing record.
// Attributes hold the dpl.core attributes (the subject by pseudonym), the
// dpl.spoor.* extension and the link to the Spoor record
// (dpl.spoor.leaf_index, dpl.spoor.event_id, dpl.spoor.envelope_sha256,
// dpl.spoor.discloser).
type LDVProcessingActivity struct {
	TraceID    string         `json:"traceId"`
	SpanID     string         `json:"spanId"`
	Status     string         `json:"status"`
	Name       string         `json:"name"`
	StartTime  string         `json:"startTime"`
	EndTime    string         `json:"endTime"`
	Attributes map[string]any `json:"attributes"`
}

// LDVQueryResponse is the answer of POST /processing-activities.
// NextCursor is present when more disclosures match.
type LDVQueryResponse struct {
	Metadata             LDVMetadata             `json:"metadata"`
	ProcessingActivities []LDVProcessingActivity `json:"processingActivities"`
	NextCursor           string                  `json:"nextCursor,omitempty"`
}
