// Command run runs the SSE server benchmarks: it builds every server under
// bench/servers, runs each scenario against each one, and writes
// results/latest.json, docs/benchmarks.md and docs/benchmarks-latency.png.
//
//	cd bench && go run ./cmd/run            # full run, under 17 minutes on 2 cores
//	cd bench && go run ./cmd/run -quick     # everything, small, under 4 minutes
//	cd bench && go run ./cmd/run -from results/latest.json   # only render the report again
//	cd bench && go run ./cmd/run -scenarios notify,hotchurn,store -merge   # the scale scenarios, before/after,
//	                                        # merged into the published results
//
// A -quick run writes results/quick.json, results/quick.md and
// results/quick-latency.png instead, so that a smoke run does not replace the
// published numbers. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssekit/ssekit/bench/runner"
)

func main() {
	quick := flag.Bool("quick", false, "run a small version of every scenario (smoke test, < 2 min)")
	servers := flag.String("servers", "", "comma-separated servers to run (default: every directory under servers/)")
	scenarios := flag.String("scenarios", "", "comma-separated scenarios (default: "+strings.Join(runner.Scenarios, ",")+")")
	out := flag.String("out", "", "results JSON (default results/latest.json, or results/quick.json with -quick)")
	md := flag.String("md", "", "markdown report (default ../docs/benchmarks.md, or results/quick.md with -quick); \"-\" for none")
	png := flag.String("png", "", "latency plot (default ../docs/benchmarks-latency.png, or results/quick-latency.png with -quick); \"-\" for none")
	workers := flag.Int("workers", 2, "load generator epoll goroutines")
	srcAddrs := flag.Int("src-addrs", 4, "spread client connections over source addresses 127.0.0.1..127.0.0.N")
	from := flag.String("from", "", "do not run: render the markdown and plot again from this results JSON")
	timeout := flag.Duration("timeout", 0, "stop starting scenarios after this long (default 20m, or 5m with -quick)")
	before := flag.String("before", runner.DefaultBefore, "the scale scenarios also run ssekit built against the core of this commit (ssekit@<commit>); \"\" for none")
	merge := flag.Bool("merge", false, "merge the results into the existing results file (-out): they replace its results of the scenarios run, and the report is rendered from the whole")
	flag.Parse()

	modDir, err := runner.ModuleDir()
	if err != nil {
		fail(err)
	}
	o := runner.Options{
		ModDir: modDir, Plan: runner.FullPlan(), Quick: *quick,
		Workers: *workers, SourceAddrs: *srcAddrs, Timeout: *timeout,
		Servers: split(*servers), Scenarios: split(*scenarios), Before: *before,
	}
	name, docs := "latest", filepath.Join(modDir, "..", "docs")
	mdPath, pngPath := filepath.Join(docs, "benchmarks.md"), filepath.Join(docs, "benchmarks-latency.png")
	if *quick {
		o.Plan = runner.QuickPlan()
		name = "quick"
		mdPath = filepath.Join(modDir, "results", "quick.md")
		pngPath = filepath.Join(modDir, "results", "quick-latency.png")
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
		if *quick {
			o.Timeout = 5 * time.Minute
		}
	}
	jsonPath := filepath.Join(modDir, "results", name+".json")
	abs := func(p string) string {
		if p == "-" {
			return p
		}
		a, err := filepath.Abs(p)
		if err != nil {
			fail(err)
		}
		return a
	}
	if *out != "" {
		jsonPath = abs(*out)
	}
	if *md != "" {
		mdPath = abs(*md)
	}
	if *png != "" {
		pngPath = abs(*png)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	var rep *runner.Report
	if *from != "" {
		if rep, err = runner.ReadJSON(*from); err != nil {
			fail(err)
		}
		if jsonPath, err = filepath.Abs(*from); err != nil {
			fail(err)
		}
	} else {
		if rep, err = runner.Run(ctx, o); err != nil {
			fail(err)
		}
		if *merge {
			base, err := runner.ReadJSON(jsonPath)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				fail(err)
			default:
				if err := runner.Merge(base, rep); err != nil {
					fail(err)
				}
				rep = base
			}
		}
		if err := runner.WriteJSON(jsonPath, rep); err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", jsonPath)
	}
	if pngPath != "-" {
		if err := runner.WritePlot(pngPath, rep); err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", pngPath)
	}
	if mdPath != "-" {
		rel := func(p string) string {
			r, err := filepath.Rel(filepath.Dir(mdPath), p)
			if err != nil {
				return p
			}
			return filepath.ToSlash(r)
		}
		links := runner.Links{JSON: rel(jsonPath), README: rel(filepath.Join(modDir, "README.md"))}
		// The go test benchmarks' results, kept by hand, go into the report.
		var extra []string
		for _, dir := range []string{"micro", "perrequest"} {
			if b, err := os.ReadFile(filepath.Join(modDir, dir, "results.md")); err == nil {
				extra = append(extra, strings.TrimSpace(string(b)))
			}
		}
		links.Extra = strings.Join(extra, "\n\n")
		if pngPath != "-" {
			links.PNG = rel(pngPath)
		}
		if err := os.WriteFile(mdPath, []byte(runner.Markdown(rep, links)), 0o644); err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", mdPath)
	}
	fmt.Fprintf(os.Stderr, "done in %.0fs\n", time.Since(start).Seconds())
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "run:", err)
	os.Exit(1)
}
