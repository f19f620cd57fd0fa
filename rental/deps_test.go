package rental

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportsOnlyStandardLibrary keeps the domain free of frameworks: rental
// may import nothing but the standard library, so that fiber, gorm, pion or a
// WeChat SDK can never leak into business rules.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files found in rental/")
	}
	fset := token.NewFileSet()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if !isStdlib(path) {
				t.Errorf("%s imports %q: rental may import only the standard library", f, path)
			}
		}
	}
}

// isStdlib reports whether an import path belongs to the standard library: its
// first element has no dot (module paths always have a domain).
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestIsStdlib(t *testing.T) {
	for path, want := range map[string]bool{
		"errors": true, "net/http": true, "crypto/sha256": true,
		"github.com/gofiber/fiber/v2": false, "gorm.io/gorm": false, "golang.org/x/text": false,
	} {
		if got := isStdlib(path); got != want {
			t.Errorf("isStdlib(%q) = %v, want %v", path, got, want)
		}
	}
}
