package ssetest

import (
	"bytes"
	"io"
	"time"

	"github.com/ssekit/ssekit/core/sseclient"
)

// Event is one event as an EventSource dispatches it. It has the fields of
// sseclient.Event, and converts to and from it.
type Event struct {
	Type        string // "message" when the stream named none
	Data        string
	LastEventID string // the last-event-ID buffer when the event was dispatched
}

// Parser reads an event stream the way a browser's EventSource interprets
// it (HTML standard §9.2.6). It is the parser of package sseclient, with
// no limit on the size of lines or events, so a test reads a stream exactly
// as ssekit's Go client does. The zero value is not usable; call
// NewParser.
type Parser struct {
	// OnComment, if set, is called for each comment line with the text
	// after the leading ':'. A space after the colon is not stripped.
	OnComment func(text string)

	p *sseclient.Parser
}

// NewParser returns a Parser reading the event stream from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{p: sseclient.NewParser(r)}
}

// Next returns the next event the stream dispatches. It returns io.EOF when
// the stream ends; an event not yet ended by a blank line is discarded, as
// a browser does. Other read errors are returned as they are. Once Next has
// returned an error it returns the same error on every later call.
func (p *Parser) Next() (Event, error) {
	p.p.OnComment = p.OnComment
	ev, err := p.p.Next()
	return Event(ev), err
}

// Retry returns the reconnection time the stream last set with a retry
// field, and whether it set one at all.
func (p *Parser) Retry() (time.Duration, bool) {
	return p.p.Retry()
}

// LastEventID returns the event stream's last event ID string: the value an
// EventSource would send as Last-Event-ID when it reconnects. Like a
// browser, it takes the value of the last-event-ID buffer at each blank
// line, so an id field in an event that has not ended yet does not count.
func (p *Parser) LastEventID() string {
	return p.p.LastEventID()
}

// Parse returns every event dispatched by the complete event stream b.
// Reading a byte slice cannot fail, so the error is always nil; it is there
// to match Next.
func Parse(b []byte) ([]Event, error) {
	p := NewParser(bytes.NewReader(b))
	var events []Event
	for {
		ev, err := p.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}
