package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A server named "<server>@<commit>" (ssekit@b78c6c4) is the bench's own
// server code, from this working tree, built against the core of another
// commit: the runner checks the commit out in a temporary git worktree,
// builds the server in a scratch module whose core is that worktree's,
// and removes the worktree. The server may use only serverkit and the
// core (ssekit and ssekit-detached do), and only core API that the commit
// has. It is how the scale scenarios compare the core before and after a
// change in one run.

// DefaultBefore is the commit the scale scenarios compare with by default:
// the core before the per-topic store and the sharded hub, whose store
// is one ring of 4096 events.
const DefaultBefore = "b78c6c4"

// splitAt splits "ssekit@b78c6c4" into "ssekit" and "b78c6c4".
func splitAt(name string) (base, rev string, ok bool) {
	return strings.Cut(name, "@")
}

// repoRoot is the repository of the bench module: its parent directory.
func repoRoot(modDir string) string { return filepath.Dir(modDir) }

// resolveRev returns the full and the short hash of rev.
func resolveRev(ctx context.Context, modDir, rev string) (full, short string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", repoRoot(modDir), "rev-parse", "--verify", "--quiet", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("no commit %q in %s", rev, repoRoot(modDir))
	}
	full = strings.TrimSpace(string(out))
	out, err = exec.CommandContext(ctx, "git", "-C", repoRoot(modDir), "rev-parse", "--short", full).Output()
	if err != nil {
		return "", "", err
	}
	return full, strings.TrimSpace(string(out)), nil
}

// CanonicalName names a server at a commit by the commit's short hash
// ("ssekit@main" → "ssekit@d608783"), and returns the full hash; a name
// without "@" is returned as it is.
func CanonicalName(ctx context.Context, modDir, name string) (canon, full string, err error) {
	base, rev, ok := splitAt(name)
	if !ok {
		return name, "", nil
	}
	if base == "" || rev == "" {
		return "", "", fmt.Errorf("server %q: want <server>@<commit>", name)
	}
	full, short, err := resolveRev(ctx, modDir, rev)
	if err != nil {
		return "", "", err
	}
	return base + "@" + short, full, nil
}

// buildAt builds the server base against the core of commit into bin. With
// coreTest it also builds the test binary of that core's sse package
// (coreTest + ".test"), if the commit's core has BenchmarkMemoryStoreMemory,
// and returns its path. The worktree is removed before it returns.
func buildAt(ctx context.Context, modDir, outDir, base, commit, bin string, coreTest bool) (testBin string, err error) {
	short := commit[:min(len(commit), 12)]
	wt := filepath.Join(outDir, "tree-"+short)
	root := repoRoot(modDir)
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git("worktree", "add", "--detach", wt, commit); err != nil {
		return "", err
	}
	defer func() {
		// Always remove it, and prune the record of any that a crashed
		// run left behind.
		if rerr := git("worktree", "remove", "--force", wt); rerr != nil {
			_ = os.RemoveAll(wt)
			err = errors.Join(err, git("worktree", "prune"))
		}
	}()
	if _, err := os.Stat(filepath.Join(wt, "core", "go.mod")); err != nil {
		return "", fmt.Errorf("commit %s has no core module", short)
	}
	// A scratch module named like the bench module, holding serverkit and
	// the server as this working tree has them, with the commit's core.
	mod := filepath.Join(outDir, "mod-"+short+"-"+base)
	gomod := fmt.Sprintf("module github.com/ssekit/ssekit/bench\n\ngo 1.26\n\nrequire github.com/ssekit/ssekit/core v0.0.0\n\nreplace github.com/ssekit/ssekit/core => %s\n",
		filepath.Join(wt, "core"))
	for _, dir := range []string{"serverkit", filepath.Join("servers", base)} {
		if err := copyGoFiles(filepath.Join(modDir, dir), filepath.Join(mod, dir)); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./servers/"+base)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s against the core of %s: %v\n%s", base, short, err, out)
	}
	if !coreTest {
		return "", nil
	}
	if err := exec.CommandContext(ctx, "git", "-C", wt, "grep", "-q", "func BenchmarkMemoryStoreMemory", "--", "core/sse").Run(); err != nil {
		return "", nil // the commit's core has no such benchmark
	}
	testBin = bin + "-core.test"
	if err := buildCoreTest(ctx, filepath.Join(wt, "core"), testBin); err != nil {
		return "", err
	}
	return testBin, nil
}

// buildCoreTest builds the test binary of core/sse in coreDir.
func buildCoreTest(ctx context.Context, coreDir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, "./sse")
	cmd.Dir = coreDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c ./sse in %s: %v\n%s", coreDir, err, b)
	}
	return nil
}

// copyGoFiles copies the non-test .go files of src into dst.
func copyGoFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
