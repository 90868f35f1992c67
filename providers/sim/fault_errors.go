package sim

import (
	"net/http"
	"strconv"
	"time"
)

// statusFault returns the error a status fault answers on an endpoint, in the
// words and types the provider uses for that status, and the retry-after header
// value ("" for none). On the OpenAI endpoints a 529, which OpenAI does not use,
// is answered as the 503 OpenAI sends when it is overloaded.
func statusFault(a api, f Fault, model string) (*apiError, string) {
	status := f.Status
	if a != apiMessages && status == 529 {
		status = http.StatusServiceUnavailable
	}
	var e *apiError
	if a == apiMessages {
		e = anthropicStatusError(status)
	} else {
		e = openaiStatusError(status, model)
	}
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable &&
		status != 529 {
		return e, ""
	}
	wait := f.RetryAfter
	if wait <= 0 {
		wait = time.Second
	}
	seconds := (wait + time.Second - 1) / time.Second
	return e, strconv.Itoa(int(seconds))
}

// retryAfterMillis returns the retry-after-ms header of a status fault whose
// wait is not a whole number of seconds, "" otherwise.
func retryAfterMillis(f Fault, status int) string {
	if f.RetryAfter <= 0 || f.RetryAfter%time.Second == 0 {
		return ""
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, 529:
		return strconv.FormatInt(f.RetryAfter.Milliseconds(), 10)
	}
	return ""
}

// anthropicStatusError is the Messages API's error for an HTTP status (the
// error types of the Anthropic API errors page).
func anthropicStatusError(status int) *apiError {
	e := &apiError{status: status}
	switch status {
	case http.StatusBadRequest:
		e.kind, e.message = "invalid_request_error", "Simulated invalid request."
	case http.StatusUnauthorized:
		e.kind, e.message = "authentication_error", "invalid x-api-key"
	case http.StatusPaymentRequired:
		e.kind, e.message = "billing_error", "Your credit balance is too low."
	case http.StatusForbidden:
		e.kind, e.message = "permission_error",
			"Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		e.kind, e.message = "not_found_error", "The requested resource could not be found."
	case http.StatusRequestEntityTooLarge:
		e.kind, e.message = "request_too_large",
			"Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		e.kind, e.message = "rate_limit_error",
			"This request would exceed your organization's rate limit."
	case http.StatusGatewayTimeout:
		e.kind, e.message = "timeout_error", "Request timed out."
	case 529:
		e.kind, e.message = "overloaded_error", "Overloaded"
	default:
		e.kind, e.message = "api_error", "Internal server error"
		if status < 500 {
			e.kind, e.message = "invalid_request_error", "Simulated error."
		}
	}
	return e
}

// openaiStatusError is the OpenAI API's error for an HTTP status (the error
// codes page of the OpenAI API).
func openaiStatusError(status int, model string) *apiError {
	e := &apiError{status: status, kind: "invalid_request_error"}
	switch status {
	case http.StatusUnauthorized:
		e.code = "invalid_api_key"
		e.message = "Incorrect API key provided. You can find your API key at " +
			"https://platform.openai.com/account/api-keys."
	case http.StatusForbidden:
		e.code = "unsupported_country_region_territory"
		e.message = "Country, region, or territory not supported"
	case http.StatusNotFound:
		e.code = "model_not_found"
		e.message = "The model `" + model + "` does not exist or you do not have access to it."
	case http.StatusTooManyRequests:
		e.kind, e.code = "requests", "rate_limit_exceeded"
		e.message = "Rate limit reached for " + model + " on requests per min (RPM). " +
			"Please try again later."
	case http.StatusServiceUnavailable:
		e.kind = "server_error"
		e.message = "The engine is currently overloaded, please try again later"
	default:
		e.message = "Simulated error."
		if status >= 500 {
			return serverError(apiChat)
		}
	}
	return e
}

// serverError is the provider's 500.
func serverError(a api) *apiError {
	if a == apiMessages {
		return anthropicStatusError(http.StatusInternalServerError)
	}
	return &apiError{status: http.StatusInternalServerError, kind: "server_error",
		message: "The server had an error while processing your request. Sorry about that!"}
}

// anthropicErrorEvent is the error event of a Messages stream: Anthropic sends
// overloaded_error in the middle of a stream when it is overloaded.
func anthropicErrorEvent(int) (string, any) {
	return "error", map[string]any{"type": "error", "error": map[string]string{
		"type": "overloaded_error", "message": "Overloaded"}}
}

// chatErrorEvent is the error chunk of a Chat Completions stream: a data line
// with an error object and no event name.
func chatErrorEvent(int) (string, any) {
	e := serverError(apiChat)
	return "", map[string]any{"error": map[string]any{"message": e.message,
		"type": e.kind, "param": nil, "code": nil}}
}

// responsesErrorEvent is the error event of a Responses stream, numbered in the
// stream's sequence.
func responsesErrorEvent(sent int) (string, any) {
	e := serverError(apiResponses)
	return "error", map[string]any{"type": "error", "code": "server_error",
		"message": e.message, "param": nil, "sequence_number": sent}
}
