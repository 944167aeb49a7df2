package agent_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/agent"
)

// dropFirstAnswer forwards TCP connections to target; on the first
// connection it passes the request through but closes before the answer
// reaches the client, as a network that fails at the worst moment would.
func dropFirstAnswer(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			first := n.Add(1) == 1
			go func() {
				defer c.Close()
				up, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				if first {
					// Let the server read and act on the request, then
					// drop everything it says.
					up.SetReadDeadline(time.Now().Add(time.Second))
					io.Copy(io.Discard, up)
					return
				}
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// A rekeying renewal whose answer was lost is retried with the same new
// key, so the CA hands back the successor it already issued instead of
// refusing the now-superseded certificate: the host never locks itself out.
func TestRekeyRenewalAnswerLost(t *testing.T) {
	c := shortCA(t, time.Hour)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "host.crt"), filepath.Join(dir, "host.key")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, _ := os.ReadFile(mintToken(t, c, dir, "lost-answer-host"))
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"), Token: string(tok), Cert: certFile, Key: keyFile}); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(c.Cfg.Listen)
	proxy := dropFirstAnswer(t, "127.0.0.1:"+port)
	_, proxyPort, _ := net.SplitHostPort(proxy)
	// The CA's certificate names 127.0.0.1; the proxy listens there too.
	o := agent.RenewOptions{CA: "https://127.0.0.1:" + proxyPort, Root: filepath.Join(c.Dir, "root.crt"), Cert: certFile, Key: keyFile, Rekey: true}
	if _, err := agent.Renew(ctx, o); err == nil {
		t.Fatal("the first renewal's answer was dropped, yet it succeeded")
	}
	if _, err := os.Stat(keyFile + ".next"); err != nil {
		t.Fatalf("the pending key was not kept for the retry: %v", err)
	}
	res, err := agent.Renew(ctx, o)
	if err != nil {
		t.Fatalf("retry after a lost answer: %v", err)
	}
	list, err := c.Admin(t).Certs(ctx, "lost-answer-host", "", 0, "")
	if err != nil || len(list.Certs) != 2 {
		t.Fatalf("certificates of the host: %+v %v (want the enrollment and one renewal)", list, err)
	}
	if list.Certs[0].Serial != res.Serial && list.Certs[1].Serial != res.Serial {
		t.Errorf("retry returned %s, not the successor the CA issued", res.Serial)
	}
	if _, err := os.Stat(keyFile + ".next"); !os.IsNotExist(err) {
		t.Errorf("pending key left behind after the renewal landed: %v", err)
	}
}
