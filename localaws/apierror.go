package localaws

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
)

// apiError is an AWS-shaped refusal. Message is what the caller sees; Reason
// is the longer explanation that only goes to the log, so the wire message can
// stay as terse as AWS's while the operator still learns what went wrong.
type apiError struct {
	Status  int
	Code    string
	Message string
	Reason  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// logReason is the most specific explanation available for the log.
func (e *apiError) logReason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return e.Message
}

func validationError(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "ValidationException", Message: fmt.Sprintf(format, args...)}
}

func accessDenied(message, reason string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "AccessDeniedException", Message: message, Reason: reason}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: fmt.Sprintf(format, args...)}
}

func internalError(reason string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: "Internal server error", Reason: reason}
}

// throttled is shaped so that aws-sdk-go-v2's retryer classifies it as
// throttling: "ThrottlingException" is in its DefaultThrottleErrorCodes and
// 429 is the status AWS's REST-JSON services use for it.
func throttled(group string) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: "ThrottlingException", Message: "Rate exceeded", Reason: "rate limit of the " + group + " API group exceeded"}
}

// writeJSON answers a REST-JSON success.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every response type here is plain data; failing to marshal is a bug.
		panic(fmt.Sprintf("localaws: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeRESTJSONError answers in the REST-JSON error shape (§4.2): the code in
// x-amzn-ErrorType, the message in the body's "message".
func writeRESTJSONError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("x-amzn-ErrorType", e.Code)
	writeJSON(w, e.Status, struct {
		Message string `json:"message"`
	}{e.Message})
}

// stsNamespace is the XML namespace of every STS awsquery response.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// writeSTSError answers in the awsquery error shape that aws-sdk-go-v2's STS
// client parses (ErrorResponse/Error/Code+Message, RequestId).
func writeSTSError(w http.ResponseWriter, requestID string, e *apiError) {
	writeQueryError(w, stsNamespace, requestID, e)
}

// writeQueryError answers in the awsquery error shape of namespace ns
// (STS, IAM): ErrorResponse/Error{Type,Code,Message}, RequestId.
func writeQueryError(w http.ResponseWriter, ns, requestID string, e *apiError) {
	type errorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type errorResponse struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Xmlns     string    `xml:"xmlns,attr"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}
	kind := "Sender"
	if e.Status >= 500 {
		kind = "Receiver"
	}
	writeXML(w, e.Status, errorResponse{Xmlns: ns, Error: errorBody{Type: kind, Code: e.Code, Message: e.Message}, RequestID: requestID})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("localaws: marshal XML response: %v", err))
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
