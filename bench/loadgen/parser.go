package loadgen

import "bytes"

// stream parses one HTTP/1.1 response that carries an event stream: the
// response head, chunked transfer coding (or a body delimited by the
// connection's end) and just enough of SSE to see each event's first data
// line, the "id" field and whether the event is ssekit's reset (type
// "sse-reset", data {"reason":...}). It keeps no more than a short prefix of a line
// that spans reads, so a connection costs a few hundred bytes whatever the
// event size. Lines end at LF (a CR before it is dropped); a lone CR as a
// line end, which no server under test sends, is not recognised.
type stream struct {
	body    bool // past the response head
	status  int
	chunked bool

	cs        uint8 // chunk state
	chunkLeft int
	chunkExt  bool

	line    [lineCap]byte // prefix of the line that spans reads
	lineLen int

	hasData bool // the event being read has a data field
	dataOK  bool // and its first data line parsed as "<ts> <seq> ..."
	ts      int64
	seq     uint64

	// The event being read is a reset (its type is ResetType), and the
	// start of its first data line when that is not "<ts> <seq>".
	reset  bool
	odd    [oddCap]byte
	oddLen int

	id    [idCap]byte // value of the last "id" field (truncated to idCap)
	idLen int
}

const (
	lineCap = 96
	idCap   = 64
	oddCap  = 48
)

// ResetType is the event type of ssekit's reset event (its default
// Options.ResetEventType); its data is {"reason":"..."}.
const ResetType = "sse-reset"

const (
	csSize    = iota // reading the chunk-size line
	csData           // inside chunk data
	csDataEnd        // reading the CRLF after chunk data
	csEnd            // after the last chunk: ignore the rest
)

// handler receives what a stream finds.
type handler interface {
	onHead(status int)
	onEvent(ts int64, seq uint64, ok bool)
	// onReset comes before the onEvent of a reset event, with the reason
	// its data gives ("" when it gives none).
	onReset(reason []byte)
}

// feed parses the next bytes of the response.
func (s *stream) feed(b []byte, h handler) {
	if !s.body {
		b = s.head(b, h)
		if !s.body || len(b) == 0 {
			return
		}
	}
	if !s.chunked {
		s.events(b, h)
		return
	}
	for len(b) > 0 {
		switch s.cs {
		case csSize:
			i := 0
			for ; i < len(b) && b[i] != '\n'; i++ {
				c := b[i]
				switch {
				case s.chunkExt:
				case '0' <= c && c <= '9':
					s.chunkLeft = s.chunkLeft<<4 | int(c-'0')
				case 'a' <= c && c <= 'f':
					s.chunkLeft = s.chunkLeft<<4 | int(c-'a'+10)
				case 'A' <= c && c <= 'F':
					s.chunkLeft = s.chunkLeft<<4 | int(c-'A'+10)
				default: // ';' starts an extension; '\r' ends the line
					s.chunkExt = true
				}
			}
			if i == len(b) {
				return
			}
			b = b[i+1:]
			s.chunkExt = false
			if s.chunkLeft == 0 {
				s.cs = csEnd
			} else {
				s.cs = csData
			}
		case csData:
			n := min(len(b), s.chunkLeft)
			s.events(b[:n], h)
			s.chunkLeft -= n
			b = b[n:]
			if s.chunkLeft == 0 {
				s.cs = csDataEnd
			}
		case csDataEnd:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return
			}
			b = b[i+1:]
			s.cs = csSize
		case csEnd:
			return
		}
	}
}

// head parses response-head lines and returns what follows the head.
func (s *stream) head(b []byte, h handler) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.appendLine(b)
			return nil
		}
		line := b[:i]
		if s.lineLen > 0 {
			s.appendLine(line)
			line = s.line[:s.lineLen]
			s.lineLen = 0
		}
		b = b[i+1:]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case s.status == 0:
			s.status = -1
			if len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) {
				s.status = atoiPos(line[9:12])
			}
		case len(line) == 0:
			s.body = true
			h.onHead(s.status)
			return b
		case len(line) > 18 && asciiEqualFold(line[:18], "transfer-encoding:"):
			s.chunked = bytes.Contains(bytes.ToLower(line[18:]), []byte("chunked"))
		}
	}
	return nil
}

// events parses event-stream bytes.
func (s *stream) events(b []byte, h handler) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.appendLine(b)
			return
		}
		if s.lineLen == 0 {
			s.eventLine(b[:i], h)
		} else {
			s.appendLine(b[:i])
			s.eventLine(s.line[:s.lineLen], h)
			s.lineLen = 0
		}
		b = b[i+1:]
	}
}

// appendLine keeps up to lineCap bytes of a line that spans reads.
func (s *stream) appendLine(b []byte) {
	// A non-empty b always leaves lineLen > 0, which is what marks a
	// pending partial line.
	s.lineLen += copy(s.line[s.lineLen:], b)
}

// eventLine handles one complete line (or its prefix) of the event stream.
func (s *stream) eventLine(line []byte, h handler) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	switch {
	case len(line) == 0:
		if s.hasData {
			if s.reset {
				h.onReset(resetReason(s.odd[:s.oddLen]))
			}
			h.onEvent(s.ts, s.seq, s.dataOK)
		}
		s.hasData, s.dataOK, s.reset, s.oddLen = false, false, false, 0
	case line[0] == ':':
	case bytes.HasPrefix(line, []byte("data:")):
		if !s.hasData {
			s.hasData = true
			v := fieldValue(line[5:])
			s.ts, s.seq, s.dataOK = parseTSSeq(v)
			if !s.dataOK {
				s.oddLen = copy(s.odd[:], v)
			}
		}
	case bytes.HasPrefix(line, []byte("id:")):
		s.idLen = copy(s.id[:], fieldValue(line[3:]))
	case bytes.HasPrefix(line, []byte("event:")):
		s.reset = string(fieldValue(line[6:])) == ResetType
	}
}

// resetReason returns the value of "reason" in a reset event's data
// ({"reason":"evicted"}), or nil.
func resetReason(data []byte) []byte {
	const key = `"reason":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return nil
	}
	v := data[i+len(key):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return v
}

func fieldValue(v []byte) []byte {
	if len(v) > 0 && v[0] == ' ' {
		return v[1:]
	}
	return v
}

// parseTSSeq reads "<unix ns> <seq>" followed by a space or the end.
func parseTSSeq(v []byte) (ts int64, seq uint64, ok bool) {
	i := 0
	for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
		ts = ts*10 + int64(v[i]-'0')
	}
	if i == 0 || i > 19 || i == len(v) || v[i] != ' ' {
		return 0, 0, false
	}
	j := i + 1
	for ; j < len(v) && '0' <= v[j] && v[j] <= '9'; j++ {
		seq = seq*10 + uint64(v[j]-'0')
	}
	if j == i+1 || j-i-1 > 19 || (j < len(v) && v[j] != ' ') {
		return 0, 0, false
	}
	return ts, seq, true
}

func atoiPos(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
