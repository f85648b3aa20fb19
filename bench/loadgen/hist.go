package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Hist is a log-linear histogram of durations with 64 sub-buckets per
// power of two of microseconds: values are exact below 64 µs and within
// 1.6 % above. Its zero value is empty and ready to use; it is not safe
// for concurrent use.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds
	max    int64   // nanoseconds, exact
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = subCount + 40*subCount
)

func bucketOf(us uint64) int {
	if us < subCount {
		return int(us)
	}
	shift := bits.Len64(us) - subBits - 1
	i := subCount + shift*subCount + int(us>>uint(shift)) - subCount
	return min(i, histBuckets-1)
}

// bucketMid returns the middle of bucket i in microseconds.
func bucketMid(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	shift := (i - subCount) / subCount
	m := uint64((i-subCount)%subCount + subCount)
	low := m << uint(shift)
	return float64(low) + float64(uint64(1)<<uint(shift))/2
}

// Record adds one duration in nanoseconds; a negative one counts as 0.
func (h *Hist) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[bucketOf(uint64(ns)/1000)]++
	h.n++
	h.sum += float64(ns)
	if ns > h.max {
		h.max = ns
	}
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Reset empties h.
func (h *Hist) Reset() { *h = Hist{} }

// Count returns the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest value recorded.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean, or 0 when empty.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0 < q ≤ 1), or 0 when empty. It never
// exceeds Max.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketMid(i) * 1000)
			return min(d, h.Max())
		}
	}
	return h.Max()
}
