// Command modproxy writes a Go module proxy directory (the layout that
// GOPROXY=file:///path serves) holding the repository's modules at one
// version, built from the checkout: what users would download once those
// modules are tagged. The release checks install and test the modules
// from it without a network.
//
//	go run ./modproxy -repo .. -version v0.1.0 -out /tmp/proxy github.com/ssekit/ssekit/core=core ...
//
// Each argument maps a module path to its directory, relative to -repo.
// A module's zip holds its directory's files, without nested modules
// (directories with a go.mod of their own), version control directories
// and testdata of nested modules, as the go command's module zips do.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	repo := flag.String("repo", ".", "the repository's root")
	version := flag.String("version", "", "the version to give every module (a semantic version, like v0.1.0)")
	out := flag.String("out", "", "the proxy directory to write")
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() == 0 {
		log.Fatal("usage: modproxy -repo DIR -version vX.Y.Z -out DIR module=dir ...")
	}
	for _, arg := range flag.Args() {
		mod, dir, ok := strings.Cut(arg, "=")
		if !ok {
			log.Fatalf("argument %q: want module=dir", arg)
		}
		if err := write(*out, mod, filepath.Join(*repo, dir), *version); err != nil {
			log.Fatalf("%s: %v", mod, err)
		}
	}
}

// write adds mod at version, from dir, to the proxy directory out.
func write(out, mod, dir, version string) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if got := modulePath(gomod); got != mod {
		return fmt.Errorf("%s/go.mod declares module %q", dir, got)
	}
	if bytes.Contains(gomod, []byte("\nreplace")) {
		return fmt.Errorf("%s/go.mod has replace directives: a published module must not", dir)
	}
	vdir := filepath.Join(out, escape(mod), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	z, err := zipModule(mod, dir, version)
	if err != nil {
		return err
	}
	info, _ := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	for name, data := range map[string][]byte{version + ".mod": gomod, version + ".zip": z, version + ".info": info} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return err
		}
	}
	return appendList(filepath.Join(vdir, "list"), version)
}

// zipModule returns the module zip of dir: every regular file under
// "mod@version/", nested modules left out.
func zipModule(mod, dir, version string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	prefix := mod + "@" + version + "/"
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			switch d.Name() {
			case ".git", ".hg", ".svn", ".bzr", "node_modules":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, err := zw.Create(prefix + rel)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// modulePath returns the module path that go.mod declares.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// escape is the proxy protocol's case encoding of a module path: each
// upper-case letter becomes "!" and its lower case.
func escape(mod string) string {
	var b strings.Builder
	for _, r := range mod {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return filepath.FromSlash(path.Clean(b.String()))
}

// appendList adds version to the list file, once.
func appendList(file, version string) error {
	data, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, v := range strings.Fields(string(data)) {
		if v == version {
			return nil
		}
	}
	return os.WriteFile(file, append(data, version+"\n"...), 0o644)
}
