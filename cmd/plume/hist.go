package main

import (
	"math/bits"
	"sync/atomic"
)

// hist is a log-linear histogram of durations in nanoseconds: 32
// sub-buckets per power of two, so a percentile is off by at most ~3%.
// Adds are atomic, so receivers of all connections share one.
type hist struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

const (
	histSub     = 5
	histBuckets = (64 - histSub) << histSub
)

func histBucket(v int64) int {
	if v < 1<<histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - histSub
	return (shift+1)<<histSub + int(uint64(v)>>shift) - 1<<histSub
}

// histValue returns the middle of bucket i.
func histValue(i int) int64 {
	if i < 1<<histSub {
		return int64(i)
	}
	shift := i>>histSub - 1
	lo := int64(i&(1<<histSub-1)+1<<histSub) << shift
	return lo + (int64(1)<<shift)/2
}

func (h *hist) add(v int64) {
	h.counts[histBucket(v)].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// snapshot is a histogram in a form that travels as JSON and merges.
type histSnapshot struct {
	Buckets [][2]int64 `json:"buckets"` // [bucket, count]
	Max     int64      `json:"max"`
}

func (h *hist) snapshot() histSnapshot {
	s := histSnapshot{Max: h.max.Load()}
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), int64(n)})
		}
	}
	return s
}

func (s *histSnapshot) merge(o histSnapshot) {
	m := map[int64]int64{}
	for _, b := range s.Buckets {
		m[b[0]] += b[1]
	}
	for _, b := range o.Buckets {
		m[b[0]] += b[1]
	}
	s.Buckets = s.Buckets[:0]
	for i := int64(0); i < histBuckets; i++ {
		if n := m[i]; n > 0 {
			s.Buckets = append(s.Buckets, [2]int64{i, n})
		}
	}
	s.Max = max(s.Max, o.Max)
}

func (s histSnapshot) count() int64 {
	var n int64
	for _, b := range s.Buckets {
		n += b[1]
	}
	return n
}

// quantile returns the value at q (0..1), never above the maximum seen.
func (s histSnapshot) quantile(q float64) int64 {
	total := s.count()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen int64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			return min(histValue(int(b[0])), s.Max)
		}
	}
	return s.Max
}
