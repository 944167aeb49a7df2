package acme_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testDNS is a tiny authoritative DNS server for the CA's validator and
// lego: every A query answers 127.0.0.1, AAAA answers nothing, TXT answers
// what was set. Its management API speaks pebble-challtestsrv's /set-txt
// and /clear-txt, which testdata/acme-client.sh calls to publish dns-01
// records.
type testDNS struct {
	addr    string // UDP HOST:PORT
	mgmtURL string
	mu      sync.Mutex
	txt     map[string][]string // lowercase FQDN with trailing dot
}

func startDNS(t testing.TB) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	go d.serve(pc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /set-txt", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Host, Value string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Host == "" {
			http.Error(w, "want {host, value}", http.StatusBadRequest)
			return
		}
		d.SetTXT(in.Host, in.Value)
	})
	mux.HandleFunc("POST /clear-txt", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Host string }
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "want {host}", http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		delete(d.txt, fqdn(in.Host))
		d.mu.Unlock()
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	d.mgmtURL = "http://" + ln.Addr().String()
	t.Cleanup(func() { pc.Close(); hs.Close() })
	return d
}

func fqdn(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) + "." }

// SetTXT adds a TXT value for name.
func (d *testDNS) SetTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[fqdn(name)] = append(d.txt[fqdn(name)], value)
}

func (d *testDNS) serve(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := d.answer(buf[:n]); out != nil {
			pc.WriteTo(out, from)
		}
	}
}

func (d *testDNS) answer(in []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(in)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	switch q.Type {
	case dnsmessage.TypeA:
		b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	case dnsmessage.TypeTXT:
		d.mu.Lock()
		vals := d.txt[strings.ToLower(q.Name.String())]
		d.mu.Unlock()
		for _, v := range vals {
			b.TXTResource(rh, dnsmessage.TXTResource{TXT: []string{v}})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
