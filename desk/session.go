package desk

import "github.com/spoor-ledger/spoor/internal/websession"

// session is one browser's session at the desk (internal/websession): its
// User is nil until the desk user signs in. Sessions live in the desk's
// memory only: a restart signs everyone out, and no bearer token is ever
// written anywhere but the sealed users file.
type session = websession.Session[*user]
