//go:build !js

package report

// The audit's check names, part of the one table of labels.go. This file
// and audit.go are left out of a js/wasm build: the audit engine they name
// brings the tiles client and net/http, about a megabyte of the parent's
// page (spoor verify-page), which renders only the inzage report.

import "github.com/spoor-ledger/spoor/verifier/audit"

// checkLabels names the audit's checks (audit.Checks).
var checkLabels = map[audit.Check]string{
	audit.CheckCheckpointSignature:   "Handtekening van een checkpoint",
	audit.CheckCheckpointSequence:    "Volgorde van de checkpoints",
	audit.CheckCheckpointConsistency: "Checkpoints onderling",
	audit.CheckCheckpointRoot:        "Boom tegen checkpoint",
	audit.CheckWitnessPolicy:         "Getuigd checkpoint tegen het getuigenbeleid",
	audit.CheckLeafMissing:           "Ontbrekend leaf record",
	audit.CheckLeafRecord:            "Onleesbaar leaf record",
	audit.CheckLeafTile:              "Leaf record tegen opgeslagen tegel",
	audit.CheckLeafBeyondCheckpoint:  "Leaf record voorbij het laatste checkpoint",
	audit.CheckIntegratedAt:          "Tijd van vastleggen loopt terug",
	audit.CheckWitnessedTime:         "Tijd van vastleggen tegen de tijd van de getuigen",
	audit.CheckBodyHash:              "Opgeslagen bericht gewijzigd",
	audit.CheckBodyUnreadable:        "Opgeslagen bericht onleesbaar",
	audit.CheckBodyMissing:           "Opgeslagen bericht ontbreekt",
	audit.CheckCovenant:              "Convenantversie",
	audit.CheckCovenantIndex:         "Verwijzing naar convenantversie",
	audit.CheckSignature:             "Handtekening van een verstrekking",
	audit.CheckEventID:               "Dubbel vastgelegde verstrekking",
	audit.CheckRetentionOverdue:      "Bewaartermijn verstreken, bericht niet verwijderd",
	audit.CheckFindings:              "Opgeslagen bevindingen",
	audit.CheckTombstone:             "Verwijderingsbericht (tombstone)",
	audit.CheckTombstoneRule:         "Regel van een verwijderingsbericht",
	audit.CheckTombstoneEarly:        "Verwijderd voor het einde van de bewaartermijn",
	audit.CheckErasureDecision:       "Besluit tot verwijdering tegen het logboek",
	audit.CheckAnswer:                "Antwoord op een inzageverzoek",
	audit.CheckIndexHead:             "Stand van de index per kind",
	audit.CheckIndexRecompute:        "Index per kind opnieuw berekend",
}
