package sse_test

import (
	"bytes"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

// FuzzAppendEvent checks that any event either encodes to a frame that a
// WHATWG parser reads back as exactly that event, or is rejected with
// ErrInvalidEvent without touching the buffer.
func FuzzAppendEvent(f *testing.F) {
	seeds := []struct {
		id, typ, comment string
		data             []byte
		retry            int64
	}{
		{"1", "", "", []byte(""), 0},
		{"", "", "", []byte("\n"), 0},
		{"e-2", "update", "hi", []byte("a\r\nb\rc"), 1500},
		{"", "", "", []byte(" lead"), 0},
		{"x", "y", "", []byte("\t\x00\n"), 1},
		{"ü", "ß", "é", []byte("世界\n"), 0},
		{"a\nb", "", "", []byte("x"), 0},
		{"", "a\rb", "", []byte("x"), 0},
		{"", "", "c\nd", []byte("x"), -5},
		{"", "", "", []byte{0xff, 0xfe}, 0},
	}
	for _, s := range seeds {
		f.Add(s.id, s.typ, s.comment, s.data, s.retry)
	}
	f.Fuzz(func(t *testing.T, id, typ, comment string, data []byte, retryMS int64) {
		ev := sse.Event{ID: id, Type: typ, Comment: comment, Data: data, Retry: time.Duration(retryMS) * time.Millisecond}
		if retryMS > 1<<40 || retryMS < -(1<<40) {
			ev.Retry = 0
		}
		dst := []byte("prefix")
		got, err := sse.AppendEvent(dst, ev)
		if err != nil {
			if !errors.Is(err, sse.ErrInvalidEvent) {
				t.Fatalf("error %v does not match ErrInvalidEvent", err)
			}
			if string(got) != "prefix" {
				t.Fatalf("buffer changed on error: %q", got)
			}
			if validEvent(ev) {
				t.Fatalf("valid event %+v rejected: %v", ev, err)
			}
			return
		}
		if !validEvent(ev) {
			t.Fatalf("invalid event %+v encoded as %q", ev, got)
		}
		p := ssetest.NewParser(bytes.NewReader(got[len(dst):]))
		var comments []string
		p.OnComment = func(c string) { comments = append(comments, c) }
		if ev.Data == nil && ev.ID == "" && ev.Type == "" && (ev.Comment != "" || ev.Retry != 0) {
			// A control frame dispatches nothing.
			if e, err := p.Next(); err == nil {
				t.Fatalf("control frame %q dispatched %+v", got, e)
			}
		} else {
			e, err := p.Next()
			if err != nil {
				t.Fatalf("no event parsed from %q: %v", got, err)
			}
			wantType := ev.Type
			if wantType == "" {
				wantType = "message"
			}
			if e.Data != normalizeNewlines(string(ev.Data)) || e.Type != wantType || e.LastEventID != ev.ID {
				t.Fatalf("encoded %+v as %q, parsed back %+v", ev, got, e)
			}
			if _, err := p.Next(); err == nil {
				t.Fatalf("%q holds more than one event", got)
			}
		}
		if ev.Comment != "" && (len(comments) != 1 || comments[0] != " "+ev.Comment) {
			t.Fatalf("comment %q parsed as %q", ev.Comment, comments)
		}
		if r, ok := p.Retry(); ev.Retry > 0 && (!ok || r != ev.Retry.Truncate(time.Millisecond)) {
			t.Fatalf("retry %v parsed as %v, %v", ev.Retry, r, ok)
		}
	})
}

// validEvent is an independent statement of what AppendEvent must accept.
func validEvent(ev sse.Event) bool {
	noBreaks := func(s string, nul bool) bool {
		for _, c := range []byte(s) {
			if c == '\r' || c == '\n' || (nul && c == 0) {
				return false
			}
		}
		return utf8.ValidString(s)
	}
	return noBreaks(ev.ID, true) && noBreaks(ev.Type, true) && noBreaks(ev.Comment, false) &&
		utf8.Valid(ev.Data) && (ev.Retry == 0 || ev.Retry >= time.Millisecond)
}
