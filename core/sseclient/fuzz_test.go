package sseclient

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// FuzzParser holds Parser to the reference reading of any byte stream, cut
// into reads of any sizes, with and without limits: the same events, last
// event ID, reconnection time and comments; with limits, the events before
// the first line over a limit and an error that says which.
func FuzzParser(f *testing.F) {
	seeds := []string{
		"data: a\n\n",
		"\uFEFFid: 1\r\nevent: x\r\ndata: a\r\ndata\r\n\r\n",
		"data: a\rdata: b\r\rid\r\r",
		"data: a\r\r\n\n:c\n",
		"\xEF\xBB\xBFdata: \xff\xfe\n\n",
		"id: 1\x002\ndata: a\n\nretry: 0150\n\nretry: 99999999999999999\n",
		"data: \xe2\x82\ndata: \x82\n\n",
		"\uFEFF\uFEFFdata: x\n\n",
		"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: a\ndata: 3\n\n",
		"data:" + strings.Repeat("x", 5000) + "\n\n",
		":" + strings.Repeat("\r", 300) + "data\n\n",
		"data: \x00\n\nid: \x00\n\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), []byte{byte(i * 7), 0, 200, 3}, uint16(0), uint16(0))
		f.Add([]byte(s), []byte{0}, uint16(4), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, maxLine, maxEvent uint16) {
		want := refParse(in)
		p := NewParser(splitBy(in, sizes))
		p.MaxLineSize, p.MaxEventSize = int(maxLine), int(maxEvent)
		var comments []string
		p.OnComment = func(c string) { comments = append(comments, c) }
		got, err := readAll(p)

		over, before := refLimits(in, int(maxLine), int(maxEvent))
		switch {
		case errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrEventTooLarge):
			// A limit may also be met by the unterminated end of the
			// stream, which the reference never reads.
			if over && len(got) != before {
				t.Fatalf("%.200q: %d events before the error %v, want %d", in, len(got), err, before)
			}
			if len(got) > len(want.events) || !slices.Equal(got, want.events[:len(got)]) {
				t.Fatalf("%.200q: events before the error %v are %q, want a prefix of %q", in, err, got, want.events)
			}
			return
		case err != io.EOF:
			t.Fatalf("%.200q: error %v", in, err)
		case over:
			t.Fatalf("%.200q: no error, but a line is over the limits (line %d, event %d)", in, maxLine, maxEvent)
		}
		if !reflect.DeepEqual(got, want.events) {
			t.Fatalf("%.200q:\n got %q\nwant %q", in, got, want.events)
		}
		if p.LastEventID() != want.lastID {
			t.Fatalf("%.200q: LastEventID %q, want %q", in, p.LastEventID(), want.lastID)
		}
		if r, ok := p.Retry(); r != want.retry || ok != want.retrySet {
			t.Fatalf("%.200q: Retry %v %v, want %v %v", in, r, ok, want.retry, want.retrySet)
		}
		if !reflect.DeepEqual(comments, want.comments) {
			t.Fatalf("%.200q: comments %q, want %q", in, comments, want.comments)
		}
	})
}

// FuzzRoundTrip encodes events with sse.AppendEvent, ssekit's encoder, and
// checks that Parser reads them back as sent, whatever the reads: the data
// with line breaks turned into LF, the type, and the ID, which a following
// event without one keeps.
func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "", []byte("hello"), uint8(1), []byte{3})
	f.Add("e-2", "update", []byte("a\r\nb\rc\n"), uint8(2), []byte{0, 9})
	f.Add("", "", []byte(""), uint8(1), []byte{})
	f.Add("ü", "ß", []byte("世界\n\n"), uint8(3), []byte{1})
	f.Add("7", "x", []byte(strings.Repeat("0123456789abcdef", 300)), uint8(40), []byte{255, 17})
	f.Add("id", "", []byte("\x00 \t:"), uint8(1), []byte{2})
	f.Fuzz(func(t *testing.T, id, typ string, data []byte, repeat uint8, sizes []byte) {
		// Repeated, the payload can outgrow the parser's largest buffer.
		payload := append([]byte(nil), data...)
		for range int(repeat) % 64 {
			if len(payload) > 80<<10 {
				break
			}
			payload = append(payload, data...)
		}
		events := []sse.Event{
			{Flags: sse.NoData, ID: "pre", Comment: "opening"},
			{ID: id, Type: typ, Data: payload, Retry: 1500 * time.Millisecond},
			{Data: []byte("after")},
		}
		if id == "" {
			events[1].Flags = sse.EmptyID
		}
		var stream []byte
		for _, ev := range events {
			var err error
			if stream, err = sse.AppendEvent(stream, ev); err != nil {
				if !errors.Is(err, sse.ErrInvalidEvent) {
					t.Fatalf("AppendEvent: %v", err)
				}
				return
			}
		}
		p := NewParser(splitBy(stream, sizes))
		got, err := readAll(p)
		if err != io.EOF {
			t.Fatalf("%.200q: %v", stream, err)
		}
		wantType := typ
		if typ == "" {
			wantType = "message"
		}
		norm := strings.ReplaceAll(strings.ReplaceAll(string(payload), "\r\n", "\n"), "\r", "\n")
		want := []Event{{Type: wantType, Data: norm, LastEventID: id}, {Type: "message", Data: "after", LastEventID: id}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%.200q:\n got %.300q\nwant %.300q", stream, got, want)
		}
		if r, ok := p.Retry(); r != 1500*time.Millisecond || !ok {
			t.Fatalf("Retry %v %v", r, ok)
		}
	})
}

// FuzzLongLines holds Parser to the reference on streams with a line of
// up to 200 KiB, longer than its largest buffer: prefix, then n bytes of
// filler, then suffix, read in chunks of any sizes.
func FuzzLongLines(f *testing.F) {
	f.Add([]byte("data: "), byte('x'), uint32(70000), []byte("\n\n"), []byte{255, 7}, uint16(0), uint16(0))
	f.Add([]byte(":"), byte('c'), uint32(66000), []byte("\r\ndata: a\r\n\r\n"), []byte{}, uint16(0), uint16(0))
	f.Add([]byte("id: "), byte('7'), uint32(131072), []byte("\rdata\r\r"), []byte{3}, uint16(0), uint16(0))
	f.Add([]byte("data:"), byte(0xff), uint32(65530), []byte("\n\ndata: b\n\n"), []byte{200}, uint16(0), uint16(1000))
	f.Add([]byte("data: a\n"), byte('\r'), uint32(70000), []byte("data: b\n\n"), []byte{}, uint16(0), uint16(0))
	f.Add([]byte("event: "), byte('e'), uint32(100000), []byte("\ndata: x\n\n"), []byte{99}, uint16(5000), uint16(0))
	f.Fuzz(func(t *testing.T, prefix []byte, filler byte, n uint32, suffix, sizes []byte, maxLine, maxEvent uint16) {
		in := append(append(append([]byte(nil), prefix...), bytes.Repeat([]byte{filler}, int(n%(200<<10)))...), suffix...)
		want := refParse(in)
		p := NewParser(splitBy(in, sizes))
		p.MaxLineSize, p.MaxEventSize = int(maxLine), int(maxEvent)
		got, err := readAll(p)
		over, before := refLimits(in, int(maxLine), int(maxEvent))
		switch {
		case errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrEventTooLarge):
			if (over && len(got) != before) || len(got) > len(want.events) || !slices.Equal(got, want.events[:len(got)]) {
				t.Fatalf("%d events before %v, want %d, a prefix of the reference's %d", len(got), err, before, len(want.events))
			}
			return
		case err != io.EOF:
			t.Fatalf("error %v", err)
		case over:
			t.Fatalf("no error, but a line is over the limits (line %d, event %d)", maxLine, maxEvent)
		}
		if !slices.Equal(got, want.events) || p.LastEventID() != want.lastID {
			t.Fatalf("got %d events (last ID %.40q), want %d (last ID %.40q)", len(got), p.LastEventID(), len(want.events), want.lastID)
		}
	})
}
