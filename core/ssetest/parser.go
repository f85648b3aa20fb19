package ssetest

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one event as an EventSource dispatches it.
type Event struct {
	Type        string // "message" when the stream named none
	Data        string
	LastEventID string // the last-event-ID buffer when the event was dispatched
}

// Parser reads an event stream the way a browser's EventSource interprets
// it (HTML standard §9.2.6). The zero value is not usable; call NewParser.
type Parser struct {
	// OnComment, if set, is called for each comment line with the text
	// after the leading ':'. A space after the colon is not stripped.
	OnComment func(text string)

	r       *bufio.Reader
	line    []byte // a line that spans more than one buffer fill
	started bool   // the first line (which may carry a BOM) has been read
	skipLF  bool   // the last line ended in CR, so a following LF is part of it
	err     error  // sticky read error

	data     strings.Builder // data buffer
	typ      string          // event type buffer
	idBuf    string          // last event ID buffer
	lastID   string          // last event ID string, updated at each blank line
	retry    time.Duration
	retrySet bool
}

// NewParser returns a Parser reading the event stream from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{r: bufio.NewReaderSize(r, 4096)}
}

// Next returns the next event the stream dispatches. It returns io.EOF when
// the stream ends; an event not yet ended by a blank line is discarded, as
// a browser does. Other read errors are returned as they are. Once Next has
// returned an error it returns the same error on every later call.
func (p *Parser) Next() (Event, error) {
	for p.err == nil {
		line, err := p.readLine()
		if err != nil {
			p.err = err
			p.data.Reset()
			p.typ = ""
			break
		}
		if ev, ok := p.processLine(line); ok {
			return ev, nil
		}
	}
	return Event{}, p.err
}

// Retry returns the reconnection time the stream last set with a retry
// field, and whether it set one at all.
func (p *Parser) Retry() (time.Duration, bool) {
	return p.retry, p.retrySet
}

// LastEventID returns the event stream's last event ID string: the value an
// EventSource would send as Last-Event-ID when it reconnects. Like a
// browser, it takes the value of the last-event-ID buffer at each blank
// line, so an id field in an event that has not ended yet does not count.
func (p *Parser) LastEventID() string {
	return p.lastID
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

// readLine returns the next line without its terminator (CRLF, CR or LF).
// The result is valid only until the next call. A final line with no
// terminator is dropped and the read error returned.
func (p *Parser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		if _, err := p.r.Peek(1); err != nil {
			return nil, err
		}
		buf, _ := p.r.Peek(p.r.Buffered())
		if p.skipLF {
			p.skipLF = false
			if buf[0] == '\n' {
				p.r.Discard(1)
				continue
			}
		}
		end := len(buf)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			end = i
		}
		if i := bytes.IndexByte(buf[:end], '\r'); i >= 0 {
			end = i
		}
		if end == len(buf) {
			p.line = append(p.line, buf...)
			p.r.Discard(len(buf))
			continue
		}
		p.skipLF = buf[end] == '\r'
		line := buf[:end]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		// Discarding buffered bytes does not read, so line stays valid.
		p.r.Discard(end + 1)
		return line, nil
	}
}

// processLine interprets one line and reports the event it dispatches, if any.
func (p *Parser) processLine(b []byte) (Event, bool) {
	if !p.started {
		p.started = true
		b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	}
	if len(b) == 0 {
		return p.dispatch()
	}
	s := decodeUTF8(b)
	if s[0] == ':' {
		if p.OnComment != nil {
			p.OnComment(s[1:])
		}
		return Event{}, false
	}
	name, value, found := strings.Cut(s, ":")
	if found {
		value = strings.TrimPrefix(value, " ")
	}
	switch name {
	case "event":
		p.typ = value
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.Contains(value, "\x00") {
			p.idBuf = value
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			p.retry = time.Duration(ms) * time.Millisecond
			p.retrySet = true
		}
	}
	return Event{}, false
}

// dispatch handles a blank line.
func (p *Parser) dispatch() (Event, bool) {
	p.lastID = p.idBuf
	if p.data.Len() == 0 {
		p.typ = ""
		return Event{}, false
	}
	data := p.data.String()
	ev := Event{
		Type:        p.typ,
		Data:        data[:len(data)-1], // every data line ended in LF
		LastEventID: p.lastID,
	}
	if ev.Type == "" {
		ev.Type = "message"
	}
	p.data.Reset()
	p.typ = ""
	return ev, true
}

// parseRetry parses a retry value: one or more ASCII digits and nothing
// else. Values too large for a time.Duration are rejected.
func parseRetry(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	const limit = math.MaxInt64 / int64(time.Millisecond)
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

// decodeUTF8 decodes b as the WHATWG "UTF-8 decode" does: each maximal
// ill-formed subsequence becomes one U+FFFD. Decoding line by line gives
// the same result as decoding the whole stream, because a CR or LF always
// ends an incomplete sequence.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[:n])
			b = b[n:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[illFormedLen(b):]
	}
	return sb.String()
}

// illFormedLen returns the length of the maximal ill-formed subsequence at
// the start of b, which must not begin with a valid encoding.
func illFormedLen(b []byte) int {
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	}
	i := 1
	for i <= need && i < len(b) && b[i] >= lo && b[i] <= hi {
		i++
		lo, hi = 0x80, 0xBF
	}
	return i
}
