package crl_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// heapPeak samples the bytes of live and not-yet-swept heap objects every
// 200µs (runtime/metrics reads do not stop the world) and keeps the
// largest value above the level at start.
type heapPeak struct {
	stop, done chan struct{}
	base, peak uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{}), base: readHeap()}
	go func() {
		defer close(h.done)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			if v := readHeap(); v > h.peak {
				h.peak = v
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// end returns the peak above the start level, in bytes.
func (h *heapPeak) end() uint64 {
	close(h.stop)
	<-h.done
	if v := readHeap(); v > h.peak {
		h.peak = v
	}
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

// BenchmarkBuildCheck is what the updater does between reading storage and
// saving: build and sign a CRL of n entries (20-octet serials, reason
// code, ordered by serial as storage returns them), then Check it in
// full (zlint whole up to crl.LintFullMax entries, a sampled copy above). Reported besides ns/op and B/op:
// peak-heap-MB, the largest heap in use above the level before the
// operation (sampled), and der-bytes / pem-bytes. CRL_BENCH_MAX caps the
// sizes (BENCH_QUICK sets it to 100000 to skip 1M).
func BenchmarkBuildCheck(b *testing.B) {
	iss, key := issuer(b)
	max := 1_000_000
	if v := os.Getenv("CRL_BENCH_MAX"); v != "" {
		fmt.Sscan(v, &max)
	}
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		if n > max {
			continue
		}
		revs := revocations(n)
		// As both stores hand them out: ordered by serial, each serial
		// allocated as it is read, so in that order in memory too.
		slices.SortFunc(revs, func(a, b storage.Revocation) int { return strings.Compare(a.Serial, b.Serial) })
		for i := range revs {
			revs[i].Serial = strings.Clone(revs[i].Serial)
		}
		runtime.GC()
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			var der int
			var peak uint64
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				h := startHeapPeak()
				b.StartTimer()
				now := time.Now().Truncate(time.Second)
				out, err := crl.Build(iss, key, uint64(i+1), revs, now, 24*time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crl.Check(out, iss, uint64(i), now, revs); err != nil && !errors.Is(err, crl.ErrTooLarge) {
					b.Fatal(err)
				}
				b.StopTimer()
				peak = max64(peak, h.end())
				der = len(out)
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(der), "der-bytes")
			b.ReportMetric(float64(crl.PEMSize(der)), "pem-bytes")
		})
	}
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
