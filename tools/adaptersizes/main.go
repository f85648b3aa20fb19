// Command adaptersizes reports the size of each router adapter: the code
// lines (not blank, not comments) of its non-test files, how many of them
// use the web framework (name one of its types, functions or methods),
// and how many call into it, counted with go/types. Run it from tools/:
//
//	go run ./adaptersizes
//
// It prints the Markdown table of docs/architecture.md ("Adapter sizes").
package main

import (
	"fmt"
	"go/ast"
	"go/scanner"
	"go/token"
	"go/types"
	"os"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

var frameworks = []string{"github.com/gin-gonic/gin", "github.com/labstack/echo", "github.com/gofiber/fiber", "github.com/go-chi/chi", "github.com/valyala/fasthttp"}

func isFramework(o types.Object) bool {
	if o == nil || o.Pkg() == nil {
		return false
	}
	if pn, ok := o.(*types.PkgName); ok {
		for _, f := range frameworks {
			if strings.HasPrefix(pn.Imported().Path(), f) {
				return true
			}
		}
		return false
	}
	for _, f := range frameworks {
		if strings.HasPrefix(o.Pkg().Path(), f) {
			return true
		}
	}
	return false
}

// adapters are the packages it measures, in the report's order.
var adapters = []string{"ginsse", "echosse", "echosse/echo5", "fibersse", "fibersse/fiber3", "chisse", "fasthttpsse", "core/sseadapter"}

func main() {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo, Dir: ".."}
	var patterns []string
	for _, a := range adapters {
		patterns = append(patterns, "github.com/ssekit/ssekit/"+a)
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slices.SortFunc(pkgs, func(a, b *packages.Package) int {
		return slices.Index(patterns, a.PkgPath) - slices.Index(patterns, b.PkgPath)
	})
	fmt.Println("| module | code lines | lines using the framework | lines calling it |")
	fmt.Println("|---|---:|---:|---:|")
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			fmt.Fprintln(os.Stderr, p.Errors)
			os.Exit(1)
		}
		code, uses, calls := 0, 0, 0
		for _, f := range p.Syntax {
			name := p.Fset.File(f.Pos()).Name()
			src, _ := os.ReadFile(name)
			tf := p.Fset.File(f.Pos())
			lines := map[int]bool{}
			var s scanner.Scanner
			fs := token.NewFileSet()
			s.Init(fs.AddFile(name, -1, len(src)), src, nil, 0)
			for {
				pos, tok, _ := s.Scan()
				if tok == token.EOF {
					break
				}
				if tok == token.SEMICOLON {
					continue
				}
				lines[fs.Position(pos).Line] = true
			}
			code += len(lines)
			use, call := map[int]bool{}, map[int]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					if isFramework(p.TypesInfo.Uses[n]) {
						use[tf.Line(n.Pos())] = true
					}
				case *ast.CallExpr:
					var id *ast.Ident
					switch fn := ast.Unparen(n.Fun).(type) {
					case *ast.Ident:
						id = fn
					case *ast.SelectorExpr:
						id = fn.Sel
					}
					if id != nil {
						if o, ok := p.TypesInfo.Uses[id].(*types.Func); ok && isFramework(o) {
							call[tf.Line(n.Pos())] = true
						}
					}
				}
				return true
			})
			uses += len(use)
			calls += len(call)
		}
		fmt.Printf("| `%s` | %d | %d | %d |\n", strings.TrimPrefix(p.PkgPath, "github.com/ssekit/ssekit/"), code, uses, calls)
	}
}
