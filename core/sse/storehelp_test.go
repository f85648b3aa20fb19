package sse_test

import (
	"context"
	"strconv"
	"strings"

	"github.com/ssekit/ssekit/core/sse"
)

// msAfter reads a store's history after one Seq for every topic, as
// stores numbering all topics in one sequence are read.
func msAfter(ctx context.Context, s sse.Store, after uint64, topics []string, limit int) ([]sse.Entry, error) {
	pos := make([]uint64, len(topics))
	for i := range pos {
		pos[i] = after
	}
	return s.After(ctx, topics, pos, limit)
}

// msID returns the ID the hub gives the place seq of an ordered store.
func msID(s sse.Store, seq uint64) string {
	return s.Epoch() + "-" + strconv.FormatUint(seq, 10)
}

// msPosition parses an ID of one Seq, as the hub does, and checks it
// against the store's newest Seq.
func msPosition(s sse.Store, id string) (uint64, error) {
	num, ok := strings.CutPrefix(id, s.Epoch()+"-")
	if !ok || num == "" || num[0] == '+' || (num[0] == '0' && len(num) > 1) {
		return 0, sse.ErrUnknownID
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, sse.ErrUnknownID
	}
	if newest, err := s.Newest(context.Background(), ""); err != nil || seq > newest {
		return 0, sse.ErrUnknownID
	}
	return seq, nil
}
