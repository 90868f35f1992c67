package storage

// JetStream keeps sessions in one NATS JetStream stream, replicated by NATS, for
// a cluster of nodes that share it.
//
// Layout. Every session has one subject, stated.log.<token>, where the token is
// the session ID in unpadded base64url (IDs may hold any bytes; subjects may
// not). The subject holds, in order:
//
//	meta    the session's meta record (the first message; Create writes it)
//	record  one record of the log, Data as the payload
//	fence   a marker that a new owner took the session over
//
// Each message carries headers: Stated-Kind (meta, record, fence), Stated-Seq
// (a record's seq; for meta 0; for a fence the last seq when it was set),
// Stated-Owner and Stated-Revision (the ownership the writer held; empty and 0
// for a writer without one). So the subject's last message alone says where the
// log ends and who wrote last, and the meta record lives in the same subject as
// the log, which makes Create one atomic publish and Append one read and one
// publish.
//
// Continuity. Append reads the subject's last message, checks the records
// continue its seq, and publishes them with Nats-Expected-Last-Subject-Sequence
// set to that message's stream sequence: if anything reached the subject in
// between, the server rejects the write and nothing lands. The records of one
// Append go in one JetStream atomic batch (nats-server 2.12 and later), so they
// land all or none.
//
// Fencing. Fence(id, owner, revision) appends a fence message with the owner's
// lease revision, and the store stamps every later Append of that session with
// the same ownership. A writer whose ownership is older than the last message's
// is refused with ErrFenced before it publishes; one whose view of the subject
// predates the fence is refused by the server, because the fence moved the
// subject's last sequence, and then finds the fence and reports ErrFenced.
//
// Reads. The subject's first and last messages are read from the stream's
// leader: the stream does not allow direct gets, which followers may answer
// from moments behind. Read replays the subject through a short-lived consumer,
// which may run on a follower, up to the last message the leader reported; so
// every read sees every write acknowledged before it began.
//
// Message size. A record of MaxRecordBytes and its headers must fit one NATS
// message, so the NATS servers need max_payload above the 1 MiB default; 2MB or
// more does. OpenJetStream checks it.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// DefaultJetStreamStream is the stream's name when JetStreamOptions.Stream is
	// empty.
	DefaultJetStreamStream = "STATED_LOG"
	// MaxOwnerLen is the longest owner name Fence accepts, in bytes.
	MaxOwnerLen = 128
	// MaxJetStreamReplicas is the most replicas JetStream allows a stream.
	MaxJetStreamReplicas = 5

	jsSubjectPrefix = "stated.log."
	// maxStreamNameLen bounds JetStreamOptions.Stream.
	maxStreamNameLen = 64

	// jsHeadroom is what headers and the meta encoding add to a payload at the
	// limit; the connection's max payload must leave this much room.
	jsHeadroom = 8 << 10
	// jsFetchBatch bounds the messages one read fetch asks for, so that records
	// at the size limit stay under the client's pending-bytes limit (64 MiB).
	jsFetchBatch = 32
	// jsFetchTimeout bounds how long a read waits for its next messages.
	jsFetchTimeout = 5 * time.Second
	// jsRetryWait is the pause before a read asks its consumer again.
	jsRetryWait = 10 * time.Millisecond
	// A publish that finds no stream listening reached no one, so it is safe to
	// send again; that happens for a moment after the stream is created or
	// changes leader. jsPublishRetries times jsPublishWait bounds the wait.
	jsPublishRetries = 20
	jsPublishWait    = 50 * time.Millisecond
	// jsReaderAttempts and jsReaderTimeout bound the creation of a read's
	// consumer. For seconds after a server is lost, each attempt may be placed
	// on it (one chance in three with three replicas); six attempts make a
	// read fail that way about once in 700.
	jsReaderAttempts = 6
	jsReaderTimeout  = 2 * time.Second
	// jsReaderIdle is how long the server keeps a read's consumer that its reader
	// abandoned; a reader deletes it when done.
	jsReaderIdle = 30 * time.Second
	// jsAdminTimeout bounds one attempt to create or update the stream.
	jsAdminTimeout = 5 * time.Second
	// jsFenceAttempts bounds how often Fence retries when writes keep landing
	// between its read and its publish.
	jsFenceAttempts = 8
)

// Message headers and kinds; see the layout at the top of this file.
const (
	hdrKind     = "Stated-Kind"
	hdrSeq      = "Stated-Seq"
	hdrOwner    = "Stated-Owner"
	hdrRevision = "Stated-Revision"

	msgMeta   = "meta"
	msgRecord = "record"
	msgFence  = "fence"

	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// JetStreamOptions configures OpenJetStream. The zero value is one replica of
// DefaultJetStreamStream.
type JetStreamOptions struct {
	// Stream is the stream's name: letters, digits, '-' and '_', at most 64
	// bytes; empty means DefaultJetStreamStream.
	Stream string
	// Replicas is how many servers keep the stream, 1 to MaxJetStreamReplicas;
	// 0 means 1. Three replicas survive the loss of one server.
	Replicas int
}

// JetStream is the cluster Store, on a NATS JetStream stream shared by every
// node. It is safe for concurrent use; any number of stores, on any nodes, may
// write the same stream, and ownership fences (Fence) keep a stale owner from
// writing a session.
type JetStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream

	// writersMu guards writers: the ownership this store writes each session
	// under, set by Fence.
	writersMu sync.Mutex
	writers   map[string]logWriter

	// stateMu guards closed. Every call holds it for reading while it runs, so
	// Close waits for the calls in progress.
	stateMu sync.RWMutex
	closed  bool
}

var _ Store = (*JetStream)(nil)

// logEntry is what the headers of one message on a session's subject say.
type logEntry struct {
	streamSeq uint64
	kind      string
	seq       uint64
	writer    logWriter
}

// OpenJetStream creates the stream, or updates its configuration, and returns a
// store on it; while the request times out it tries again until ctx ends. It
// fails if the connection's max payload cannot carry a record
// at the size limit, or if the server cannot publish atomic batches (before
// nats-server 2.12). Close does not close js's connection; the caller owns it.
func OpenJetStream(ctx context.Context, js jetstream.JetStream,
	opts JetStreamOptions) (*JetStream, error) {
	if opts.Stream == "" {
		opts.Stream = DefaultJetStreamStream
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if !validJSStreamName(opts.Stream) {
		return nil, fmt.Errorf("storage: jetstream: stream name %q: want 1 to %d letters, "+
			"digits, '-' or '_'", opts.Stream, maxStreamNameLen)
	}
	if opts.Replicas < 1 || opts.Replicas > MaxJetStreamReplicas {
		return nil, fmt.Errorf("storage: jetstream: %d replicas, want 1 to %d",
			opts.Replicas, MaxJetStreamReplicas)
	}
	need := int64(max(MaxRecordBytes, MaxMetaDataBytes) + jsHeadroom)
	if got := js.Conn().MaxPayload(); got < need {
		return nil, fmt.Errorf("storage: jetstream: server max_payload is %d bytes, "+
			"need at least %d (set max_payload: 2MB)", got, need)
	}

	stream, err := createStream(ctx, js, jetstream.StreamConfig{
		Name:               opts.Stream,
		Description:        "stated session logs",
		Subjects:           []string{jsSubjectPrefix + ">"},
		Storage:            jetstream.FileStorage,
		Replicas:           opts.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		AllowAtomicPublish: true,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: jetstream: stream %s: %w", opts.Stream, err)
	}
	if !stream.CachedInfo().Config.AllowAtomicPublish {
		return nil, errors.New("storage: jetstream: the server cannot publish atomic " +
			"batches; it needs nats-server 2.12 or later")
	}
	return &JetStream{js: js, stream: stream, writers: make(map[string]logWriter)}, nil
}

// createStream creates or updates the stream. A cluster that is starting, or
// electing a leader, may drop the request unanswered; since the request can be
// repeated, it is, with a timeout per attempt, until ctx ends.
func createStream(ctx context.Context, js jetstream.JetStream,
	cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	for {
		attempt, cancel := context.WithTimeout(ctx, jsAdminTimeout)
		stream, err := js.CreateOrUpdateStream(attempt, cfg)
		cancel()
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if err == nil || !timedOut || ctx.Err() != nil {
			return stream, err
		}
	}
}

// Close marks the store closed after the calls in progress finish. It does not
// close the NATS connection. It is safe to call more than once and returns nil;
// every other method returns ErrClosed after it.
func (s *JetStream) Close() error {
	s.stateMu.Lock()
	s.closed = true
	s.stateMu.Unlock()
	return nil
}

// begin checks that the store is open and ctx alive, and holds the store open
// until the returned function is called.
func (s *JetStream) begin(ctx context.Context) (func(), error) {
	s.stateMu.RLock()
	if s.closed {
		s.stateMu.RUnlock()
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		s.stateMu.RUnlock()
		return nil, err
	}
	return s.stateMu.RUnlock, nil
}

// Create stores a new session with one publish that succeeds only on an empty
// subject. It returns ErrExists if the ID is taken, ErrInvalidID or ErrTooLarge
// for a meta record out of limits, ErrClosed after Close. If the answer is lost
// (a timeout), the session may exist; a retry then returns ErrExists.
func (s *JetStream) Create(ctx context.Context, meta Meta) error {
	if err := validateMeta(meta); err != nil {
		return err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	msg := logMsg(meta.ID, msgMeta, 0, logWriter{}, encodeMeta(meta))
	err = s.publish(ctx, msg, jetstream.WithExpectLastSequencePerSubject(0))
	switch {
	case err == nil:
		return nil
	case isWrongLastSeq(err):
		return ErrExists
	default:
		return fmt.Errorf("storage: jetstream: create: %w", err)
	}
}

// Meta returns the session's meta record, or ErrNotFound.
func (s *JetStream) Meta(ctx context.Context, id string) (Meta, error) {
	if err := validateID(id); err != nil {
		return Meta{}, err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return Meta{}, err
	}
	defer end()

	raw, err := s.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(logSubject(id)))
	if err != nil {
		return Meta{}, notFoundJS(err)
	}
	first, err := parseLogEntry(raw.Sequence, raw.Header)
	if err != nil {
		return Meta{}, err
	}
	if first.kind != msgMeta {
		return Meta{}, fmt.Errorf("%w: log starts with a %s message", ErrCorrupt, first.kind)
	}
	return decodeMeta(raw.Data)
}

// LastSeq returns the seq of the session's last record (0 for an empty log), or
// ErrNotFound.
func (s *JetStream) LastSeq(ctx context.Context, id string) (uint64, error) {
	if err := validateID(id); err != nil {
		return 0, err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()

	last, err := s.last(ctx, id)
	return last.seq, err
}

// Append adds recs to the session's log as Store.Append describes, in one
// atomic write, stamped with the ownership this store fenced the session with
// (none if it did not). It returns ErrSeqConflict if recs do not continue the
// log or another write landed first, ErrFenced if a newer owner has fenced or
// written the log, ErrNotFound, ErrInvalidID, ErrInvalidRecord or ErrTooLarge
// for input out of limits, and ErrClosed after Close.
//
// If the answer is lost (a timeout, a lost connection), the records may have
// landed: a retry of the same records then returns ErrSeqConflict, and Read
// tells what is there.
func (s *JetStream) Append(ctx context.Context, id string, recs []Record) error {
	if err := validateAppend(id, recs); err != nil {
		return err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	last, err := s.last(ctx, id)
	if err != nil {
		return err
	}
	return s.appendAfter(ctx, id, s.writerOf(id), last, recs)
}

// appendAfter publishes recs as w, expecting last to be the subject's last
// message. It is the step of Append after reading the log's end.
func (s *JetStream) appendAfter(ctx context.Context, id string, w logWriter, last logEntry,
	recs []Record) error {
	if err := w.check(last); err != nil {
		return err
	}
	if err := checkContinues(last.seq, recs); err != nil {
		return err
	}

	err := s.publishRecords(ctx, id, w, last.streamSeq, recs)
	if err == nil || !isWrongLastSeq(err) {
		return wrapJS("append", err)
	}

	// Another message reached the subject first; say whether it was a newer owner.
	now, lerr := s.last(ctx, id)
	if lerr == nil {
		if ferr := w.check(now); ferr != nil {
			return ferr
		}
	}
	return fmt.Errorf("%w: the log moved past stream sequence %d", ErrSeqConflict,
		last.streamSeq)
}

// publishRecords publishes recs on the session's subject, expecting the subject
// to end at stream sequence after. Several records go in one atomic batch: the
// server stores all of them or none, and checks the expectation, which the
// first message carries, when the last one commits the batch.
func (s *JetStream) publishRecords(ctx context.Context, id string, w logWriter, after uint64,
	recs []Record) error {
	if len(recs) == 1 {
		msg := logMsg(id, msgRecord, recs[0].Seq, w, recs[0].Data)
		return s.publish(ctx, msg, jetstream.WithExpectLastSequencePerSubject(after))
	}

	batch := rand.Text()
	for i, r := range recs {
		msg := logMsg(id, msgRecord, r.Seq, w, r.Data)
		msg.Header.Set(hdrBatchID, batch)
		msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == 0 {
			msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(after, 10))
		}
		if i == len(recs)-1 {
			msg.Header.Set(hdrBatchCommit, "1")
			return s.publish(ctx, msg)
		}
		// Without a reply subject the server answers only the commit, which
		// fails the whole batch if any message before it went missing.
		if err := s.js.Conn().PublishMsg(msg); err != nil {
			return err
		}
	}
	return nil
}

// publish publishes msg and waits for the stream's answer, asking again while
// no stream listens on the subject.
func (s *JetStream) publish(ctx context.Context, msg *nats.Msg,
	opts ...jetstream.PublishOpt) error {
	opts = append(opts, jetstream.WithRetryAttempts(jsPublishRetries),
		jetstream.WithRetryWait(jsPublishWait))
	_, err := s.js.PublishMsg(ctx, msg, opts...)
	return err
}

// last returns the session's last message, or ErrNotFound.
func (s *JetStream) last(ctx context.Context, id string) (logEntry, error) {
	raw, err := s.stream.GetLastMsgForSubject(ctx, logSubject(id))
	if err != nil {
		return logEntry{}, notFoundJS(err)
	}
	return parseLogEntry(raw.Sequence, raw.Header)
}

// logMsg builds a message for the session's subject.
func logMsg(id, kind string, seq uint64, w logWriter, data []byte) *nats.Msg {
	msg := nats.NewMsg(logSubject(id))
	msg.Header.Set(hdrKind, kind)
	msg.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	if w.revision != 0 {
		msg.Header.Set(hdrOwner, w.owner)
		msg.Header.Set(hdrRevision, strconv.FormatUint(w.revision, 10))
	}
	msg.Data = data
	return msg
}

// parseLogEntry reads the headers of the message at stream sequence streamSeq.
func parseLogEntry(streamSeq uint64, h nats.Header) (logEntry, error) {
	e := logEntry{streamSeq: streamSeq, kind: h.Get(hdrKind)}
	switch e.kind {
	case msgMeta, msgRecord, msgFence:
	default:
		return logEntry{}, fmt.Errorf("%w: message %d of unknown kind %q", ErrCorrupt, streamSeq,
			e.kind)
	}
	var err error
	if e.seq, err = strconv.ParseUint(h.Get(hdrSeq), 10, 64); err != nil {
		return logEntry{}, fmt.Errorf("%w: message %d: seq: %v", ErrCorrupt, streamSeq, err)
	}
	if rev := h.Get(hdrRevision); rev != "" {
		if e.writer.revision, err = strconv.ParseUint(rev, 10, 64); err != nil {
			return logEntry{}, fmt.Errorf("%w: message %d: revision: %v", ErrCorrupt, streamSeq,
				err)
		}
		e.writer.owner = h.Get(hdrOwner)
	}
	return e, nil
}

// validJSStreamName reports whether name is a stream name this store accepts.
func validJSStreamName(name string) bool {
	if name == "" || len(name) > maxStreamNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// logSubject returns the subject of the session's log.
func logSubject(id string) string {
	return jsSubjectPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// isWrongLastSeq reports whether err is the server refusing a publish whose
// expected last sequence did not match. Replicated streams answer 10164 where
// a single server answers 10071.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// notFoundJS translates a missing message into ErrNotFound.
func notFoundJS(err error) error {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNotFound
	}
	return wrapJS("read", err)
}

// wrapJS marks an error from JetStream with the operation; nil stays nil.
func wrapJS(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage: jetstream: %s: %w", op, err)
}
