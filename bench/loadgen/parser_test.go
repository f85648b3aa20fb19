package loadgen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/bench/serverkit"
)

type recorder struct {
	status int
	heads  int
	events []string
	resets []string
}

func (r *recorder) onReset(reason []byte) { r.resets = append(r.resets, string(reason)) }

func (r *recorder) onHead(status int) { r.status = status; r.heads++ }
func (r *recorder) onEvent(ts int64, seq uint64, ok bool) {
	r.events = append(r.events, fmt.Sprintf("%d/%d/%v", ts, seq, ok))
}

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// TestParserEverySplit feeds a response split at every byte (and in two
// reads at every pair of places for a shorter one) and expects the same
// events every time.
func TestParserEverySplit(t *testing.T) {
	body := ": ok\nid: e-0\n\n" +
		"id: e-1\ndata: 1700000000000000001 1 " + strings.Repeat("x", 200) + "\n\n" +
		"event:message\ndata:1700000000000000002 2 xx\r\n\r\n" +
		"id: e-3\ndata: {\"reason\":\"dropped\"}\n\n" +
		"event: sse-reset\ndata: {\"reason\":\"evicted\"}\n\n" +
		"data: {\"reason\":\"replay-limit\"}\nevent:sse-reset\n\n" +
		"data: 1700000000000000004 4\ndata: second line\n\n" +
		"retry: 10\n\n"
	// Chunks that split events and lines anywhere.
	var resp strings.Builder
	resp.WriteString(head)
	for i := 0; i < len(body); i += 37 {
		resp.WriteString(chunk(body[i:min(i+37, len(body))]))
	}
	resp.WriteString("0\r\n\r\n")
	want := "[1700000000000000001/1/true 1700000000000000002/2/true 0/0/false 0/0/false 0/0/false 1700000000000000004/4/true]"
	wantResets := "[evicted replay-limit]"
	in := resp.String()
	for cut := 0; cut <= len(in); cut++ {
		var s stream
		r := &recorder{}
		s.feed([]byte(in[:cut]), r)
		s.feed([]byte(in[cut:]), r)
		if got := fmt.Sprint(r.events); got != want || r.status != 200 || r.heads != 1 {
			t.Fatalf("cut %d: status %d heads %d events %s, want %s", cut, r.status, r.heads, got, want)
		}
		if got := fmt.Sprint(r.resets); got != wantResets {
			t.Fatalf("cut %d: resets %s, want %s", cut, got, wantResets)
		}
		if id := string(s.id[:s.idLen]); id != "e-3" {
			t.Fatalf("cut %d: last id %q", cut, id)
		}
	}
	// Byte by byte.
	var s stream
	r := &recorder{}
	for i := range len(in) {
		s.feed([]byte{in[i]}, r)
	}
	if got := fmt.Sprint(r.events); got != want {
		t.Fatalf("byte by byte: %s", got)
	}
}

func TestParserIdentityBodyAndStatus(t *testing.T) {
	var s stream
	r := &recorder{}
	s.feed([]byte("HTTP/1.0 200 OK\r\n\r\ndata: 5 6 x\n\n"), r)
	if fmt.Sprint(r.events) != "[5/6/true]" {
		t.Fatal(r.events)
	}
	s = stream{}
	r = &recorder{}
	s.feed([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n"), r)
	if r.status != 404 || len(r.events) != 0 {
		t.Fatal(r.status, r.events)
	}
}

func TestParseTSSeq(t *testing.T) {
	for in, want := range map[string]string{
		"1 2 xx": "1 2 true", "1 2": "1 2 true", "12": "0 0 false", " 1 2": "0 0 false",
		"1 x": "0 0 false", "1 2x": "0 0 false", "": "0 0 false",
	} {
		ts, seq, ok := parseTSSeq([]byte(in))
		if got := fmt.Sprint(ts, seq, ok); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestHist(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i) * int64(time.Millisecond))
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 1: time.Second} {
		got := h.Quantile(q)
		if d := got - want; d < -want/50 || d > want/50 {
			t.Errorf("q%v = %v, want %v ± 2%%", q, got, want)
		}
	}
	if h.Max() != time.Second || h.Count() != 1000 {
		t.Error(h.Max(), h.Count())
	}
	var small Hist
	small.Record(-5)
	small.Record(3000)
	if small.Quantile(0.5) != 0 || small.Quantile(1) != 3*time.Microsecond {
		t.Error(small.Quantile(0.5), small.Quantile(1))
	}
	for us := uint64(0); us < 1<<22; us += 977 {
		mid := bucketMid(bucketOf(us))
		if d := mid - float64(us); d < -float64(us)/60-1 || d > float64(us)/60+1 {
			t.Fatalf("bucket of %d µs has middle %v", us, mid)
		}
	}
}

// TestPayloadContract checks that what serverkit builds is what the
// generator reads.
func TestPayloadContract(t *testing.T) {
	for _, size := range []int{0, 10, 48, 256, 70000} {
		before := time.Now().UnixNano()
		data := serverkit.Payload(123456789, size)
		ts, seq, ok := parseTSSeq(data)
		if !ok || seq != 123456789 || ts < before || ts > time.Now().UnixNano() {
			t.Fatalf("size %d: %q parsed as %d %d %v", size, data[:min(len(data), 48)], ts, seq, ok)
		}
		if len(data) < size || (size > 40 && len(data) != size) || strings.ContainsAny(string(data), "\r\n") {
			t.Fatalf("size %d: got %d bytes", size, len(data))
		}
	}
}
