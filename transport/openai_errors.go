package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// apiError is an error of the OpenAI-compatible API, written in OpenAI's shape:
// {"error":{"message","type","param","code"}} with an HTTP status.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"` // a string, or nil for JSON null
	Code    any    `json:"code"`  // a string, or nil for JSON null
}

func (e *apiError) Error() string { return "transport: " + e.Message }

// OpenAI's error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeNotFound       = "not_found_error"
	typeServer         = "server_error"
	typeRateLimit      = "rate_limit_error"
)

func invalidRequest(param, msg string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest,
		Message: fmt.Sprintf(msg, args...)}
	if param != "" {
		e.Param = param
	}
	return e
}

func notFound(code, param, msg string, args ...any) *apiError {
	e := &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest,
		Message: fmt.Sprintf(msg, args...)}
	if code != "" {
		e.Code = code
	}
	if param != "" {
		e.Param = param
	}
	return e
}

func modelNotFound(model string) *apiError {
	return notFound("model_not_found", "model",
		"The model `%s` does not exist or you do not have access to it.", model)
}

func internalError() *apiError {
	return &apiError{Status: http.StatusInternalServerError, Type: typeServer,
		Code: "internal_error", Message: "internal error; retry the request"}
}

// apiErrorOf translates an error of the session layer. Errors that are not the
// client's fault are logged here and reach the client without their details.
func (a *openaiAPI) apiErrorOf(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	code := codeOf(err)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return notFound("session_not_found", "", "%s", err.Error())
	case errors.Is(err, session.ErrBusy):
		return &apiError{Status: http.StatusConflict, Type: typeInvalidRequest, Code: code,
			Message: "an answer of this session is in progress; retry when it has ended"}
	case errors.Is(err, session.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: code,
			Message: "the server is shutting down; retry"}
	case errors.Is(err, session.ErrOwnedElsewhere), errors.Is(err, session.ErrNotOwner):
		// In a cluster, the HTTP API serves the sessions this node owns or can take.
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: code,
			Message: "another node serves this conversation; retry"}
	case errors.Is(err, finops.ErrBudgetExceeded):
		return &apiError{Status: http.StatusTooManyRequests, Type: "insufficient_quota",
			Code: code, Message: err.Error()}
	case errors.Is(err, session.ErrPaused):
		return &apiError{Status: http.StatusTooManyRequests, Type: typeInvalidRequest,
			Code: code, Message: err.Error()}
	case errors.Is(err, session.ErrMoved):
		return &apiError{Status: http.StatusConflict, Type: typeInvalidRequest,
			Code: "conversation_moved", Message: "the conversation moved on; retry"}
	case code != wire.CodeInternal:
		return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: code,
			Message: err.Error()}
	}
	a.log.Error("openai api request failed", "err", err)
	return internalError()
}

// answerError is the error for an answer that failed or was cut, by its code.
func answerError(code string) *apiError {
	e := &apiError{Status: http.StatusBadGateway, Type: typeServer, Code: code,
		Message: "the model provider failed: " + code}
	switch code {
	case "provider_rate_limited":
		e.Status, e.Type = http.StatusTooManyRequests, typeRateLimit
	case "provider_timeout":
		e.Status = http.StatusGatewayTimeout
	case "shutdown":
		e.Status = http.StatusServiceUnavailable
	}
	return e
}

// writeError writes e as the response.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, struct {
		Error *apiError `json:"error"`
	}{e})
}

// writeJSON writes v as the response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"message":"response not encoded","type":"server_error",` +
			`"param":null,"code":"internal_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
