package storage

import "errors"

var (
	// ErrNotFound means no session has that ID.
	ErrNotFound = errors.New("storage: session not found")
	// ErrExists means a session with that ID already exists.
	ErrExists = errors.New("storage: session already exists")
	// ErrSeqConflict means an append did not continue the log where it ends: another
	// writer got there first, or the caller's view of the log is stale.
	ErrSeqConflict = errors.New("storage: seq does not continue the log")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("storage: store closed")
	// ErrInvalidID means a session ID is empty or longer than MaxIDLen bytes.
	ErrInvalidID = errors.New("storage: invalid session id")
	// ErrInvalidRecord means an append carried no records, or a record with no data.
	ErrInvalidRecord = errors.New("storage: invalid record")
	// ErrTooLarge means a meta record, a record or an append passed one of the
	// size limits (MaxTenantLen, MaxMetaDataBytes, MaxRecordBytes, MaxAppendRecords).
	ErrTooLarge = errors.New("storage: too large")
	// ErrCorrupt means bytes read back from disk do not decode; the store or the
	// files under it were damaged.
	ErrCorrupt = errors.New("storage: stored data is corrupt")
)
