package bench

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/gorilla/websocket"
)

// Reasons a connection could not be made or was lost; the run counts them by
// name and stops opening connections on the ones that say a limit is reached.
const (
	ReasonOpenFiles    = "open_files"     // this process reached its open-file limit
	ReasonNoPort       = "no_source_port" // no ephemeral port left for the source address
	ReasonRefused      = "refused"        // nothing listens, or the accept queue is full
	ReasonReset        = "reset"          // the server reset the connection
	ReasonTimeout      = "timeout"        // no answer in time (a server at its limit?)
	ReasonClosed       = "closed"         // the server closed the connection
	ReasonOther        = "other"
	reasonHandshakeFmt = "handshake_http_%d" // the server refused the upgrade
)

// fatalReason reports whether reason means that opening more connections
// cannot succeed, so the run stops opening.
func fatalReason(reason string) bool {
	return reason == ReasonOpenFiles || reason == ReasonNoPort
}

// connError is a failed dial with the reason it is counted under.
type connError struct {
	reason string
	err    error
}

func (e *connError) Error() string { return "bench: connect: " + e.reason + ": " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// dialError classifies a failed WebSocket dial.
func dialError(err error, resp *http.Response) error {
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		return &connError{reason: fmt.Sprintf(reasonHandshakeFmt, resp.StatusCode), err: err}
	}
	return &connError{reason: reasonOf(err), err: err}
}

// lossReason classifies the end of a connection the bench did not close.
func lossReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s_%d", ReasonClosed, ce.Code)
	}
	return reasonOf(err)
}

// reasonOf names the system error behind err.
func reasonOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return ReasonOpenFiles
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE):
		return ReasonNoPort
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return ReasonReset
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return ReasonTimeout
	case errors.Is(err, net.ErrClosed):
		return ReasonClosed
	}
	return ReasonOther
}

// reasonOfErr is the reason a connError carries, or the one of the system
// error behind err.
func reasonOfErr(err error) string {
	var ce *connError
	if errors.As(err, &ce) {
		return ce.reason
	}
	return reasonOf(err)
}
