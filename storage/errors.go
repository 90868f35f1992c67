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
	// ErrFenced means a newer owner of the session has fenced its log: the writer
	// holds an older ownership (or none) and must stop writing for the session.
	// Retrying cannot help; only a new claim of ownership and a new fence can.
	ErrFenced = errors.New("storage: fenced by a newer owner")
	// ErrInvalidOwner means an owner name is empty, too long or not printable
	// ASCII, or an ownership revision is zero.
	ErrInvalidOwner = errors.New("storage: invalid owner")
	// ErrCorrupt means bytes read back from disk do not decode; the store or the
	// files under it were damaged.
	ErrCorrupt = errors.New("storage: stored data is corrupt")
)
