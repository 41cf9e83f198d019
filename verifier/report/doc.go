// Package report renders Spoor's Dutch reports for people: the parent's (or
// young person's) inzage report of a verified bundle (WriteInzage) and the
// FG's audit report (WriteAudit). Each is one self-contained, printable HTML
// page: inline CSS, no scripts, no external assets.
//
// Data flows one way into it: the verifier checks a bundle against the
// pinned keys (verifier.VerifyBundle) or audits a whole log
// (audit.Run), and this package only lays out what came back; it never
// verifies, and it shows nothing the verifier did not check. The verifier
// does not import it, so a tool that only verifies carries no templates.
//
// Every Dutch word the reports show for one of Spoor's own ids (an audit
// check, an erasure status, a withholding ground, a relation, a channel, a
// consent giver, a kind of party, a special category) is in one table,
// labels.go, tested to be complete; what a covenant names comes from the
// covenant, and the names of its rules from events.FindingLabelNL.
package report
