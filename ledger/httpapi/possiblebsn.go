package httpapi

import (
	"fmt"

	"github.com/spoor-ledger/spoor/verifier"
	"github.com/spoor-ledger/spoor/verifier/deskapi"
)

// WarningHeader carries a warning for the desk user beside an answer whose
// body must stay as it is (deskapi).
const WarningHeader = deskapi.WarningHeader

// PossibleBSNWarning is the warning for the second desk user who releases
// an answer in which a disclosure's free text holds a possible BSN
// (verifier.BundlePossibleBSN), or "" when none does. The parent's report
// masks the number; the bundle carries the signed envelope, which still
// holds it: the remedy is a correction by the discloser and an erasure of
// the original (docs/dpia.md).
func PossibleBSNWarning(bundle []byte) string {
	leaves, err := verifier.BundlePossibleBSN(bundle)
	if err != nil || len(leaves) == 0 {
		return ""
	}
	return fmt.Sprintf("possible-bsn: %d disclosure(s) in this answer (leaves %v, at most 20 named) hold a nine-digit number that passes the elfproef "+
		"in their free text; the report masks it, but the signed envelopes in the bundle still hold it: "+
		"ask the discloser for a correction and erase the original before handing the bundle over (docs/dpia.md)", len(leaves), leaves[:min(len(leaves), 20)])
}
