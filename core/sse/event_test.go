package sse_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/ssekit/ssekit/core/ssetest"
)

func TestAppendEventWire(t *testing.T) {
	tests := []struct {
		name string
		ev   sse.Event
		want string
	}{
		{"zero event is an empty message", sse.Event{}, "data: \n\n"},
		{"empty data", sse.Event{Data: []byte{}}, "data: \n\n"},
		{"simple", sse.Event{Data: []byte("hello")}, "data: hello\n\n"},
		{"all fields", sse.Event{ID: "7", Type: "update", Data: []byte("x"), Retry: 1500 * time.Millisecond, Comment: "c"},
			": c\nretry: 1500\nid: 7\nevent: update\ndata: x\n\n"},
		{"LF", sse.Event{Data: []byte("a\nb")}, "data: a\ndata: b\n\n"},
		{"CR", sse.Event{Data: []byte("a\rb")}, "data: a\ndata: b\n\n"},
		{"CRLF", sse.Event{Data: []byte("a\r\nb")}, "data: a\ndata: b\n\n"},
		{"LFCR is two breaks", sse.Event{Data: []byte("a\n\rb")}, "data: a\ndata: \ndata: b\n\n"},
		{"trailing LF", sse.Event{Data: []byte("a\n")}, "data: a\ndata: \n\n"},
		{"only LF", sse.Event{Data: []byte("\n")}, "data: \ndata: \n\n"},
		{"leading space kept", sse.Event{Data: []byte(" a")}, "data:  a\n\n"},
		{"NUL in data", sse.Event{Data: []byte("a\x00b")}, "data: a\x00b\n\n"},
		{"comment only", sse.Event{Comment: "ping"}, ": ping\n\n"},
		{"retry only", sse.Event{Retry: time.Second}, "retry: 1000\n\n"},
		{"retry truncates to ms", sse.Event{Retry: 1500*time.Microsecond + 1, Data: []byte("x")}, "retry: 1\ndata: x\n\n"},
		{"type only dispatches", sse.Event{Type: "ping"}, "event: ping\ndata: \n\n"},
		{"non-ASCII", sse.Event{ID: "é", Data: []byte("héllo 世界")}, "id: é\ndata: héllo 世界\n\n"},
		{"empty id resets the last id", sse.Event{Flags: sse.EmptyID, Data: []byte("x")}, "id\ndata: x\n\n"},
		{"empty id alone", sse.Event{Flags: sse.EmptyID | sse.NoData}, "id\n\n"},
		{"id without data", sse.Event{ID: "7", Flags: sse.NoData}, "id: 7\n\n"},
		{"retry 0", sse.Event{Flags: sse.RetryZero}, "retry: 0\n\n"},
		{"bare comment", sse.Event{Flags: sse.EmptyComment}, ":\n\n"},
		{"retry 0 with data", sse.Event{Flags: sse.RetryZero, Data: []byte("x")}, "retry: 0\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := sse.AppendEvent(prefix, tt.ev)
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			if string(got) != "prefix"+tt.want {
				t.Errorf("AppendEvent = %q, want %q", got[len(prefix):], tt.want)
			}
		})
	}
}

func TestAppendEventRejects(t *testing.T) {
	tests := []struct {
		name  string
		ev    sse.Event
		field string
	}{
		{"id LF", sse.Event{ID: "a\nb"}, "id"},
		{"id CR", sse.Event{ID: "a\rb"}, "id"},
		{"id NUL", sse.Event{ID: "a\x00b"}, "id"},
		{"id bad UTF-8", sse.Event{ID: "a\xffb"}, "id"},
		{"type LF", sse.Event{Type: "a\n"}, "event"},
		{"type CR", sse.Event{Type: "\ra"}, "event"},
		{"type NUL", sse.Event{Type: "a\x00"}, "event"},
		{"comment LF", sse.Event{Comment: "a\nb"}, "comment"},
		{"comment CR", sse.Event{Comment: "a\rb"}, "comment"},
		{"data bad UTF-8", sse.Event{Data: []byte{'a', 0xc3}}, "data"},
		{"negative retry", sse.Event{Retry: -time.Second}, "retry"},
		{"sub-millisecond retry", sse.Event{Retry: time.Microsecond}, "retry"},
		{"EmptyID with an id", sse.Event{ID: "1", Flags: sse.EmptyID}, "id"},
		{"RetryZero with a retry", sse.Event{Retry: time.Second, Flags: sse.RetryZero}, "retry"},
		{"EmptyComment with a comment", sse.Event{Comment: "c", Flags: sse.EmptyComment}, "comment"},
		{"NoData with data", sse.Event{Data: []byte("x"), Flags: sse.NoData}, "data"},
		{"NoData with a type", sse.Event{Type: "t", Flags: sse.NoData}, "data"},
		{"unknown flag", sse.Event{Flags: 1 << 7}, "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := sse.AppendEvent(dst, tt.ev)
			if !errors.Is(err, sse.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
			var fe *sse.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("err = %#v, want a FieldError for %q", err, tt.field)
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q on error", got)
			}
		})
	}
}

// normalizeNewlines is what a client does to line breaks in data.
func normalizeNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// TestAppendEventRoundTrip checks through the WHATWG parser the round-trip
// payloads of docs/protocol.md P7.
func TestAppendEventRoundTrip(t *testing.T) {
	payloads := []string{
		"", "\n", "a\n", "a\r\nb\rc", " leading space", "\ttab", "nul\x00byte",
		strings.Repeat("x", 64<<10), "non-ASCII: ünïcödé ✓ 世界", "\r\n\r\n", "a\n\nb",
		"\ufeffBOM inside data",
	}
	for _, p := range payloads {
		roundTrip(t, sse.Event{ID: "id-1", Type: "t", Data: []byte(p)})
	}
}

func roundTrip(t *testing.T, ev sse.Event) {
	t.Helper()
	frame, err := sse.AppendEvent(nil, ev)
	if err != nil {
		t.Fatalf("AppendEvent(%q): %v", ev.Data, err)
	}
	got, err := ssetest.Parse(frame)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("payload %q: parsed %d events from %q, want 1", ev.Data, len(got), frame)
	}
	wantType := ev.Type
	if wantType == "" {
		wantType = "message"
	}
	if got[0].Data != normalizeNewlines(string(ev.Data)) || got[0].Type != wantType || got[0].LastEventID != ev.ID {
		t.Fatalf("round trip of %+v gave %+v", ev, got[0])
	}
}

func TestEventValidate(t *testing.T) {
	ok := sse.Event{ID: "1", Type: "x", Data: []byte("y"), Comment: "z", Retry: time.Second}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
	bad := sse.Event{ID: "1\n"}
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted an id with LF")
	}
}
