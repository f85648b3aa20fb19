package sse

import (
	"context"
	"strconv"
)

// msAfter reads a store's history after one Seq for every topic, as
// stores numbering all topics in one sequence are read.
func msAfter(ctx context.Context, s Store, after uint64, topics []string, limit int) ([]Entry, error) {
	pos := make([]uint64, len(topics))
	for i := range pos {
		pos[i] = after
	}
	return s.After(ctx, topics, pos, limit)
}

// msID returns the ID the hub gives the place seq of an ordered store.
func msID(s Store, seq uint64) string {
	return s.Epoch() + "-" + strconv.FormatUint(seq, 10)
}

// repeatSeq returns n positions, each seq.
func repeatSeq(seq uint64, n int) []uint64 {
	pos := make([]uint64, n)
	for i := range pos {
		pos[i] = seq
	}
	return pos
}
