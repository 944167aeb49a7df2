// Command enrollload measures anchorage's token enrollment the same way
// ../shared/harness/stepca measures step-ca's /1.0/sign, so `make bench`
// can report ratios against step-ca from one session: tokens and CSRs are
// made before the clock starts, c keep-alive HTTPS connections are opened,
// c workers post the n requests, and every answer is checked afterwards
// (201, the CSR's key and name, a chain that verifies to the root).
//
//	enrollload -dir CADIR -url https://127.0.0.1:PORT -n 5000 -c 16 -pid SERVERPID
//	enrollload -dir CADIR -url URL1,URL2,URL3 -pid PID1,PID2,PID3 ...   (replicas)
//
// With several URLs (replicas on one database) request i goes to URL
// i mod len: the load is spread evenly whatever c is, each worker keeping
// a keep-alive connection to each replica. With several PIDs, srv_cpu_us
// is the replicas' CPU added up and rss_mb their peak RSS added up.
//
// It prints one line:
//
//	anchorage c=16 n=5000 rps=... p50=...ms p99=...ms errors=0 rss_mb=... srv_cpu_us=... cli_cpu_us=...
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/caclient"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/enroll"
	"github.com/anchorage-pki/anchorage/signer"
)

func main() {
	dir := flag.String("dir", "", "CA directory (provisioner key, root, config)")
	url := flag.String("url", "", "CA base URL to load, or several, comma-separated, to spread the load over (default: config url)")
	n := flag.Int("n", 5000, "requests")
	c := flag.Int("c", 16, "concurrent workers (keep-alive connections)")
	pid := flag.String("pid", "", "server PID (or several, comma-separated), for CPU time and peak RSS")
	label := flag.String("label", "anchorage", "first word of the summary line")
	flag.Parse()
	if err := run(*dir, *url, *n, *c, *pid, *label); err != nil {
		fmt.Fprintln(os.Stderr, "enrollload:", err)
		os.Exit(1)
	}
}

type item struct {
	name string
	key  *ecdsa.PrivateKey
	body []byte
}

func run(dir, url string, n, c int, pidList, label string) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	if url == "" {
		url = cfg.URL
	}
	urls := strings.Split(url, ",")
	var pids []int
	for _, p := range strings.Split(pidList, ",") {
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("-pid %q: %v", pidList, err)
		}
		pids = append(pids, v)
	}
	pk, err := signer.Open(context.Background(), cfg.Path(cfg.Paths.ProvisionerKey))
	if err != nil {
		return err
	}
	rootPEM, err := os.ReadFile(cfg.Path(cfg.Paths.Root))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)

	// Untimed: tokens, keys, CSRs, bodies.
	items := make([]item, n)
	for i := range items {
		name := fmt.Sprintf("load-%d.bench.example.com", i)
		tok, err := enroll.Mint(pk, cfg.URL, name, []string{"DNS:" + name}, 5*time.Minute, time.Now())
		if err != nil {
			return err
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := caclient.NewCSR(k, name, []string{"DNS:" + name})
		if err != nil {
			return err
		}
		body, _ := json.Marshal(apiv1.EnrollRequest{Token: tok, CSR: string(csr)})
		items[i] = item{name, k, body}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"},
		MaxIdleConnsPerHost: c, MaxConnsPerHost: c, ForceAttemptHTTP2: false}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	// Untimed: open c connections to each replica.
	var wg sync.WaitGroup
	for _, u := range urls {
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := hc.Get(u + apiv1.PathHealth); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
	}
	wg.Wait()

	lat := make([]time.Duration, n)
	status := make([]int, n)
	bodies := make([][]byte, n)
	var next atomic.Int64
	srvCPU0, cliCPU0 := procCPU(pids), selfCPU()
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				resp, err := hc.Post(urls[i%len(urls)]+apiv1.PathEnroll, "application/json", bytes.NewReader(items[i].body))
				if err != nil {
					status[i] = -1
					lat[i] = time.Since(t0)
					continue
				}
				bodies[i], _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				status[i], lat[i] = resp.StatusCode, time.Since(t0)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	srvCPU, cliCPU := procCPU(pids)-srvCPU0, selfCPU()-cliCPU0

	// Untimed: check every answer.
	errors := 0
	var firstErr string
	for i := range items {
		if err := check(status[i], bodies[i], items[i], roots); err != nil {
			errors++
			if firstErr == "" {
				firstErr = err.Error()
			}
		}
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	pct := func(p float64) float64 {
		i := int(float64(n)*p+0.999999) - 1
		return float64(sorted[max(0, min(i, n-1))].Microseconds()) / 1000
	}
	fmt.Printf("%s c=%d n=%d rps=%.1f p50=%.2fms p99=%.2fms errors=%d rss_mb=%.1f srv_cpu_us=%d cli_cpu_us=%d\n",
		label, c, n, float64(n)/wall.Seconds(), pct(0.5), pct(0.99), errors, peakRSS(pids),
		srvCPU.Microseconds()/int64(n), cliCPU.Microseconds()/int64(n))
	if errors > 0 {
		return fmt.Errorf("%d of %d requests failed; first: %s", errors, n, firstErr)
	}
	return nil
}

func check(status int, body []byte, it item, roots *x509.CertPool) error {
	if status != http.StatusCreated {
		return fmt.Errorf("status %d: %.200s", status, body)
	}
	var res apiv1.CertResponse
	if err := json.Unmarshal(body, &res); err != nil {
		return err
	}
	var certs []*x509.Certificate
	for rest := []byte(res.Chain); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return err
		}
		certs = append(certs, cert)
	}
	if len(certs) < 2 {
		return fmt.Errorf("chain of %d certificates", len(certs))
	}
	leaf := certs[0]
	if leaf.Subject.CommonName != it.name || !it.key.PublicKey.Equal(leaf.PublicKey) {
		return fmt.Errorf("leaf %q does not match the CSR", leaf.Subject.CommonName)
	}
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// procCPU is utime+stime of pids, added up.
func procCPU(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		d += pidCPU(p)
	}
	return d
}

// pidCPU is utime+stime of pid (USER_HZ = 100).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the peak RSS of pids, added up, in MiB.
func peakRSS(pids []int) float64 {
	var mb float64
	for _, p := range pids {
		mb += pidRSS(p)
	}
	return mb
}

func pidRSS(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
