package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/ca"
	"github.com/anchorage-pki/anchorage/problem"
)

// step-ca's wire shapes, so an unmodified step CLI (`step ca certificate
// --token`, `step ca renew [--daemon]`, `step ca root`, `step ca health`)
// works against this CA with anchorage's own tokens. Only the shapes are
// step-ca's: /sign goes through EnrollHandler.Enroll (the same token
// verification, name binding, single use and recording as /v1/enroll) and
// /renew through the same lineage rules as /v1/renew. The types are written
// here rather than imported from github.com/smallstep/certificates/api,
// which would link step-ca's whole authority into this binary for four
// JSON structs.

// Paths as step-ca serves them, each also under /1.0.
const (
	pathStepSign  = "/sign"
	pathStepRenew = "/renew"
	pathStepRoots = "/roots"
	pathStepRoot  = "/root/"
	stepPrefix    = "/1.0"
)

// stepSignRequest is step-ca's api.SignRequest. notBefore/notAfter are an
// RFC 3339 time or a Go duration from now, as step-ca's TimeDuration.
type stepSignRequest struct {
	CSR          string          `json:"csr"`
	OTT          string          `json:"ott"`
	NotBefore    string          `json:"notBefore,omitempty"`
	NotAfter     string          `json:"notAfter,omitempty"`
	TemplateData json.RawMessage `json:"templateData,omitempty"`
}

// stepSignResponse is step-ca's api.SignResponse: PEM strings.
type stepSignResponse struct {
	Crt       string   `json:"crt"`
	CA        string   `json:"ca"`
	CertChain []string `json:"certChain"`
}

type stepRootResponse struct {
	CA string `json:"ca"`
}

type stepRootsResponse struct {
	Crts []string `json:"crts"`
}

// stepProblem is a problem document that step's client can also read: it
// decodes {"status", "message"} (errs.Error) and prints message.
type stepProblem struct {
	problem.Details
	Message string `json:"message"`
}

// SameKeyRenewer renews a certificate keeping its key, possession proven
// by mTLS alone (ca.Authority implements it): step's /renew has no CSR.
type SameKeyRenewer interface {
	RenewSameKey(ctx context.Context, current *x509.Certificate) (*ca.Issued, error)
}

// StepOptions turn on the step-ca compatible endpoints.
type StepOptions struct {
	Enroll *EnrollHandler      // /sign
	Renew  SameKeyRenewer      // /renew
	Roots  []*x509.Certificate // /roots and /root/{sha256}
}

func (s *Server) stepRoutes(o *StepOptions) {
	for _, p := range []string{"", stepPrefix} {
		s.mux.HandleFunc(p+pathStepSign, s.stepPost(func(w http.ResponseWriter, r *http.Request) { s.stepSign(w, r, o) }))
		s.mux.HandleFunc(p+pathStepRenew, s.stepPost(func(w http.ResponseWriter, r *http.Request) { s.stepRenew(w, r, o) }))
		s.mux.HandleFunc(p+pathStepRoots, s.stepGet(func(w http.ResponseWriter, r *http.Request) { s.stepRoots(w, r, o) }))
		s.mux.HandleFunc(p+pathStepRoot, s.stepGet(func(w http.ResponseWriter, r *http.Request) { s.stepRoot(w, r, o) }))
	}
}

func writeStepProblem(w http.ResponseWriter, r *http.Request, err error) {
	d := problem.Describe(r, err)
	problem.WriteDetails(w, d, stepProblem{Details: d, Message: d.Detail})
}

func (s *Server) stepPost(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeStepProblem(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use POST"))
			return
		}
		h(w, r)
	}
}

func (s *Server) stepGet(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeStepProblem(w, r, problem.New(http.StatusMethodNotAllowed, problem.MethodNotAllowed, "use GET"))
			return
		}
		h(w, r)
	}
}

func (s *Server) stepSign(w http.ResponseWriter, r *http.Request, o *StepOptions) {
	req, csr, err := decodeWithCSR(w, r, func(q *stepSignRequest) string { return q.CSR })
	if err != nil {
		writeStepProblem(w, r, err)
		return
	}
	if len(req.TemplateData) > 0 && string(req.TemplateData) != "null" && string(req.TemplateData) != "{}" {
		writeStepProblem(w, r, problem.New(http.StatusBadRequest, problem.Malformed,
			"templateData: this CA issues one certificate profile and takes no template data"))
		return
	}
	now := s.o.Now()
	lifetime, err := stepLifetime(req.NotBefore, req.NotAfter, now)
	if err != nil {
		writeStepProblem(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "%v", err))
		return
	}
	iss, err := o.Enroll.Enroll(r, req.OTT, csr, lifetime)
	if err != nil {
		writeStepProblem(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, stepSign(iss))
}

func (s *Server) stepRenew(w http.ResponseWriter, r *http.Request, o *StepOptions) {
	cur, r, err := s.renewingCert(r)
	if err != nil {
		writeStepProblem(w, r, err)
		return
	}
	// step sends no body (or an empty one); anything else is not step.
	var body [1]byte
	if n, _ := r.Body.Read(body[:]); n > 0 {
		writeStepProblem(w, r, problem.New(http.StatusBadRequest, problem.Malformed,
			"renew takes no body (to change the key, POST /v1/renew with a CSR)"))
		return
	}
	iss, err := o.Renew.RenewSameKey(r.Context(), cur)
	if err != nil {
		writeStepProblem(w, r, s.renewProblem(cur, err))
		return
	}
	WriteJSON(w, http.StatusCreated, stepSign(iss))
}

func (s *Server) stepRoots(w http.ResponseWriter, _ *http.Request, o *StepOptions) {
	out := stepRootsResponse{Crts: []string{}}
	for _, c := range o.Roots {
		out.Crts = append(out.Crts, certPEM(c))
	}
	WriteJSON(w, http.StatusOK, out)
}

// stepRoot answers GET /root/{sha256}: the root with that fingerprint.
// `step ca root --fingerprint` fetches it without trusting the TLS chain
// and then checks the fingerprint itself.
func (s *Server) stepRoot(w http.ResponseWriter, r *http.Request, o *StepOptions) {
	sum := strings.ToLower(strings.ReplaceAll(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], ":", ""))
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		writeStepProblem(w, r, problem.New(http.StatusBadRequest, problem.Malformed, "want /root/<hex SHA-256 of the root certificate>"))
		return
	}
	for _, c := range o.Roots {
		got := sha256.Sum256(c.Raw)
		if subtle.ConstantTimeCompare(got[:], want) == 1 {
			WriteJSON(w, http.StatusOK, stepRootResponse{CA: certPEM(c)})
			return
		}
	}
	writeStepProblem(w, r, problem.New(http.StatusNotFound, problem.NotFound, "no root with fingerprint %s", sum))
}

func stepSign(iss *ca.Issued) stepSignResponse {
	out := stepSignResponse{Crt: certPEM(iss.Cert)}
	for _, c := range iss.Chain {
		out.CertChain = append(out.CertChain, certPEM(c))
	}
	if len(iss.Chain) > 1 {
		out.CA = certPEM(iss.Chain[1])
	}
	return out
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// stepLifetime turns step's notBefore/notAfter into a lifetime from now.
// A certificate starts now (a later start is refused rather than silently
// ignored); notAfter may shorten the lifetime, and the CA caps it at its
// maximum as for every certificate.
func stepLifetime(notBefore, notAfter string, now time.Time) (time.Duration, error) {
	if notBefore != "" {
		nb, err := stepTime(notBefore, now)
		if err != nil {
			return 0, err
		}
		if nb.After(now.Add(time.Minute)) {
			return 0, errNotBefore
		}
	}
	if notAfter == "" {
		return 0, nil
	}
	na, err := stepTime(notAfter, now)
	if err != nil {
		return 0, err
	}
	d := na.Sub(now)
	if d < time.Minute {
		return 0, errNotAfter
	}
	return d, nil
}

type stepTimeError string

func (e stepTimeError) Error() string { return string(e) }

const (
	errNotBefore = stepTimeError("notBefore: certificates start now; a later start is not supported")
	errNotAfter  = stepTimeError("notAfter: must be at least a minute from now")
)

// stepTime parses step-ca's TimeDuration: RFC 3339, or a duration from now.
func stepTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, stepTimeError("time " + `"` + s + `"` + ": want RFC 3339 or a duration like 8h")
	}
	return now.Add(d), nil
}
