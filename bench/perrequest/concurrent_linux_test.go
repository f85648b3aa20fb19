package perrequest

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// concurrentStreams, tokensPerStream and tokenPace shape
// BenchmarkConcurrent.
const (
	concurrentStreams = 1000
	tokensPerStream   = 20
	tokenPace         = 5 * time.Millisecond
)

// BenchmarkConcurrent runs 1000 streams at once, each sending 20 tokens
// 5ms apart (a model's pace), read over loopback by 1000 clients that
// discard them. The server runs in a process of its own (this test binary,
// started again), so that its CPU time is its own: one op is the 1000
// streams, from their requests to their ends, over connections kept from
// op to op, and server-cpu-ms/op is the server process's user + system
// time per op (from /proc, in 10ms ticks), server-cpu-µs/event the same
// per event. Wall time (ns/op) is mostly the pacing, and the clients'
// share of the two CPUs.
func BenchmarkConcurrent(b *testing.B) {
	for _, l := range libs {
		b.Run(l.name, func(b *testing.B) {
			base, pid := startServer(b, l.name)
			tr := &http.Transport{MaxIdleConnsPerHost: concurrentStreams}
			client := &http.Client{Transport: tr}
			b.Cleanup(tr.CloseIdleConnections)
			url := fmt.Sprintf("%s/?n=%d&pace=%s", base, tokensPerStream, tokenPace)
			run := func() {
				var wg sync.WaitGroup
				errs := make(chan error, concurrentStreams)
				for range concurrentStreams {
					wg.Go(func() {
						if n, err := get(client, url); err != nil {
							errs <- err
						} else if n < int64(tokensPerStream*len("data: hello\n\n")) {
							errs <- fmt.Errorf("a stream of %d bytes: too short for %d tokens", n, tokensPerStream)
						}
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			run() // open the connections outside the timing
			b.ResetTimer()
			cpu0 := processCPU(b, pid)
			for range b.N {
				run()
			}
			cpu := processCPU(b, pid) - cpu0
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "server-cpu-ms/op")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*concurrentStreams*tokensPerStream), "server-cpu-µs/event")
		})
	}
}

// startServer starts a server process that serves the lib called name,
// and returns its base URL and process ID. It is stopped when tb ends.
func startServer(tb testing.TB, name string) (base string, pid int) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+name)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close() // the server exits when its standard input ends
		if err := cmd.Wait(); err != nil {
			tb.Errorf("server process: %v", err)
		}
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("server process: %v", err)
	}
	return "http://" + strings.TrimSpace(addr), cmd.Process.Pid
}

// processCPU returns the user + system time of process pid, from
// /proc/<pid>/stat, counted in clock ticks of 10ms (USER_HZ is 100 on
// Linux).
func processCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
