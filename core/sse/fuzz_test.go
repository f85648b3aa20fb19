package sse_test

import (
	"bytes"
	"context"
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
		flags            uint8
	}{
		{"1", "", "", []byte(""), 0, 0},
		{"", "", "", []byte("\n"), 0, 0},
		{"e-2", "update", "hi", []byte("a\r\nb\rc"), 1500, 0},
		{"", "", "", []byte(" lead"), 0, 0},
		{"x", "y", "", []byte("\t\x00\n"), 1, 0},
		{"ü", "ß", "é", []byte("世界\n"), 0, 0},
		{"a\nb", "", "", []byte("x"), 0, 0},
		{"", "a\rb", "", []byte("x"), 0, 0},
		{"", "", "c\nd", []byte("x"), -5, 0},
		{"", "", "", []byte{0xff, 0xfe}, 0, 0},
		{"", "", "", nil, 0, uint8(sse.EmptyID | sse.NoData)},
		{"", "", "", nil, 0, uint8(sse.RetryZero | sse.EmptyComment)},
		{"7", "", "", nil, 0, uint8(sse.NoData)},
		{"", "t", "", []byte("x"), 0, uint8(sse.EmptyID)},
	}
	for _, s := range seeds {
		f.Add(s.id, s.typ, s.comment, s.data, s.retry, s.flags)
	}
	f.Fuzz(func(t *testing.T, id, typ, comment string, data []byte, retryMS int64, flags uint8) {
		ev := sse.Event{ID: id, Type: typ, Comment: comment, Data: data, Retry: time.Duration(retryMS) * time.Millisecond, Flags: sse.EventFlags(flags)}
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
		// A first frame sets the last event ID, so that the event's own
		// id field (or its absence) shows.
		const pre = "id: pre\n\n"
		p := ssetest.NewParser(bytes.NewReader(append([]byte(pre), got[len(dst):]...)))
		var comments []string
		p.OnComment = func(c string) { comments = append(comments, c) }
		wantID := "pre"
		switch {
		case ev.ID != "":
			wantID = ev.ID
		case ev.Flags&sse.EmptyID != 0:
			wantID = ""
		}
		if dispatched(ev) {
			e, err := p.Next()
			if err != nil {
				t.Fatalf("no event parsed from %q: %v", got, err)
			}
			wantType := ev.Type
			if wantType == "" {
				wantType = "message"
			}
			if e.Data != normalizeNewlines(string(ev.Data)) || e.Type != wantType || e.LastEventID != wantID {
				t.Fatalf("encoded %+v as %q, parsed back %+v", ev, got, e)
			}
		}
		if e, err := p.Next(); err == nil {
			t.Fatalf("%q dispatched more than expected: %+v", got, e)
		}
		if p.LastEventID() != wantID {
			t.Fatalf("%+v encoded as %q leaves last event ID %q, want %q", ev, got, p.LastEventID(), wantID)
		}
		switch {
		case ev.Comment != "" && (len(comments) != 1 || comments[0] != " "+ev.Comment):
			t.Fatalf("comment %q parsed as %q", ev.Comment, comments)
		case ev.Flags&sse.EmptyComment != 0 && (len(comments) != 1 || comments[0] != ""):
			t.Fatalf("empty comment parsed as %q", comments)
		case ev.Comment == "" && ev.Flags&sse.EmptyComment == 0 && len(comments) != 0:
			t.Fatalf("no comment, parsed %q", comments)
		}
		r, ok := p.Retry()
		switch {
		case ev.Retry > 0 && (!ok || r != ev.Retry.Truncate(time.Millisecond)):
			t.Fatalf("retry %v parsed as %v, %v", ev.Retry, r, ok)
		case ev.Flags&sse.RetryZero != 0 && (!ok || r != 0):
			t.Fatalf("retry 0 parsed as %v, %v", r, ok)
		case ev.Retry == 0 && ev.Flags&sse.RetryZero == 0 && ok:
			t.Fatalf("no retry, parsed %v", r)
		}
	})
}

// dispatched is an independent statement of which valid events a client
// dispatches: all but control frames.
func dispatched(ev sse.Event) bool {
	if ev.Flags&sse.NoData != 0 {
		return false
	}
	hint := ev.Comment != "" || ev.Retry != 0 || ev.Flags&(sse.RetryZero|sse.EmptyComment) != 0
	return !(ev.Data == nil && ev.ID == "" && ev.Type == "" && ev.Flags&sse.EmptyID == 0 && hint)
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
	f := ev.Flags
	flagsOK := f&^(sse.EmptyID|sse.RetryZero|sse.EmptyComment|sse.NoData) == 0 &&
		(f&sse.EmptyID == 0 || ev.ID == "") && (f&sse.RetryZero == 0 || ev.Retry == 0) &&
		(f&sse.EmptyComment == 0 || ev.Comment == "") && (f&sse.NoData == 0 || (ev.Type == "" && len(ev.Data) == 0))
	return noBreaks(ev.ID, true) && noBreaks(ev.Type, true) && noBreaks(ev.Comment, false) &&
		utf8.Valid(ev.Data) && (ev.Retry == 0 || ev.Retry >= time.Millisecond) && flagsOK
}

// FuzzMemoryStoreRoundTrip checks that the MemoryStore, which keeps events
// in their wire form, gives back through After every event it accepted as
// a client reads it, and refuses exactly the events that cannot be encoded.
func FuzzMemoryStoreRoundTrip(f *testing.F) {
	f.Add("", "", []byte(""), int64(0), uint8(0))
	f.Add("update", "hi", []byte("a\r\nb\rc\n"), int64(1500), uint8(0))
	f.Add("", "", []byte(nil), int64(0), uint8(sse.NoData|sse.RetryZero|sse.EmptyComment))
	f.Add("t", "", []byte("x"), int64(0), uint8(sse.EmptyID))
	f.Add("", " c", []byte(" data: x"), int64(1), uint8(0))
	f.Fuzz(func(t *testing.T, typ, comment string, data []byte, retryMS int64, flags uint8) {
		ev := sse.Event{Type: typ, Comment: comment, Data: data, Flags: sse.EventFlags(flags)}
		if retryMS > -(1<<40) && retryMS < 1<<40 {
			ev.Retry = time.Duration(retryMS) * time.Millisecond
		}
		s, err := sse.NewMemoryStore(sse.MemoryStoreOptions{Epoch: "f"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := s.Append(context.Background(), "t", ev)
		stored := ev
		stored.Flags &^= sse.EmptyID // the store's ID replaces it
		if !validEvent(stored) {
			if !errors.Is(err, sse.ErrInvalidEvent) {
				t.Fatalf("Append(%+v): %v, want ErrInvalidEvent", ev, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Append(%+v): %v", ev, err)
		}
		got, err := msAfter(context.Background(), s, 0, []string{"t"}, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("After: %d entries, %v", len(got), err)
		}
		want := stored
		want.ID = e.Event.ID
		want.Retry = ev.Retry.Truncate(time.Millisecond)
		if want.Flags&sse.NoData == 0 {
			want.Data = []byte(normalizeNewlines(string(ev.Data)))
		}
		g := got[0].Event
		if g.ID != want.ID || g.Type != want.Type || g.Comment != want.Comment || g.Retry != want.Retry ||
			g.Flags != want.Flags || string(g.Data) != string(want.Data) || (g.Data == nil) != (want.Flags&sse.NoData != 0) {
			t.Fatalf("appended %+v, After returned %+v (data %q), want %+v (data %q)", ev, g, g.Data, want, want.Data)
		}
	})
}
