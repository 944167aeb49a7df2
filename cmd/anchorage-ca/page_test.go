package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds Debian's headless browser; the page test fails (never
// skips) without it: .ci/install-deps installs it.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run .ci/install-deps (apt-get install -y chromium)")
	return ""
}

// runChromium runs one headless chromium with a deadline and its own
// profile directory.
func runChromium(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, chromium(t), append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

var nodeRE = regexp.MustCompile(`<g [^>]*data-kind="([a-z]+)" data-id="([^"]+)"`)

// checkPage opens the audit's HTML page in headless Chromium: the DOM it
// builds holds a node for every anchor, profile and role ("kind ARN"),
// and the screenshot is not blank.
func checkPage(t *testing.T, file string, want []string) {
	t.Helper()
	url := "file://" + file
	dom := string(runChromium(t, "--dump-dom", url))
	have := map[string]bool{}
	for _, m := range nodeRE.FindAllStringSubmatch(dom, -1) {
		have[m[1]+" "+m[2]] = true
	}
	for _, n := range want {
		if !have[n] {
			t.Errorf("the rendered DOM has no node %s", n)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the page has a script")
	}
	shot := filepath.Join(t.TempDir(), "audit.png")
	runChromium(t, "--screenshot="+shot, "--window-size=1600,1200", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Min.Y)
	br, bgG, bb, _ := bg.RGBA()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r != br || g != bgG || bl != bb {
				n++
			}
		}
	}
	// Boxes, edges and text cover a few percent of the window at least.
	if total := b.Dx() * b.Dy(); n < total/100 {
		t.Errorf("screenshot %dx%d is blank: %d non-background pixels", b.Dx(), b.Dy(), n)
	} else {
		t.Logf("screenshot %dx%d: %d of %d pixels drawn (%s)", b.Dx(), b.Dy(), n, total, fmt.Sprint(float64(n) * 100 / float64(total))[:4]+"%")
	}
}
