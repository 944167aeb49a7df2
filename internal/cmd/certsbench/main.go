// Command certsbench measures certificate listing through the CA's API as
// an admin does (GET /v1/certs with the admin certificate of CADIR): for
// each filter, the first page and the pages after it by cursor, each
// request timed on its own. It prints one line per filter:
//
//	list filter=status=revoked limit=100 pages=20 certs=2000 p50=..ms p99=..ms max=..ms
//
// With -heap it instead samples go_memstats_heap_inuse_bytes from the
// CA's /metrics every 200 ms until stdin closes and prints the peak:
//
//	heap peak_mb=... samples=...
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
)

func main() {
	dir := flag.String("dir", "", "CA directory (admin certificate, root, config)")
	url := flag.String("url", "", "CA base URL (default: config url)")
	pages := flag.Int("pages", 20, "pages to read per filter")
	limit := flag.Int("limit", 100, "page size")
	subject := flag.String("subject", "host-7.example.com", "subject of the subject filter")
	heap := flag.Bool("heap", false, "sample the CA's heap until stdin closes")
	flag.Parse()
	if err := run(*dir, *url, *pages, *limit, *subject, *heap); err != nil {
		fmt.Fprintln(os.Stderr, "certsbench:", err)
		os.Exit(1)
	}
}

func run(dir, url string, pages, limit int, subject string, heap bool) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	if url == "" {
		url = cfg.URL
	}
	if heap {
		return sampleHeap(url, cfg.Path(cfg.Paths.Root))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err != nil {
		return err
	}
	c, err := caclient.New(url, cfg.Path(cfg.Paths.Root), &cert)
	if err != nil {
		return err
	}
	ctx := context.Background()
	// One request first: connection and TLS set-up are not the listing's.
	if _, err := c.Certs(ctx, "", "", 1, ""); err != nil {
		return err
	}
	for _, f := range []struct{ name, subject, status string }{
		{"subject=" + subject, subject, ""},
		{"status=valid", "", "valid"},
		{"status=revoked", "", "revoked"},
		{"status=expired", "", "expired"},
		{"all", "", ""},
	} {
		var lat []time.Duration
		n, cursor := 0, ""
		for range pages {
			start := time.Now()
			list, err := c.Certs(ctx, f.subject, f.status, limit, cursor)
			lat = append(lat, time.Since(start))
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			n += len(list.Certs)
			if list.Next == "" {
				break
			}
			cursor = list.Next
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("list filter=%s limit=%d pages=%d certs=%d p50=%.2fms p99=%.2fms max=%.2fms\n", f.name, limit, len(lat), n,
			ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]), ms(lat[len(lat)-1]))
	}
	return nil
}

// sampleHeap polls /metrics (served without a client certificate) until
// stdin reaches EOF.
func sampleHeap(url, rootFile string) error {
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	peak, samples := 0.0, 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, err := heapInuse(hc, url); err == nil {
			peak, samples = max(peak, v), samples+1
		}
		select {
		case <-stop:
			fmt.Printf("heap peak_mb=%.1f samples=%d\n", peak/(1<<20), samples)
			return nil
		case <-tick.C:
		}
	}
}

func heapInuse(hc *http.Client, url string) (float64, error) {
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in /metrics")
}
