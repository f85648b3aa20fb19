package sseclient

import (
	"strings"
	"time"
)

// This file is a second reading of the HTML standard's "Interpreting an
// event stream", written to follow its text step by step rather than to be
// fast: the whole stream is decoded first, then split into lines, then
// interpreted. The fuzz tests hold Parser to it.

// refDecode is the WHATWG Encoding standard's UTF-8 decoder, written from
// its algorithm (bytes needed, bytes seen, lower and upper boundary).
func refDecode(b []byte) string {
	var out []rune
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, rune(c))
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0x0F)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x07)
			default:
				out = append(out, '\uFFFD')
			}
			i++
			continue
		}
		if c < lower || c > upper {
			// The byte is not consumed: it is read again as a new start.
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out = append(out, '\uFFFD')
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		i++
		if seen == needed {
			out = append(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = append(out, '\uFFFD')
	}
	return string(out)
}

// refLines splits s into lines ended by CRLF, CR or LF, and returns the
// complete lines and what follows the last line ending.
func refLines(s string) (lines []string, rest string) {
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return lines, s
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
}

// refResult is what the reference reading of a stream yields.
type refResult struct {
	events   []Event
	lastID   string
	retry    time.Duration
	retrySet bool
	comments []string
}

// refParse interprets the complete stream in.
func refParse(in []byte) refResult {
	s := strings.TrimPrefix(refDecode(in), "\uFEFF")
	lines, _ := refLines(s)
	var res refResult
	var data, typ, idBuf string
	for _, line := range lines {
		if line == "" {
			// Dispatch the event.
			res.lastID = idBuf
			if data == "" {
				typ = ""
				continue
			}
			data = strings.TrimSuffix(data, "\n")
			ev := Event{Type: "message", Data: data, LastEventID: res.lastID}
			if typ != "" {
				ev.Type = typ
			}
			res.events = append(res.events, ev)
			data, typ = "", ""
			continue
		}
		if line[0] == ':' {
			res.comments = append(res.comments, line[1:])
			continue
		}
		name, value := line, ""
		if i := strings.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "event":
			typ = value
		case "data":
			data += value + "\n"
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if ms, ok := refRetry(value); ok {
				res.retry, res.retrySet = ms, true
			}
		}
	}
	return res
}

// refRetry interprets a retry value made only of ASCII digits, and turns
// down one a time.Duration cannot hold.
func refRetry(v string) (time.Duration, bool) {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	v = strings.TrimLeft(v, "0")
	const maxMS = "9223372036854" // math.MaxInt64 ns in whole ms
	if len(v) > len(maxMS) || (len(v) == len(maxMS) && v > maxMS) {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond, true
}

// refLimits reports whether the stream in has a complete line other than a
// data line longer than maxLine bytes, or an event whose data grows beyond
// maxEvent bytes at a complete data line (0: no limit), and how many
// events it dispatches before that line. Lengths count the stream's bytes,
// before decoding, as Parser does.
func refLimits(in []byte, maxLine, maxEvent int) (over bool, before int) {
	s := strings.TrimPrefix(string(in), "\uFEFF")
	lines, _ := refLines(s)
	data := -1 // the data buffer's length, -1 when no data field was seen
	for _, line := range lines {
		if line == "" {
			if data >= 0 {
				before++
			}
			data = -1
			continue
		}
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		if name == "data" {
			if maxEvent > 0 && max(data, 0)+len(value) > maxEvent {
				return true, before
			}
			data = max(data, 0) + len(value) + 1
			continue
		}
		if maxLine > 0 && len(line) > maxLine {
			return true, before
		}
	}
	return false, before
}
