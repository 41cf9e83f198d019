package ledger

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestTableTagsDistinct: every table of the store has its own one-byte tag.
// Two constants with one value compile without a word, and would mix two
// tables' keys (it happened once, when two changes each took 'x').
func TestTableTagsDistinct(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "keys.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	byValue := map[rune]string{}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "tag") {
			return true
		}
		lit, ok := vs.Values[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.CHAR {
			return true
		}
		v, _, _, err := strconv.UnquoteChar(lit.Value[1:len(lit.Value)-1], '\'')
		if err != nil {
			t.Fatal(err)
		}
		n++
		if other, dup := byValue[v]; dup {
			t.Errorf("%s and %s are both %q", other, vs.Names[0].Name, v)
		}
		byValue[v] = vs.Names[0].Name
		return true
	})
	if n < 15 {
		t.Fatalf("found only %d table tags in keys.go", n)
	}
}
