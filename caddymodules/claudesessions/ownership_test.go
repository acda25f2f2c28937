package claudesessions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoModuleOpensSessionsUnscoped: a request reaches a session only
// through sessions.Store.Open, which checks the owner; the store offers
// nothing else that acts on a session's files, history, quota or
// activity. Its one way around the check, OpenUnscoped, is for the
// gateway's own maintenance (the admin console's domain package), so no
// Caddy module, the handlers of user requests, may call it.
func TestNoModuleOpensSessionsUnscoped(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "OpenUnscoped" {
				t.Errorf("%s: a Caddy module calls OpenUnscoped; requests must open sessions with Open(ctx, id, userID)", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked %d files of caddymodules/, expected the whole tree", checked)
	}
}
