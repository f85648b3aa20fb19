package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/ssekit/bench/serverkit"
)

// Server is a built server binary.
type Server struct {
	Name string
	Bin  string
	Info serverkit.Info
	// Commit is the full hash of the commit whose core a server named
	// "<server>@<commit>" was built against; "" for this working tree.
	Commit string
	// CoreTest is the test binary of the core/sse package the server was
	// built against (BuildServers with coreTests), or "" when that core has
	// no BenchmarkMemoryStoreMemory.
	CoreTest string
}

// ModuleDir finds the bench module's directory from the working
// directory: the directory itself or one above it, or ./bench.
func ModuleDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	isBench := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		return err == nil && bytes.Contains(b, []byte("module github.com/ssekit/ssekit/bench\n"))
	}
	if isBench(filepath.Join(wd, "bench")) {
		return filepath.Join(wd, "bench"), nil
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isBench(dir) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("runner: cannot find the bench module (run from the repository or bench/)")
		}
	}
}

// ServerNames lists the servers: the directories under servers/.
func ServerNames(modDir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(modDir, "servers"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Build builds the named servers into outDir with one go build, then
// starts each once to read its /debug/info.
func Build(ctx context.Context, modDir, outDir string, names []string) ([]*Server, error) {
	return BuildServers(ctx, modDir, outDir, names, false)
}

// BuildServers is Build for names that may include servers at another
// commit ("ssekit@b78c6c4", see buildAt; the name must be canonical, see
// CanonicalName). With coreTests it also builds the core/sse test binary
// of every core a server named ssekit is built against (Server.CoreTest),
// for the store scenario.
func BuildServers(ctx context.Context, modDir, outDir string, names []string, coreTests bool) ([]*Server, error) {
	var here []string
	for _, n := range names {
		if _, _, at := splitAt(n); !at {
			here = append(here, n)
		}
	}
	if len(here) > 0 {
		args := []string{"build", "-o", outDir + string(filepath.Separator)}
		for _, n := range here {
			args = append(args, "./servers/"+n)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = modDir
		// The bench module carries its own replace of core, so it builds the
		// same with or without a go.work that lists it.
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	var servers []*Server
	for _, n := range names {
		s := &Server{Name: n, Bin: filepath.Join(outDir, n)}
		base, rev, at := splitAt(n)
		if at {
			full, _, err := resolveRev(ctx, modDir, rev)
			if err != nil {
				return nil, err
			}
			s.Commit = full
			if s.CoreTest, err = buildAt(ctx, modDir, outDir, base, full, s.Bin, coreTests && base == "ssekit"); err != nil {
				return nil, err
			}
		} else if coreTests && n == "ssekit" {
			s.CoreTest = s.Bin + "-core.test"
			if err := buildCoreTest(ctx, filepath.Join(repoRoot(modDir), "core"), s.CoreTest); err != nil {
				return nil, err
			}
		}
		p, err := Start(ctx, s, nil)
		if err != nil {
			return nil, err
		}
		err = p.getJSON("/debug/info", &s.Info)
		p.Kill()
		if err != nil {
			return nil, fmt.Errorf("%s: /debug/info: %w", n, err)
		}
		if s.Info.Name != base {
			return nil, fmt.Errorf("%s: /debug/info names it %q", n, s.Info.Name)
		}
		if at {
			s.Info.Notes += fmt.Sprintf("; this bench's server code on the core of %s", rev)
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// Proc is a running server.
type Proc struct {
	srv    *Server
	cmd    *exec.Cmd
	Addr   string
	log    *bytes.Buffer
	client *http.Client
	exited chan struct{}
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a server on a free port and waits until it answers.
func Start(ctx context.Context, s *Server, env []string) (*Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Bin)
	cmd.Env = append(append(os.Environ(), "PORT="+strconv.Itoa(port)), env...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{
		srv: s, cmd: cmd, Addr: "127.0.0.1:" + strconv.Itoa(port), log: &log,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		exited: make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.Goroutines(); err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start: %s", s.Name, p.logTail())
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s did not answer within 10s: %s", s.Name, p.logTail())
		}
	}
}

func (p *Proc) logTail() string {
	s := strings.TrimSpace(p.log.String())
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}

// Kill ends the server and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.client.CloseIdleConnections()
}

// Alive reports whether the server is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid returns the server's process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

func (p *Proc) get(path string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (p *Proc) getJSON(path string, v any) error {
	b, err := p.get(path, 5*time.Second)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Goroutines reads GET /debug/goroutines.
func (p *Proc) Goroutines() (int, error) {
	b, err := p.get("/debug/goroutines", 2*time.Second)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// errPublishTimeout says the publish request did not finish in time: the
// publisher is blocked (or far behind).
var errPublishTimeout = errors.New("publish did not finish in time")

// Publish asks the server to publish count events of size bytes at rate
// per second, and waits up to timeout for it to finish.
func (p *Proc) Publish(count int, rate float64, size int, timeout time.Duration) (serverkit.PublishResult, error) {
	return p.PublishQuery(count, rate, size, "", timeout)
}

// PublishQuery is Publish with more of the request's query ("&topic=hot",
// for a server with topics).
func (p *Proc) PublishQuery(count int, rate float64, size int, query string, timeout time.Duration) (serverkit.PublishResult, error) {
	var res serverkit.PublishResult
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := fmt.Sprintf("http://%s/publish?count=%d&rate=%g&size=%d%s", p.Addr, count, rate, size, query)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return res, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return res, errPublishTimeout
		}
		return res, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return res, errPublishTimeout
		}
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("publish: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return res, json.Unmarshal(b, &res)
}
