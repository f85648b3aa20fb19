package sseclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// chunkReader returns one chunk per Read call, so a test controls exactly
// where reads split the stream.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// splitReader reads b in chunks whose sizes come from sizes, in turn: a
// size byte n means a read of at most n+1 bytes. No sizes: one read.
type splitReader struct {
	b, sizes []byte
	i        int
}

func splitBy(b, sizes []byte) *splitReader { return &splitReader{b: b, sizes: sizes} }

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b))
	if len(r.sizes) > 0 {
		n = min(n, 1+int(r.sizes[r.i%len(r.sizes)]))
		r.i++
	}
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// readAll reads every event of p until an error.
func readAll(p *Parser) ([]Event, error) {
	var events []Event
	for {
		ev, err := p.Next()
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

func msg(data, id string) Event { return Event{Type: "message", Data: data, LastEventID: id} }

var parserTests = []struct {
	name string
	in   string
	want []Event
}{
	{"one event", "id: 1\nevent: add\ndata: x\n\n", []Event{{Type: "add", Data: "x", LastEventID: "1"}}},
	{"multi-line data", "data: a\ndata\ndata:  b\n\n", []Event{msg("a\n\n b", "")}},
	{"id only dispatches nothing", "id: 5\n\ndata: a\n\n", []Event{msg("a", "5")}},
	{"empty id forgets", "id: 5\ndata: a\n\nid\ndata: b\n\n", []Event{msg("a", "5"), msg("b", "")}},
	{"CR", "data: a\rdata: b\r\r", []Event{msg("a\nb", "")}},
	{"CRLF", "data: a\r\n\r\n", []Event{msg("a", "")}},
	{"CR LF split by a blank line", "data: a\r\r\n\n", []Event{msg("a", "")}},
	{"BOM", "\uFEFFdata: a\n\n", []Event{msg("a", "")}},
	{"BOM alone then event", "\uFEFF\ndata: a\n\n", []Event{msg("a", "")}},
	{"partial BOM is a field name", "\xEF\xBBdata: a\n\ndata: b\n\n", []Event{msg("b", "")}},
	{"second BOM kept", "\uFEFF\uFEFFdata: a\n\n", nil},
	{"NUL in data kept", "data: a\x00b\n\n", []Event{msg("a\x00b", "")}},
	{"NUL in id ignored", "id: 1\ndata: a\n\nid: \x00\ndata: b\n\n", []Event{msg("a", "1"), msg("b", "1")}},
	{"invalid UTF-8 replaced", "event: \xff\ndata: a\xffb\xe2\x82\n\n", []Event{{Type: "\uFFFD", Data: "a\uFFFDb\uFFFD", LastEventID: ""}}},
	{"invalid UTF-8 in id", "id: \xc0\ndata: a\n\n", []Event{msg("a", "\uFFFD")}},
	{"type reset after dispatch", "event: x\ndata: a\n\ndata: b\n\n", []Event{{Type: "x", Data: "a"}, msg("b", "")}},
	{"recurring types", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: a\ndata: 3\n\n",
		[]Event{{Type: "a", Data: "1"}, {Type: "b", Data: "2"}, {Type: "a", Data: "3"}}},
	{"unterminated event dropped", "data: a\n\ndata: b\n", []Event{msg("a", "")}},
	{"unterminated line dropped", "data: a\n\ndata: b", []Event{msg("a", "")}},
	{"long data line", "data: " + strings.Repeat("x", 200<<10) + "\n\n", []Event{msg(strings.Repeat("x", 200<<10), "")}},
	{"long data line, space kept", "data:  " + strings.Repeat("y", 70<<10) + "\r\n\r\n", []Event{msg(" "+strings.Repeat("y", 70<<10), "")}},
	{"long comment", ":" + strings.Repeat("c", 100<<10) + "\ndata: a\n\n", []Event{msg("a", "")}},
	{"long id", "id: " + strings.Repeat("i", 100<<10) + "\ndata: a\n\n", []Event{msg("a", strings.Repeat("i", 100<<10))}},
	{"long unknown field", "datum: " + strings.Repeat("u", 100<<10) + "\ndata: a\n\n", []Event{msg("a", "")}},
	{"long data, new id", "id: 9\ndata: " + strings.Repeat("z", 5000) + "\n\n", []Event{msg(strings.Repeat("z", 5000), "9")}},
	{"many CR-only lines", strings.Repeat("data: a\r", 3000) + "\r", []Event{msg(strings.Repeat("a\n", 2999)+"a", "")}},
}

func TestParser(t *testing.T) {
	for _, tt := range parserTests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, r io.Reader) {
				t.Helper()
				got, err := readAll(NewParser(r))
				if err != io.EOF {
					t.Fatalf("%s: error %v, want io.EOF", how, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: got %.200q, want %.200q", how, got, tt.want)
				}
				if ref := refParse([]byte(tt.in)); !reflect.DeepEqual(ref.events, tt.want) {
					t.Errorf("the reference reads %.200q", ref.events)
				}
			}
			check("whole", strings.NewReader(tt.in))
			check("one byte", iotest.OneByteReader(strings.NewReader(tt.in)))
			check("half", iotest.HalfReader(strings.NewReader(tt.in)))
			check("data+EOF", iotest.DataErrReader(strings.NewReader(tt.in)))
			if len(tt.in) < 200 {
				for i := range len(tt.in) + 1 {
					check(fmt.Sprintf("split at %d", i), &chunkReader{[][]byte{[]byte(tt.in[:i]), []byte(tt.in[i:])}})
				}
			}
		})
	}
}

func TestParseMatchesParser(t *testing.T) {
	in := "id: 1\ndata: a\n\ndata: b\n\n"
	got, err := Parse([]byte(in))
	if want := []Event{msg("a", "1"), msg("b", "1")}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %q, %v; want %q", got, err, want)
	}
}

func TestParserLimits(t *testing.T) {
	big := strings.Repeat("x", 100)
	tests := []struct {
		name              string
		in                string
		maxLine, maxEvent int
		want              []Event
		err               error // nil: io.EOF
	}{
		{"data line at the event limit", "data: " + big + "\n\n", 0, 100, []Event{msg(big, "")}, nil},
		{"data line over the event limit", "data: a\n\ndata: " + big + "x\n\n", 0, 100, []Event{msg("a", "")}, ErrEventTooLarge},
		{"lines add up", "data: " + big[:50] + "\ndata: " + big[:49] + "\n\n", 0, 100, []Event{msg(big[:50]+"\n"+big[:49], "")}, nil},
		{"lines add up over", "data: " + big[:50] + "\ndata: " + big[:50] + "\n\n", 0, 100, nil, ErrEventTooLarge},
		{"a bare data line counts", "data: a\ndata\n\n", 0, 1, nil, ErrEventTooLarge},
		{"a bare data line at the limit", "data: a\ndata\n\n", 0, 2, []Event{msg("a\n", "")}, nil},
		{"data lines ignore the line limit", "data: " + big + "\n\n", 10, 0, []Event{msg(big, "")}, nil},
		{"comment over the line limit", ":" + big + "\n", 100, 0, nil, ErrLineTooLong},
		{"comment at the line limit", ":" + big[1:] + "\ndata: a\n\n", 100, 0, []Event{msg("a", "")}, nil},
		{"id over the line limit", "id: " + big + "\ndata: a\n\n", 100, 0, nil, ErrLineTooLong},
		{"event over the line limit", "event: " + big + "\n", 100, 0, nil, ErrLineTooLong},
		{"unknown field over the line limit", "x" + big + "\n", 100, 0, nil, ErrLineTooLong},
		{"long data over the event limit", "data: " + strings.Repeat("d", 300<<10) + "\n\n", 0, 256 << 10, nil, ErrEventTooLarge},
		{"long data within the event limit", "data: " + strings.Repeat("d", 300<<10) + "\n\n", 100, 1 << 20, []Event{msg(strings.Repeat("d", 300<<10), "")}, nil},
		{"long comment over the line limit", ":" + strings.Repeat("c", 300<<10) + "\n", 256 << 10, 0, nil, ErrLineTooLong},
		{"unterminated long line over the limit", ":" + strings.Repeat("c", 300<<10), 256 << 10, 0, nil, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, how := range []string{"whole", "one byte"} {
				var r io.Reader = strings.NewReader(tt.in)
				if how == "one byte" {
					r = iotest.OneByteReader(r)
				}
				p := NewParser(r)
				p.MaxLineSize, p.MaxEventSize = tt.maxLine, tt.maxEvent
				got, err := readAll(p)
				want := tt.err
				if want == nil {
					want = io.EOF
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s: error %v, want %v", how, err, want)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: got %.100q, want %.100q", how, got, tt.want)
				}
				if _, again := p.Next(); again != err {
					t.Errorf("%s: error not sticky: %v, then %v", how, err, again)
				}
			}
		})
	}
}

func TestParserReset(t *testing.T) {
	p := NewParser(strings.NewReader("retry: 250\nid: 1\ndata: a\n\nid: 2\ndata: b\n"))
	got, err := readAll(p)
	if err != io.EOF || !reflect.DeepEqual(got, []Event{msg("a", "1")}) {
		t.Fatalf("first stream: %q, %v", got, err)
	}
	// The second stream starts afresh, with a BOM of its own, but keeps
	// the last event ID ("2" was never committed) and the retry time.
	p.Reset(strings.NewReader("\uFEFFdata: c\n\nid\n\n"))
	ev, err := p.Next()
	if err != nil || ev != msg("c", "1") {
		t.Fatalf("after Reset: %q, %v", ev, err)
	}
	if d, ok := p.Retry(); d != 250*time.Millisecond || !ok {
		t.Errorf("Retry() = %v, %v after Reset", d, ok)
	}
	if _, err := p.Next(); err != io.EOF {
		t.Fatal(err)
	}
	if id := p.LastEventID(); id != "" {
		t.Errorf("LastEventID() = %q after an empty id", id)
	}
	// An error is dropped by Reset, and so is a long line being read.
	p.MaxLineSize = 10
	p.Reset(strings.NewReader(":" + strings.Repeat("c", 100<<10)))
	if _, err := p.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("error %v, want ErrLineTooLong", err)
	}
	p.Reset(strings.NewReader("data: d\n\n"))
	if ev, err := p.Next(); err != nil || ev != msg("d", "") {
		t.Fatalf("after Reset: %q, %v", ev, err)
	}
}

func TestParserOnComment(t *testing.T) {
	p := NewParser(strings.NewReader("\uFEFF: hi\n:\n:x\xff\r\ndata: a\n\n"))
	var got []string
	p.OnComment = func(c string) { got = append(got, c) }
	if _, err := readAll(p); err != io.EOF {
		t.Fatal(err)
	}
	if want := []string{" hi", "", "x\uFFFD"}; !reflect.DeepEqual(got, want) {
		t.Errorf("comments %q, want %q", got, want)
	}
}

// stuckReader returns no bytes and no error, forever.
type stuckReader struct{ reads int }

func (r *stuckReader) Read([]byte) (int, error) { r.reads++; return 0, nil }

func TestParserNoProgress(t *testing.T) {
	r := &stuckReader{}
	if _, err := NewParser(r).Next(); err != io.ErrNoProgress {
		t.Fatalf("error %v, want io.ErrNoProgress", err)
	}
	if r.reads != 100 {
		t.Errorf("%d reads, want 100", r.reads)
	}
}

// repeatReader serves frame again and again, without end.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.frame[r.off:])
		n += c
		r.off = (r.off + c) % len(r.frame)
	}
	return n, nil
}

func TestParserAllocations(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		max   float64
	}{
		{"ssekit event, small", "id: 3f9a0c1e-%d\ndata: {\"n\":42}\n\n", 1},
		{"typed event, small", "event: update\nid: 3f9a0c1e-%d\ndata: {\"n\":42}\n\n", 1},
		{"same id", "id: x\ndata: {\"n\":42}\n\n%.0d", 1},
		{"no data", "id: 1\ndata\n\n%.0d", 0},
		{"heartbeat and event", ":\n\nevent: update\ndata: {\"n\":42}\ndata: more\n\n%.0d", 1},
		{"64 KiB, new id", "id: %d\ndata: " + strings.Repeat("x", 64<<10) + "\n\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Ten frames with distinct IDs, repeated: each ID differs from
			// the one before.
			var frames []byte
			for i := range 10 {
				frames = fmt.Appendf(frames, tt.frame, i)
			}
			p := NewParser(&repeatReader{frame: frames})
			// Warm up with 256 KiB of events: buffers grow to their size.
			for range 20 + 10*(256<<10)/len(frames) {
				if _, err := p.Next(); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := p.Next(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tt.max {
				t.Errorf("%v allocations per event, want at most %v", allocs, tt.max)
			}
		})
	}
}

func BenchmarkParser(b *testing.B) {
	benchmarks := []struct {
		name  string
		frame string
	}{
		{"small", "id: 3f9a0c1e-%d\ndata: {\"user\":\"ada\",\"n\":42,\"ok\":true}\n\n"},
		{"small-typed", "event: update\nid: 3f9a0c1e-%d\ndata: {\"user\":\"ada\",\"n\":42,\"ok\":true}\n\n"},
		{"multiline", "id: %d\ndata: line one\ndata: line two\ndata: line three\n\n"},
		{"CRLF", "id: %d\r\ndata: {\"user\":\"ada\",\"n\":42,\"ok\":true}\r\n\r\n"},
		{"CR", "id: %d\rdata: {\"user\":\"ada\",\"n\":42,\"ok\":true}\r\r"},
		{"4KiB", "id: %d\ndata: " + strings.Repeat("x", 4<<10) + "\n\n"},
		{"64KiB", "id: %d\ndata: " + strings.Repeat("x", 64<<10) + "\n\n"},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			var frames []byte
			for i := range 10 {
				frames = fmt.Appendf(frames, bm.frame, i)
			}
			p := NewParser(&repeatReader{frame: frames})
			b.SetBytes(int64(len(frames) / 10))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse measures Parse of a whole stream in memory.
func BenchmarkParse(b *testing.B) {
	in := bytes.Repeat([]byte("event: update\nid: 12345\ndata: {\"hello\":\"world\",\"n\":42}\ndata: second line\n\n"), 1000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParserBuffer checks that a stream read a little at a time keeps the
// smallest buffer, and one whose reads fill it gets the largest.
func TestParserBuffer(t *testing.T) {
	frames := strings.Repeat("id: 1\ndata: {\"n\":42}\n\n", 20000)
	slow := NewParser(iotest.HalfReader(&chunkReader{[][]byte{[]byte(frames[:1000]), []byte(frames[1000:1500])}}))
	if _, err := readAll(slow); err != io.EOF {
		t.Fatal(err)
	}
	if len(slow.buf) != minBufSize {
		t.Errorf("a trickling stream's buffer grew to %d", len(slow.buf))
	}
	busy := NewParser(strings.NewReader(frames))
	if _, err := readAll(busy); err != io.EOF {
		t.Fatal(err)
	}
	if len(busy.buf) != maxBufSize {
		t.Errorf("a busy stream's buffer is %d, want %d", len(busy.buf), maxBufSize)
	}
}
