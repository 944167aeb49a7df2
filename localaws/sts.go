package localaws

import (
	"encoding/xml"
	"net/http"
	"net/url"
)

// STS GetCallerIdentity. aws-sdk-go-v2's STS client (service/sts v1.51.x)
// speaks awsquery: a form POST "Action=GetCallerIdentity&Version=2011-06-15"
// signed for service "sts", answered with XML. Errors use the STS codes:
// MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId,
// ExpiredToken, SignatureDoesNotMatch.

const stsVersion = "2011-06-15"

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	if r.Method != http.MethodPost {
		s.refuseSTS(w, r, reqID, &apiError{Status: http.StatusBadRequest, Code: "InvalidAction", Message: "STS actions must be POSTed as a form"})
		return
	}
	caller, sigErr := s.verifySigV4(r, body, "sts", s.now())
	if sigErr != nil {
		s.refuseSTS(w, r, reqID, stsAuthError(sigErr))
		return
	}
	who := []any{"access_key_id", caller.AccessKeyID}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.refuseSTS(w, r, reqID, &apiError{Status: http.StatusBadRequest, Code: "MalformedInput", Message: "request body is not a form"}, who...)
		return
	}
	if form.Get("Action") != "GetCallerIdentity" {
		s.refuseSTS(w, r, reqID, &apiError{Status: http.StatusBadRequest, Code: "InvalidAction",
			Message: "Could not find operation " + form.Get("Action") + " for version " + form.Get("Version")}, who...)
		return
	}
	if form.Get("Version") != stsVersion {
		s.refuseSTS(w, r, reqID, &apiError{Status: http.StatusBadRequest, Code: "InvalidAction",
			Message: "Could not find operation GetCallerIdentity for version " + form.Get("Version")}, who...)
		return
	}
	var out getCallerIdentityResponse
	out.Xmlns = stsNamespace
	out.Result.Arn = s.principalArn(caller)
	out.Result.Account = caller.Account
	out.Result.UserID = caller.Account // what AWS reports for root credentials
	if caller.Session != nil {
		out.Result.UserID = caller.Session.AssumedRoleID
	}
	out.Metadata.RequestID = reqID
	s.logDecision(r, reqID, "GetCallerIdentity", nil, append(who, "arn", out.Result.Arn)...)
	writeXML(w, http.StatusOK, out)
}

// stsAuthError maps a SigV4 failure to STS's awsquery error codes.
func stsAuthError(e *sigV4Error) *apiError {
	out := &apiError{Status: http.StatusForbidden, Reason: e.Reason}
	switch e.Kind {
	case sigMissing:
		out.Code, out.Message = "MissingAuthenticationToken", "Request is missing Authentication Token"
	case sigMalformed:
		out.Status, out.Code, out.Message = http.StatusBadRequest, "IncompleteSignature", "Request signature is incomplete: "+e.Reason
	case sigUnknownKey:
		out.Code, out.Message = "InvalidClientTokenId", "The security token included in the request is invalid."
	case sigExpiredToken:
		out.Code, out.Message = "ExpiredToken", "The security token included in the request is expired"
	case sigScope:
		out.Code, out.Message = "SignatureDoesNotMatch", "Credential should be scoped to a valid region and service: "+e.Reason
	case sigSkew:
		out.Code, out.Message = "SignatureDoesNotMatch", "Signature expired: "+e.Reason
	default:
		out.Code, out.Message = "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return out
}
