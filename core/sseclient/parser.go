package sseclient

import (
	"bytes"
	"errors"
	"fmt"
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
	LastEventID string // the last event ID string when the event was dispatched
}

var (
	// ErrLineTooLong is returned, wrapped, when a line other than a data
	// line is longer than Parser.MaxLineSize.
	ErrLineTooLong = errors.New("sseclient: line too long")

	// ErrEventTooLarge is returned, wrapped, when the data of an event
	// grows beyond Parser.MaxEventSize.
	ErrEventTooLarge = errors.New("sseclient: event too large")
)

const (
	minBufSize = 4 << 10  // the read buffer a Parser starts with
	maxBufSize = 64 << 10 // the read buffer grows to this for long lines and busy streams
	// sharedMax is the largest data that a new last event ID string is
	// allocated with, in one piece: the ID then keeps the data alive, so
	// only small data shares.
	sharedMax = 1 << 10
	// typeCache is how many event type strings a Parser remembers, so
	// that a recurring type costs no allocation.
	typeCache = 4
)

// Line modes: how the rest of a line that did not fit the buffer is kept.
const (
	lineNormal = iota // no line is pending
	lineData          // the rest of a data line goes to the data buffer
	lineLong          // the rest of another line goes to Parser.line
)

// Parser reads an event stream the way a browser's EventSource interprets
// it (HTML standard, "Interpreting an event stream"): CR, LF and CRLF end
// lines, one leading BOM is skipped, invalid UTF-8 becomes U+FFFD, an
// event is dispatched by a blank line only when it has a data field, and an
// id field containing NUL is ignored. The zero value is not usable; call
// NewParser.
//
// Each dispatched Event takes one allocation in the common case, shared by
// its data and a new last event ID; a recurring event type costs nothing.
type Parser struct {
	// OnComment, if set, is called for each comment line with the text
	// after the leading ':'. A space after the colon is not stripped.
	OnComment func(text string)

	// MaxLineSize, if positive, bounds the length of every line other than
	// data lines (whose data counts toward MaxEventSize instead), without
	// its line ending. A longer line makes Next fail with an error that
	// matches ErrLineTooLong. Zero means no limit.
	MaxLineSize int

	// MaxEventSize, if positive, bounds the data of one event: its data
	// lines joined with LF. A larger event makes Next fail with an error
	// that matches ErrEventTooLarge. Zero means no limit.
	MaxEventSize int

	src     io.Reader
	buf     []byte
	r, w    int // unread bytes are buf[r:w]
	lf, cr  finder
	rerr    error // read error, reported once the buffered lines are used
	err     error // sticky error of Next
	started bool  // the BOM check has been made
	busy    bool  // the last read filled the buffer: a larger one saves reads
	skipLF  bool  // the last line ended in CR, so a following LF is part of it
	mode    uint8 // lineNormal, lineData or lineLong
	line    []byte

	data     []byte // data buffer, every line followed by LF
	typ      []byte // event type buffer
	id       []byte // last event ID buffer
	lastID   string // last event ID string, updated at each blank line
	ev       Event  // the event being dispatched
	types    [typeCache]string
	nextType int // the entry of types to replace next
	retry    time.Duration
	retrySet bool
}

// finder caches where the next occurrence of a byte is in the buffer, so
// that each byte is searched at most once whatever the line endings.
type finder struct {
	at int // index of the next occurrence, or -1: none in buf[:to]
	to int
}

// find returns the index of the first c in buf[r:w], or -1.
func (f *finder) find(buf []byte, c byte, r, w int) int {
	from := r
	if f.at >= r {
		return f.at
	} else if f.at < 0 {
		from = max(f.to, r)
	}
	if i := bytes.IndexByte(buf[from:w], c); i >= 0 {
		f.at = from + i
		return f.at
	}
	f.at, f.to = -1, w
	return -1
}

// shift moves the finder when the buffer's bytes move d to the left.
func (f *finder) shift(d int) {
	f.at -= d
	if f.at < 0 {
		f.at = -1
	}
	f.to = max(f.to-d, 0)
}

// NewParser returns a Parser reading the event stream from r.
func NewParser(r io.Reader) *Parser {
	p := &Parser{buf: make([]byte, minBufSize)}
	p.Reset(r)
	return p
}

// Reset makes p read a new event stream from r, as an EventSource does
// when it reconnects: the event being read and any error are dropped, and
// the last event ID and the reconnection time are kept. An id field of
// an event that was not dispatched does not count.
func (p *Parser) Reset(r io.Reader) {
	p.src = r
	p.r, p.w = 0, 0
	p.lf, p.cr = finder{at: -1}, finder{at: -1}
	p.rerr, p.err = nil, nil
	p.started, p.skipLF, p.busy = false, false, false
	p.mode = lineNormal
	p.line = p.line[:0]
	p.data = p.data[:0]
	p.typ = p.typ[:0]
	p.id = append(p.id[:0], p.lastID...)
}

// Next returns the next event the stream dispatches. It returns io.EOF when
// the stream ends; an event not yet ended by a blank line is discarded, as
// a browser does. Other read errors are returned as they are. Once Next has
// returned an error it returns the same error on every later call.
func (p *Parser) Next() (Event, error) {
	for p.err == nil {
		if !p.started && !p.skipBOM() {
			p.fill()
			continue
		}
		if p.skipLF && p.r < p.w {
			p.skipLF = false
			if p.buf[p.r] == '\n' {
				p.r++
			}
		}
		end := p.lf.find(p.buf, '\n', p.r, p.w)
		if cr := p.cr.find(p.buf, '\r', p.r, p.w); cr >= 0 && (end < 0 || cr < end) {
			end = cr
		}
		if end < 0 {
			p.fill()
			continue
		}
		line := p.buf[p.r:end]
		p.r = end + 1
		if p.buf[end] == '\r' {
			if p.r == p.w {
				p.skipLF = true
			} else if p.buf[p.r] == '\n' {
				p.r++
			}
		}
		if p.endLine(line) {
			ev := p.ev
			p.ev = Event{}
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
// browser, it takes the value of the last event ID buffer at each blank
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

var bom = []byte("\uFEFF")

// skipBOM skips a BOM at the start of the stream. It reports false when
// the buffered bytes are too few to tell.
func (p *Parser) skipBOM() bool {
	b := p.buf[p.r:p.w]
	if len(b) < len(bom) && bytes.HasPrefix(bom, b) && p.rerr == nil {
		return false
	}
	if bytes.HasPrefix(b, bom) {
		p.r += len(bom)
	}
	p.started = true
	return true
}

// fill reads more of the stream into the buffer. It is called when the
// buffer holds no line ending, and first makes room: it keeps the start of
// the pending line, or, for a line longer than the largest buffer, moves
// it out of the buffer (data to the data buffer, anything else to p.line).
func (p *Parser) fill() {
	if p.rerr != nil {
		p.fail(p.rerr)
		return
	}
	switch {
	case p.mode != lineNormal:
		p.spill(p.buf[p.r:p.w])
	case p.r > 0:
		n := copy(p.buf, p.buf[p.r:p.w])
		p.lf.shift(p.r)
		p.cr.shift(p.r)
		p.r, p.w = 0, n
	}
	if p.w == len(p.buf) || p.busy {
		p.busy = false
		if len(p.buf) < maxBufSize {
			buf := make([]byte, 2*len(p.buf))
			copy(buf, p.buf[:p.w])
			p.buf = buf
		} else if p.w == len(p.buf) {
			p.longLine()
		}
	}
	if p.err != nil {
		return
	}
	for range 100 {
		n, err := p.src.Read(p.buf[p.w:])
		p.busy = p.w+n == len(p.buf) && n > 0
		p.w += n
		if err != nil {
			p.rerr = err
			return
		}
		if n > 0 {
			return
		}
	}
	p.rerr = io.ErrNoProgress
}

// longLine starts keeping a line that fills the largest buffer outside it.
func (p *Parser) longLine() {
	b := p.buf[p.r:p.w]
	if v, ok := bytes.CutPrefix(b, []byte("data:")); ok {
		p.mode = lineData
		p.spill(trimSpace(v))
		return
	}
	p.mode = lineLong
	p.spill(b)
}

// spill moves b, the start of a long line, out of the buffer and empties it.
func (p *Parser) spill(b []byte) {
	if p.mode == lineData {
		p.addData(b)
	} else {
		p.addLine(b)
	}
	p.r, p.w = 0, 0
	p.lf, p.cr = finder{at: -1}, finder{at: -1}
}

// endLine handles the end of a line: b is its last part, in the buffer.
func (p *Parser) endLine(b []byte) bool {
	switch p.mode {
	case lineData:
		p.mode = lineNormal
		if p.addData(b) {
			p.data = append(p.data, '\n')
		}
		return false
	case lineLong:
		p.mode = lineNormal
		if !p.addLine(b) {
			return false
		}
		b = p.line
		p.line = p.line[:0]
	}
	return p.processLine(b)
}

// addData appends b to the data buffer, within MaxEventSize.
func (p *Parser) addData(b []byte) bool {
	if p.MaxEventSize > 0 && len(p.data)+len(b) > p.MaxEventSize {
		p.fail(fmt.Errorf("%w: more than %d bytes of data", ErrEventTooLarge, p.MaxEventSize))
		return false
	}
	p.data = append(p.data, b...)
	return true
}

// addLine appends b to the long line, within MaxLineSize.
func (p *Parser) addLine(b []byte) bool {
	if p.MaxLineSize > 0 && len(p.line)+len(b) > p.MaxLineSize {
		p.fail(p.lineTooLong())
		return false
	}
	p.line = append(p.line, b...)
	return true
}

func (p *Parser) lineTooLong() error {
	return fmt.Errorf("%w: a line of more than %d bytes", ErrLineTooLong, p.MaxLineSize)
}

// fail ends the stream with err; the event being read is dropped.
func (p *Parser) fail(err error) {
	p.err = err
	p.data = p.data[:0]
	p.typ = p.typ[:0]
}

// trimSpace removes one leading space.
func trimSpace(b []byte) []byte {
	if len(b) > 0 && b[0] == ' ' {
		return b[1:]
	}
	return b
}

// processLine interprets one complete line and reports the event it
// dispatches, if any. Field names and values are matched as bytes: an
// ill-formed UTF-8 sequence never holds or hides a ':' or a space, and
// never equals a field name, so this agrees with decoding first.
func (p *Parser) processLine(b []byte) bool {
	if len(b) == 0 {
		return p.dispatch()
	}
	if b[0] == 'd' {
		if v, ok := bytes.CutPrefix(b, []byte("data:")); ok {
			if p.addData(trimSpace(v)) {
				p.data = append(p.data, '\n')
			}
			return false
		}
		if string(b) == "data" {
			if p.addData(nil) {
				p.data = append(p.data, '\n')
			}
			return false
		}
	}
	if p.MaxLineSize > 0 && len(b) > p.MaxLineSize {
		p.fail(p.lineTooLong())
		return false
	}
	name, value := b, []byte(nil)
	if i := bytes.IndexByte(b, ':'); i == 0 {
		if p.OnComment != nil {
			p.OnComment(decodeUTF8(b[1:]))
		}
		return false
	} else if i > 0 {
		name, value = b[:i], trimSpace(b[i+1:])
	}
	switch string(name) {
	case "event":
		p.typ = appendUTF8(p.typ[:0], value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = appendUTF8(p.id[:0], value)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			p.retry = time.Duration(ms) * time.Millisecond
			p.retrySet = true
		}
	}
	return false
}

// dispatch handles a blank line. The event's strings are made in one
// allocation: its data, then a new last event ID if the data is small.
func (p *Parser) dispatch() bool {
	newID := string(p.id) != p.lastID
	if len(p.data) == 0 {
		if newID {
			p.lastID = string(p.id)
		}
		p.typ = p.typ[:0]
		return false
	}
	data := p.data[:len(p.data)-1] // every data line ended in LF
	if !utf8.Valid(data) {
		data = []byte(decodeUTF8(data))
	}
	shareID := newID && len(data) <= sharedMax
	var s string
	if shareID {
		var sb strings.Builder
		sb.Grow(len(data) + len(p.id))
		sb.Write(data)
		sb.Write(p.id)
		s = sb.String()
		p.lastID = s[len(data):]
	} else {
		s = string(data)
		if newID {
			p.lastID = string(p.id)
		}
	}
	p.ev = Event{Type: p.eventType(), Data: s[:len(data)], LastEventID: p.lastID}
	p.data = p.data[:0]
	p.typ = p.typ[:0]
	return true
}

// eventType returns the event type buffer as a string, "message" when it is
// empty, without allocating when the type is one of the last few seen.
func (p *Parser) eventType() string {
	if len(p.typ) == 0 {
		return "message"
	}
	for _, t := range p.types {
		if string(p.typ) == t {
			return t
		}
	}
	t := string(p.typ)
	p.types[p.nextType] = t
	p.nextType = (p.nextType + 1) % typeCache
	return t
}

// parseRetry parses a retry value: one or more ASCII digits and nothing
// else. Values too large for a time.Duration are rejected.
func parseRetry(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const limit = math.MaxInt64 / int64(time.Millisecond)
	var n int64
	for _, c := range b {
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

// appendUTF8 appends b to dst, decoded as decodeUTF8 does.
func appendUTF8(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	return append(dst, decodeUTF8(b)...)
}

// decodeUTF8 decodes b as the WHATWG "UTF-8 decode" does: each maximal
// ill-formed subsequence becomes one U+FFFD. Decoding line by line, or
// the joined data lines at once, gives the same result as decoding the
// whole stream, because a CR or LF always ends an incomplete sequence.
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
