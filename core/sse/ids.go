package sse

import (
	"bytes"
	"strconv"
	"strings"
)

// A stream's place in the history is a Seq per topic of the stream, in
// the order of its topics (Hub.Handler sorts them). Its ID names that
// place in the store's epoch: "3f9a0c1e-42" for a stream of one topic, or
// of an OrderedStore, where one Seq names the place in every topic;
// "3f9a0c1e-42.7.1093" for a stream of three topics of a store that
// numbers each topic on its own. A client sends it back as Last-Event-ID.

// appendID appends the ID of the place pos in epoch to dst. With ordered,
// the place is named by the greatest Seq, which stands for every topic.
func appendID(dst []byte, epoch string, pos []uint64, ordered bool) []byte {
	dst = append(dst, epoch...)
	dst = append(dst, '-')
	if ordered || len(pos) == 1 {
		var m uint64
		for _, s := range pos {
			m = max(m, s)
		}
		return strconv.AppendUint(dst, m, 10)
	}
	for i, s := range pos {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, s, 10)
	}
	return dst
}

// parseID parses id, the ID of a place in epoch, for a stream of n topics
// of a store that is ordered or not. One Seq names the place in every
// topic of an OrderedStore, whose Seqs all topics share, and in the one
// topic of a stream of one; otherwise the ID holds one Seq per topic: one
// Seq for several topics of a store that numbers each topic on its own is
// a place in some other stream's topic, not in these. Anything else
// (another epoch, another number of topics, a number that is not in its
// shortest decimal form) is ErrUnknownID.
func parseID(id, epoch string, n int, ordered bool) ([]uint64, error) {
	rest, ok := strings.CutPrefix(id, epoch)
	if !ok || len(rest) < 2 || rest[0] != '-' {
		return nil, ErrUnknownID
	}
	rest = rest[1:]
	pos := make([]uint64, 0, n)
	for part := range strings.SplitSeq(rest, ".") {
		if part == "" || part[0] == '+' || (part[0] == '0' && len(part) > 1) {
			return nil, ErrUnknownID
		}
		seq, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return nil, ErrUnknownID
		}
		pos = append(pos, seq)
	}
	switch len(pos) {
	case n:
		return pos, nil
	case 1:
		if !ordered {
			return nil, ErrUnknownID
		}
		for len(pos) < n {
			pos = append(pos, pos[0])
		}
		return pos, nil
	}
	return nil, ErrUnknownID
}

// idLine returns where the "id" line of frame, an event as appendValid
// encodes it, starts and ends (after its LF); both are 0 when it has none.
// No other line of a frame starts with "id": comments start with ':', and
// the other fields are named retry, event and data.
func idLine(frame []byte) (start, end int) {
	for i := 0; i < len(frame); {
		j := i + bytes.IndexByte(frame[i:], '\n') + 1
		if j <= i {
			return 0, 0
		}
		if len(frame)-i >= 2 && frame[i] == 'i' && frame[i+1] == 'd' {
			return i, j
		}
		i = j
	}
	return 0, 0
}
