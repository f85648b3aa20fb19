package sse

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one Server-Sent Event.
//
// The zero Event is a message with an empty payload: the client dispatches
// it to onmessage with data "". An event is dispatched unless it is a
// control frame: one with the NoData flag, or one with only a Comment
// and/or a Retry hint (no ID, no Type, a nil Data and no flag other than
// RetryZero and EmptyComment). A control frame's fields still take effect:
// the client takes its id and retry, and ignores its comment.
//
// Empty strings and zero values are not sent. Flags asks for the fields
// that an empty value cannot express: an "id" field with no value, which
// makes the client forget its last event ID, "retry: 0", and a bare ":"
// comment line.
type Event struct {
	// ID is sent in the "id" field and becomes the client's Last-Event-ID.
	// When events are published through a Hub its Store assigns the ID;
	// set ID yourself only when encoding with AppendEvent.
	// It must not contain CR, LF or NUL. Prefer ASCII: some clients mangle
	// other characters when they send Last-Event-ID back.
	ID string

	// Type is the event type ("event" field). Empty means "message", which is
	// what EventSource.onmessage receives. It must not contain CR, LF or NUL.
	Type string

	// Data is the payload. It may contain any valid UTF-8, including CR and
	// LF: each line is sent as its own "data" field. Clients turn CRLF and CR
	// into LF, so those line breaks arrive as LF.
	Data []byte

	// Retry, when positive, tells the client how long to wait before it
	// reconnects. It is sent in whole milliseconds, so it must be zero or at
	// least one millisecond.
	Retry time.Duration

	// Comment is sent as a comment line, which clients ignore. It must not
	// contain CR or LF.
	Comment string

	// Flags asks for fields that the fields above cannot express. Each
	// flag requires its field to be empty; see EventFlags.
	Flags EventFlags
}

// EventFlags are the Event.Flags.
type EventFlags uint8

const (
	// EmptyID sends an "id" field with an empty value: the client forgets
	// its last event ID and sends none when it reconnects. ID must be
	// empty.
	EmptyID EventFlags = 1 << iota

	// RetryZero sends "retry: 0": the client reconnects at once after the
	// stream ends. Retry must be 0.
	RetryZero

	// EmptyComment sends a comment line with no text (":"). Comment must
	// be empty.
	EmptyComment

	// NoData sends no "data" field, so the client dispatches nothing: it
	// only takes the event's id and retry fields. Type and Data must be
	// empty.
	NoData

	allFlags = EmptyID | RetryZero | EmptyComment | NoData
)

// ErrInvalidEvent is the error that every encoding error matches with
// errors.Is. Use errors.As with *FieldError to learn which field was wrong.
var ErrInvalidEvent = errors.New("sse: invalid event")

// FieldError reports an Event field that cannot be encoded.
type FieldError struct {
	Field  string // "id", "event", "data", "retry", "comment" or "flags"
	Reason string
}

func (e *FieldError) Error() string {
	return "sse: invalid event " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidEvent.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidEvent }

// Validate reports whether e can be encoded, without encoding it.
func (e *Event) Validate() error {
	if err := checkField("id", e.ID, true); err != nil {
		return err
	}
	if err := checkField("event", e.Type, true); err != nil {
		return err
	}
	if err := checkField("comment", e.Comment, false); err != nil {
		return err
	}
	if !utf8.Valid(e.Data) {
		return &FieldError{Field: "data", Reason: "not valid UTF-8"}
	}
	if e.Retry < 0 {
		return &FieldError{Field: "retry", Reason: "negative"}
	}
	if e.Retry > 0 && e.Retry < time.Millisecond {
		return &FieldError{Field: "retry", Reason: "below one millisecond"}
	}
	if e.Flags != 0 {
		return e.checkFlags()
	}
	return nil
}

// checkFlags reports a flag whose field is not empty.
func (e *Event) checkFlags() error {
	switch {
	case e.Flags&^allFlags != 0:
		return &FieldError{Field: "flags", Reason: "unknown flag"}
	case e.Flags&EmptyID != 0 && e.ID != "":
		return &FieldError{Field: "id", Reason: "EmptyID is set and ID is not empty"}
	case e.Flags&RetryZero != 0 && e.Retry != 0:
		return &FieldError{Field: "retry", Reason: "RetryZero is set and Retry is not 0"}
	case e.Flags&EmptyComment != 0 && e.Comment != "":
		return &FieldError{Field: "comment", Reason: "EmptyComment is set and Comment is not empty"}
	case e.Flags&NoData != 0 && (e.Type != "" || len(e.Data) > 0):
		return &FieldError{Field: "data", Reason: "NoData is set and Type or Data is not empty"}
	}
	return nil
}

func checkField(name, v string, noNUL bool) error {
	// CR, LF and NUL never occur inside a multi-byte UTF-8 sequence, so a
	// byte scan finds them exactly; the UTF-8 check is needed only when a
	// byte is not ASCII.
	ascii := true
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '\n':
			return &FieldError{Field: name, Reason: "contains LF"}
		case c == '\r':
			return &FieldError{Field: name, Reason: "contains CR"}
		case c == 0 && noNUL:
			return &FieldError{Field: name, Reason: "contains NUL"}
		}
	}
	if !ascii && !utf8.ValidString(v) {
		return &FieldError{Field: name, Reason: "not valid UTF-8"}
	}
	return nil
}

// isControl reports whether e is a control frame, which the client reads
// but does not dispatch (see Event).
func (e *Event) isControl() bool {
	if e.Flags&NoData != 0 {
		return true
	}
	return e.Data == nil && e.ID == "" && e.Type == "" && e.Flags&EmptyID == 0 &&
		(e.Comment != "" || e.Retry != 0 || e.Flags&(RetryZero|EmptyComment) != 0)
}

// AppendEvent appends the wire form of e to dst and returns the extended
// buffer. The frame ends with the blank line that makes the client dispatch
// it. AppendEvent does not allocate when dst has enough spare capacity.
//
// If e cannot be encoded (see Event), AppendEvent returns dst unchanged and
// an error that matches ErrInvalidEvent; nothing is ever half-written.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	return appendValid(dst, &e), nil
}

// appendValid encodes an event that has passed Validate.
func appendValid(dst []byte, e *Event) []byte {
	if e.Comment != "" {
		dst = append(dst, ": "...)
		dst = append(dst, e.Comment...)
		dst = append(dst, '\n')
	} else if e.Flags&EmptyComment != 0 {
		dst = append(dst, ":\n"...)
	}
	if e.Retry > 0 || e.Flags&RetryZero != 0 {
		dst = appendRetry(dst, e.Retry)
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	} else if e.Flags&EmptyID != 0 {
		dst = append(dst, "id\n"...)
	}
	if e.isControl() {
		return append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	dst = appendData(dst, e.Data)
	return append(dst, '\n')
}

func appendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n')
}

// appendData writes one "data" field per line of data. Lines end at CRLF, CR
// or LF. A payload that ends with a line break yields a final empty data
// field, which is exactly what makes the client keep that line break (the
// client drops one trailing LF of the joined data).
func appendData(dst, data []byte) []byte {
	for {
		i := indexLineBreak(data)
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, '\n')
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// indexLineBreak returns the index of the first CR or LF in b, or -1. Two
// IndexByte scans (vectorised) beat one byte loop on payloads of any size.
func indexLineBreak(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// encodedLen returns an upper bound of the encoded size of a valid event.
func encodedLen(e *Event) int {
	n := len(e.Comment) + len(e.ID) + len(e.Type) + len(e.Data) + 64
	for _, c := range e.Data {
		if c == '\n' || c == '\r' {
			n += len("data: \n")
		}
	}
	return n
}

// decodeFrame returns the event that appendValid encoded as frame (one
// frame, ending with its blank line). It is the inverse of appendValid for
// the frames a store keeps, not a general parser: it expects exactly the
// field prefixes appendValid writes. Data comes back with every line break
// as LF, as a non-nil slice for an event with a data field; it is appended
// to buf, which is returned, and its capacity ends where it does. The
// event's strings are substrings of frame.
func decodeFrame(frame string, buf []byte) (Event, []byte) {
	var ev Event
	start := len(buf)
	hasData := false
	for len(frame) > 0 {
		line, rest, _ := strings.Cut(frame, "\n")
		frame = rest
		switch {
		case line == "":
			frame = "" // the blank line that ends the frame
		case strings.HasPrefix(line, "data: "):
			if hasData {
				buf = append(buf, '\n')
			}
			buf = append(buf, line[len("data: "):]...)
			hasData = true
		case line[0] == ':':
			if len(line) <= len(": ") {
				ev.Flags |= EmptyComment
			} else {
				ev.Comment = line[len(": "):]
			}
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[len("id: "):]
		case line == "id":
			ev.Flags |= EmptyID
		case strings.HasPrefix(line, "event: "):
			ev.Type = line[len("event: "):]
		case strings.HasPrefix(line, "retry: "):
			ms, _ := strconv.ParseInt(line[len("retry: "):], 10, 64)
			if ms == 0 {
				ev.Flags |= RetryZero
			} else {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	switch {
	case hasData && buf == nil:
		ev.Data = []byte{}
	case hasData:
		ev.Data = buf[start:len(buf):len(buf)]
	case !ev.isControl():
		ev.Flags |= NoData // a dispatched event without data is NoData's
	}
	return ev, buf
}
