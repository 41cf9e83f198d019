package storetest

import (
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// clauseTag is how ledger/store.go tags a clause of the Store contract.
var clauseTag = regexp.MustCompile(`\(clause ([a-z-]+)\)`)

// TestEveryClauseHasATest holds the contract, the suite and the table in
// the package doc together: every clause tagged in ledger/store.go has a
// test, every clause a test names is tagged there, and the doc's table
// lists, for each clause, exactly the tests that name it.
func TestEveryClauseHasATest(t *testing.T) {
	src, err := os.ReadFile("../store.go")
	if err != nil {
		t.Fatal(err)
	}
	var contract []string
	for _, m := range clauseTag.FindAllStringSubmatch(string(src), -1) {
		contract = append(contract, m[1])
	}
	if len(contract) < 5 {
		t.Fatalf("found only %d tagged clauses in ledger/store.go: %v", len(contract), contract)
	}

	tested := map[string][]string{} // clause -> tests that name it
	add := func(name string, clauses []string) {
		for _, c := range clauses {
			tested[c] = append(tested[c], name)
		}
	}
	for _, c := range storeTests {
		add(c.name, c.clauses)
	}
	for _, c := range durabilityTests {
		add(c.name, c.clauses)
	}
	for _, c := range faultTests {
		add(c.name, c.clauses)
	}

	for _, c := range contract {
		if len(tested[c]) == 0 {
			t.Errorf("clause %q of the Store contract has no test in the suite", c)
		}
	}
	for c, names := range tested {
		if !slices.Contains(contract, c) {
			t.Errorf("tests %v name clause %q, which ledger/store.go does not tag", names, c)
		}
	}

	table := docTable(t)
	for _, c := range contract {
		row, ok := table[c]
		if !ok {
			t.Errorf("the package doc's table has no row for clause %q", c)
			continue
		}
		want := slices.Sorted(slices.Values(tested[c]))
		if got := slices.Sorted(slices.Values(row)); !slices.Equal(got, want) {
			t.Errorf("the package doc lists %v for clause %q; the suite's tests that name it are %v", got, c, want)
		}
	}
	for c := range table {
		if !slices.Contains(contract, c) {
			t.Errorf("the package doc's table has a row for %q, which ledger/store.go does not tag", c)
		}
	}
}

// docTable reads the clause table of this package's doc: clause -> tests.
func docTable(t *testing.T) map[string][]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "storetest.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	table := map[string][]string{}
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "-") || strings.TrimSpace(cells[1]) == "clause" {
			continue
		}
		var tests []string
		for _, name := range strings.Split(cells[2], ",") {
			tests = append(tests, strings.TrimSpace(name))
		}
		table[strings.TrimSpace(cells[1])] = tests
	}
	if len(table) == 0 {
		t.Fatal("no clause table in the package doc")
	}
	return table
}
