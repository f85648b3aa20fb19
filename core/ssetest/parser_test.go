package ssetest

import (
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
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if n < len(r.chunks[0]) {
		r.chunks[0] = r.chunks[0][n:]
	} else {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// readAll reads every event from r, failing the test on errors other than io.EOF.
func readAll(t *testing.T, r io.Reader) (*Parser, []Event) {
	t.Helper()
	p := NewParser(r)
	var events []Event
	for {
		ev, err := p.Next()
		if err == io.EOF {
			return p, events
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		events = append(events, ev)
	}
}

func msg(data, id string) Event { return Event{Type: "message", Data: data, LastEventID: id} }

var parseTests = []struct {
	name string
	in   string
	want []Event
}{
	// Examples from the HTML standard, §9.2.
	{"spec stock ticker", "data: YHOO\ndata: +2\ndata: 10\n\n", []Event{msg("YHOO\n+2\n10", "")}},
	{"spec ids", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
		[]Event{msg("first event", "1"), msg("second event", ""), msg(" third event", "")}},
	{"spec empty data", "data\n\ndata\ndata\n\ndata:", []Event{msg("", ""), msg("\n", "")}},
	{"spec optional space", "data:test\n\ndata: test\n\n", []Event{msg("test", ""), msg("test", "")}},
	{"spec event types", "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
		[]Event{{"add", "73857293", ""}, {"remove", "2153", ""}, {"add", "113411", ""}}},

	// Line endings.
	{"CRLF", "data: a\r\ndata: b\r\n\r\n", []Event{msg("a\nb", "")}},
	{"CR", "data: a\rdata: b\r\r", []Event{msg("a\nb", "")}},
	{"mixed", "data: a\r\n\rdata: b\n\r\ndata: c\r\n", []Event{msg("a", ""), msg("b", "")}},
	{"CR then CRLF then LF", "data: a\r\r\n\n", []Event{msg("a", "")}},
	{"LF CR is two endings", "data: a\n\r", []Event{msg("a", "")}},
	{"CR at EOF", "data: a\r\r", []Event{msg("a", "")}},
	{"blank lines only", "\n\r\n\r\n\n", nil},

	// BOM.
	{"BOM", "\uFEFFdata: a\n\n", []Event{msg("a", "")}},
	{"BOM then blank line", "\uFEFF\ndata: a\n\n", []Event{msg("a", "")}},
	{"only one BOM skipped", "\uFEFF\uFEFFdata: a\n\n", nil},
	{"BOM after start", "data: a\n\n\uFEFFdata: b\n\n", []Event{msg("a", "")}},

	// Fields.
	{"no space", "data:a\n\n", []Event{msg("a", "")}},
	{"one space stripped", "data:  a \n\n", []Event{msg(" a ", "")}},
	{"tab kept", "data:\ta\n\n", []Event{msg("\ta", "")}},
	{"colon in value", "data: a: b\n\n", []Event{msg("a: b", "")}},
	{"empty data field", "data:\n\n", []Event{msg("", "")}},
	{"data without colon", "event: ping\ndata\n\n", []Event{{"ping", "", ""}}},
	{"empty event is message", "event:\ndata: a\n\n", []Event{msg("a", "")}},
	{"event without data not dispatched", "event: x\n\ndata: a\n\n", []Event{msg("a", "")}},
	{"last event field wins", "event: x\nevent: y\ndata: a\n\n", []Event{{"y", "a", ""}}},
	{"unknown field", "foo: bar\ndata: a\nbar\n\n", []Event{msg("a", "")}},
	{"names case-sensitive", "Data: a\nEVENT: b\ndata: c\n\n", []Event{msg("c", "")}},
	{"space before colon", "data : a\ndata: b\n\n", []Event{msg("b", "")}},
	{"comments", ":\n: c\ndata: a\n:x\n\n", []Event{msg("a", "")}},

	// IDs.
	{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []Event{msg("a", "7"), msg("b", "7")}},
	{"id reset", "id: 7\ndata: a\n\nid:\ndata: b\n\n", []Event{msg("a", "7"), msg("b", "")}},
	{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Event{msg("a", "1"), msg("b", "1")}},
	{"id set without event", "id: 3\n\ndata: a\n\n", []Event{msg("a", "3")}},
	{"id after data", "data: a\nid: 4\n\n", []Event{msg("a", "4")}},

	// UTF-8 decoding, one U+FFFD per maximal ill-formed subsequence.
	{"invalid byte", "data: a\xffb\n\n", []Event{msg("a\uFFFDb", "")}},
	{"two invalid bytes", "data: \xff\xfe\n\n", []Event{msg("\uFFFD\uFFFD", "")}},
	{"truncated sequence", "data: \xe2\x82A\n\n", []Event{msg("\uFFFDA", "")}},
	{"truncated 4-byte", "data: \xf0\x9f\x98\n\n", []Event{msg("\uFFFD", "")}},
	{"surrogate", "data: \xed\xa0\x80\n\n", []Event{msg("\uFFFD\uFFFD\uFFFD", "")}},
	{"overlong", "data: \xc0\xaf\n\n", []Event{msg("\uFFFD\uFFFD", "")}},
	{"truncated before LF", "data: \xe2\x82\ndata: \x82\n\n", []Event{msg("\uFFFD\n\uFFFD", "")}},
	{"invalid field name", "d\xffata: a\ndata: b\n\n", []Event{msg("b", "")}},
	{"valid non-ASCII", "event: ünï\ndata: 😀 \uFFFD\n\n", []Event{{"ünï", "😀 \uFFFD", ""}}},

	// End of stream.
	{"incomplete event discarded", "data: a\n\ndata: b\n", []Event{msg("a", "")}},
	{"unterminated line discarded", "data: a\n\ndata: b", []Event{msg("a", "")}},
	{"empty", "", nil},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseReads checks that how reads split the stream never matters.
func TestParseReads(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, r io.Reader) {
				t.Helper()
				_, got := readAll(t, r)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: got %q, want %q", how, got, tt.want)
				}
			}
			check("one byte", iotest.OneByteReader(strings.NewReader(tt.in)))
			check("half", iotest.HalfReader(strings.NewReader(tt.in)))
			check("data+EOF", iotest.DataErrReader(strings.NewReader(tt.in)))
			for i := range len(tt.in) + 1 {
				check(fmt.Sprintf("split at %d", i), &chunkReader{[]string{tt.in[:i], tt.in[i:]}})
			}
		})
	}
}

func TestCRLFSplitAcrossReads(t *testing.T) {
	in := []string{"data: a\r", "\ndata: b\r", "\n\r", "\ndata: c\r", "\r"}
	_, got := readAll(t, &chunkReader{in})
	want := []Event{msg("a\nb", ""), msg("c", "")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	// A CR at the end of the parser's 4 KiB buffer, LF at the start of the next fill.
	for n := 4090; n < 4100; n++ {
		data := strings.Repeat("x", n-len("data: "))
		_, got := readAll(t, strings.NewReader("data: "+data+"\r\n\r\n"))
		if len(got) != 1 || got[0].Data != data {
			t.Fatalf("n=%d: got %d events", n, len(got))
		}
	}
}

func TestLongLines(t *testing.T) {
	for _, n := range []int{4095, 4096, 4097, 64<<10 + 1, 1 << 20} {
		data := strings.Repeat("ab", n/2) + strings.Repeat("c", n%2)
		in := "data: " + data + "\ndata: " + data + "\r\n\n"
		want := []Event{msg(data+"\n"+data, "")}
		got, _ := Parse([]byte(in))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("n=%d: Parse got %d events, wrong data", n, len(got))
		}
		_, got = readAll(t, iotest.HalfReader(strings.NewReader(in)))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("n=%d: HalfReader got %d events, wrong data", n, len(got))
		}
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"retry: 1500\n", 1500 * time.Millisecond, true},
		{"retry:0\n", 0, true},
		{"retry: 007\n", 7 * time.Millisecond, true},
		{"retry: 100\nretry: 200\n", 200 * time.Millisecond, true},
		{"retry: 100\nretry: x\n", 100 * time.Millisecond, true},
		{"retry: 100\n", 100 * time.Millisecond, true}, // no blank line needed
		{"retry\n", 0, false},
		{"retry:\n", 0, false},
		{"retry: \n", 0, false},
		{"retry: 15a\n", 0, false},
		{"retry: -1\n", 0, false},
		{"retry: +1\n", 0, false},
		{"retry: 1.5\n", 0, false},
		{"retry:  100\n", 0, false},
		{"retry: 100 \n", 0, false},
		{"retry: \u0661\u0662\n", 0, false}, // non-ASCII digits
		{"retry: 99999999999999999999\n", 0, false},
		{"Retry: 100\n", 0, false},
	}
	for _, tt := range tests {
		p, _ := readAll(t, strings.NewReader(tt.in))
		got, ok := p.Retry()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: Retry() = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLastEventID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"id: 1\ndata: a\n\n", "1"},
		{"id: 1\n\n", "1"},                         // a blank line commits the ID without an event
		{"id: 1\ndata: a\n\nid: 2\n", "1"},         // not yet committed at EOF
		{"id: 1\ndata: a\n\nid: 2\x00\n\n", "1"},   // NUL ignored
		{"id: 1\ndata: a\n\nid\n\n", ""},           // reset
		{"id: 1\ndata: a\n\ndata: b\n\n", "1"},     // persists
		{"id: 1\n\nid: 2\ndata: b\ndata", "1"},     // incomplete event
		{"id: 1\n\nid: 2\ndata: b\n\r\n\n\n", "2"}, // extra blank lines
	}
	for _, tt := range tests {
		p, _ := readAll(t, strings.NewReader(tt.in))
		if got := p.LastEventID(); got != tt.want {
			t.Errorf("%q: LastEventID() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOnComment(t *testing.T) {
	p := NewParser(strings.NewReader("\uFEFF: hello\n:world\r\n:\r:: x\xff\ndata: a\n\n:after\n"))
	var got []string
	p.OnComment = func(text string) { got = append(got, text) }
	ev, err := p.Next()
	if err != nil || ev != msg("a", "") {
		t.Fatalf("Next() = %q, %v", ev, err)
	}
	want := []string{" hello", "world", "", ": x\uFFFD"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("comments before event: got %q, want %q", got, want)
	}
	if _, err := p.Next(); err != io.EOF {
		t.Fatalf("Next() error = %v, want io.EOF", err)
	}
	if want = append(want, "after"); !reflect.DeepEqual(got, want) {
		t.Errorf("comments: got %q, want %q", got, want)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	p := NewParser(r)
	if ev, err := p.Next(); err != nil || ev != msg("a", "") {
		t.Fatalf("Next() = %q, %v", ev, err)
	}
	for range 2 {
		if _, err := p.Next(); err != boom {
			t.Fatalf("Next() error = %v, want boom", err)
		}
	}
}

func TestEOFIsSticky(t *testing.T) {
	p := NewParser(strings.NewReader("data: a\n\n"))
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := p.Next(); err != io.EOF {
			t.Fatalf("Next() error = %v, want io.EOF", err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	in := []byte(strings.Repeat("event: update\nid: 12345\ndata: {\"hello\":\"world\",\"n\":42}\ndata: second line\n\n", 1000))
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
