package storage

// Badger keeps sessions in one Badger database directory.
//
// Key layout. Every key starts with a one-byte kind, then the session ID as a
// 2-byte big-endian length and the ID's bytes; the length makes one session's
// prefix never a prefix of another's, whatever bytes the IDs hold.
//
//	'm' len id          -> meta record (format below)
//	'l' len id          -> last seq of the log, 8 bytes big-endian (0 for an empty log)
//	'r' len id seq      -> record data; seq is 8 bytes big-endian
//
// Big-endian seqs make Badger's byte order the seq order, so a prefix iteration
// reads a log in order and a seek finds "the first record after N" directly. The
// last-seq key is written in the same transaction as the records it accounts for;
// it exists from Create on, so its presence is also the test that a session exists.
//
// Meta format: one byte format version (1), uvarint length and bytes of ID,
// uvarint length and bytes of Tenant, uvarint Epoch, then Data to the end.
//
// Writes. Create and Append are handed to one committer goroutine, which gathers
// whatever requests are waiting into one Badger transaction and commits it once.
// Badger's own write loop batches concurrent commits into one value-log write, but
// (badger v4.9.6, db.go writeToLSM) it syncs the memtable's write-ahead log once per
// transaction of the batch, so with SyncWrites every Append of its own costs a
// sync: 64 concurrent one-append transactions ran only about 1.5 times as fast as
// one writer. Grouping appends of many sessions into one transaction makes them
// share a single sync (about 25 times one writer's rate). Being the only writer
// also lets the committer check each log's last
// seq without racing another transaction.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Limits on what the stores accept; both Badger and Memory enforce them.
const (
	// MaxIDLen is the longest session ID, in bytes.
	MaxIDLen = 256
	// MaxTenantLen is the longest tenant name, in bytes.
	MaxTenantLen = 256
	// MaxMetaDataBytes bounds Meta.Data.
	MaxMetaDataBytes = 1 << 20
	// MaxRecordBytes bounds the Data of one record.
	MaxRecordBytes = 1 << 20
	// MaxAppendRecords bounds how many records one Append carries.
	MaxAppendRecords = 256
)

// Key kinds; see the key layout at the top of this file.
const (
	kindMeta   = 'm'
	kindLast   = 'l'
	kindRecord = 'r'

	metaFormat = 1
)

// Tuning for a server that holds many small sessions: events are small (a user
// turn, an assistant answer, a tool result) and each session is written a little
// at a time.
const (
	// memTableSize is smaller than Badger's 64 MiB default: with many small writes
	// a memtable fills evenly anyway, and numMemTables of them bound the memory the
	// store holds before flushing.
	memTableSize = 16 << 20
	numMemTables = 3
	// valueLogFileSize is far below the 1 GiB default: files are mapped into memory
	// and preallocated, and smaller files keep a small server's footprint small.
	valueLogFileSize = 64 << 20
	// valueThreshold keeps records under 4 KiB (most events) in the LSM tree, so a
	// Read is served by one iterator without value-log lookups; larger tool outputs
	// go to the value log and stay out of compactions. The log is append-only, so
	// the value log holds no garbage to collect.
	valueThreshold = 4 << 10
	// blockCacheSize is a quarter of the default; recent logs sit in memtables.
	blockCacheSize = 64 << 20

	// writeQueueLen bounds the writes waiting for the committer.
	writeQueueLen = 1024
	// maxBatchWrites bounds how many requests one commit gathers.
	maxBatchWrites = 512
	// txnEntryOverhead mirrors Badger's per-entry estimate in Txn.checkSize:
	// 2 bytes of metas plus 10 for the version; a value in the value log counts
	// as a 12-byte pointer.
	txnEntryOverhead = 12
	valuePointerSize = 12
)

// BadgerOptions configures OpenBadger.
type BadgerOptions struct {
	// Dir is the database directory; it is created if missing. Required.
	Dir string
	// SyncWrites makes Create and Append return only after their data is synced to
	// disk, so it survives a machine crash and not only a process crash.
	// DefaultBadgerOptions sets it; the zero value (false) trades that for speed.
	SyncWrites bool
	// Logger receives Badger's warnings and errors; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultBadgerOptions returns the options for a store in dir, with SyncWrites on.
func DefaultBadgerOptions(dir string) BadgerOptions {
	return BadgerOptions{Dir: dir, SyncWrites: true}
}

// Badger is the single-node Store, on a Badger database. It is safe for
// concurrent use. Concurrent Creates and Appends, to any sessions, are grouped
// into shared commits.
type Badger struct {
	db *badger.DB

	writes        chan *writeReq
	quit          chan struct{}
	committerDone chan struct{}

	// stateMu guards closed. Every method holds it for reading while it uses db or
	// writes, so Close (which takes it for writing) waits for them to finish.
	stateMu   sync.RWMutex
	closed    bool
	closeOnce sync.Once

	// Transaction budget of the committer, from Badger's limits.
	maxTxnSize  int64
	maxTxnCount int64
}

var _ Store = (*Badger)(nil)

// writeReq is one Create (meta != nil) or Append waiting for the committer. done
// receives exactly one result.
type writeReq struct {
	id   string
	meta *Meta
	recs []Record
	done chan error
}

// OpenBadger opens (or creates) the store in opts.Dir and starts its committer.
// Call Close to release it.
func OpenBadger(opts BadgerOptions) (*Badger, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: badger: empty directory")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	bopts := badger.DefaultOptions(opts.Dir).
		WithSyncWrites(opts.SyncWrites).
		WithLogger(slogBadgerLogger{log: log}).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemTables).
		WithValueLogFileSize(valueLogFileSize).
		WithValueThreshold(valueThreshold).
		WithBlockCacheSize(blockCacheSize).
		// Badger's metrics are process-wide expvars; the server reports its own.
		WithMetricsEnabled(false)
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("storage: open badger in %s: %w", opts.Dir, err)
	}

	b := &Badger{
		db:            db,
		writes:        make(chan *writeReq, writeQueueLen),
		quit:          make(chan struct{}),
		committerDone: make(chan struct{}),
		maxTxnSize:    db.MaxBatchSize(),
		maxTxnCount:   db.MaxBatchCount(),
	}
	go b.runCommitter()
	return b, nil
}

// Close waits for the calls in progress, stops the committer and closes the
// database. The first call returns the result; later and concurrent calls wait
// for it and return nil. Every other method returns ErrClosed after Close.
func (b *Badger) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.stateMu.Lock()
		b.closed = true
		b.stateMu.Unlock()

		// No write can be queued now: writers queue and wait for their answer
		// while holding stateMu for reading.
		close(b.quit)
		<-b.committerDone

		if cerr := b.db.Close(); cerr != nil {
			err = fmt.Errorf("storage: close badger: %w", cerr)
		}
	})
	return err
}

// Create stores a new session. It returns ErrExists if the ID is taken,
// ErrInvalidID or ErrTooLarge for a meta record out of limits, ErrClosed after
// Close. Once queued, the write completes even if ctx ends, so its result is never
// in doubt.
func (b *Badger) Create(ctx context.Context, meta Meta) error {
	if err := validateMeta(meta); err != nil {
		return err
	}
	return b.write(ctx, &writeReq{id: meta.ID, meta: &meta})
}

// Append adds recs to the session's log as Store.Append describes, in one
// transaction shared with other sessions' concurrent appends. It returns
// ErrInvalidID, ErrInvalidRecord or ErrTooLarge for input out of limits, and
// ErrClosed after Close. Once queued, the append completes even if ctx ends, so
// its result is never in doubt.
func (b *Badger) Append(ctx context.Context, id string, recs []Record) error {
	if err := validateAppend(id, recs); err != nil {
		return err
	}
	return b.write(ctx, &writeReq{id: id, recs: recs})
}

// write queues req for the committer and waits for its result.
func (b *Badger) write(ctx context.Context, req *writeReq) error {
	b.stateMu.RLock()
	defer b.stateMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	req.done = make(chan error, 1)
	select {
	case b.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// Meta returns the session's meta record, or ErrNotFound.
func (b *Badger) Meta(ctx context.Context, id string) (Meta, error) {
	var meta Meta
	err := b.view(ctx, id, func(txn *badger.Txn) error {
		item, err := txn.Get(sessionKey(kindMeta, id))
		if err != nil {
			return notFound(err)
		}
		return item.Value(func(val []byte) error {
			var derr error
			meta, derr = decodeMeta(val)
			return derr
		})
	})
	return meta, err
}

// LastSeq returns the seq of the session's last record (0 for an empty log), or
// ErrNotFound.
func (b *Badger) LastSeq(ctx context.Context, id string) (uint64, error) {
	var last uint64
	err := b.view(ctx, id, func(txn *badger.Txn) error {
		var err error
		last, err = readLast(txn, id)
		return err
	})
	return last, err
}

// Read returns the session's records after seq after, in seq order, at most limit
// of them (limit <= 0: all). The records' Data are the caller's to keep. It
// returns ErrNotFound for an unknown session and ctx's error if ctx ends first.
func (b *Badger) Read(ctx context.Context, id string, after uint64, limit int) ([]Record, error) {
	var recs []Record
	err := b.view(ctx, id, func(txn *badger.Txn) error {
		last, err := readLast(txn, id)
		if err != nil || after >= last {
			return err
		}
		recs, err = readRecords(ctx, txn, id, after, expectedRecords(last-after, limit))
		return err
	})
	return recs, err
}

// expectedRecords is how many records a Read returns: what the log holds after
// the start, capped by limit.
func expectedRecords(available uint64, limit int) int {
	if limit > 0 && uint64(limit) < available {
		return limit
	}
	return int(min(available, math.MaxInt))
}

// readRecords reads up to n records of the session with seq > after.
func readRecords(ctx context.Context, txn *badger.Txn, id string, after uint64,
	n int) ([]Record, error) {
	prefix := sessionKey(kindRecord, id)
	it := txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true,
		PrefetchSize:   min(n, 64),
		Prefix:         prefix,
	})
	defer it.Close()

	recs := make([]Record, 0, min(n, 1024))
	for it.Seek(recordKey(id, after+1)); it.ValidForPrefix(prefix); it.Next() {
		if len(recs)%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		item := it.Item()
		key := item.Key()
		if len(key) != len(prefix)+8 {
			return nil, fmt.Errorf("%w: record key of %d bytes", ErrCorrupt, len(key))
		}
		data, err := item.ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("storage: read record: %w", err)
		}
		recs = append(recs, Record{Seq: binary.BigEndian.Uint64(key[len(prefix):]), Data: data})
		if len(recs) == n {
			break
		}
	}
	return recs, nil
}

// view runs fn in a read-only transaction after the common checks.
func (b *Badger) view(ctx context.Context, id string, fn func(*badger.Txn) error) error {
	if err := validateID(id); err != nil {
		return err
	}
	b.stateMu.RLock()
	defer b.stateMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

// runCommitter owns all writes: it takes the first waiting request, gathers the
// others already queued behind it, and commits them together. It returns when
// Close closes quit; by then no request is queued.
func (b *Badger) runCommitter() {
	defer close(b.committerDone)
	batch := make([]*writeReq, 0, maxBatchWrites)
	for {
		select {
		case req := <-b.writes:
			batch = append(batch[:0], req)
			batch = gather(b.writes, batch)
			for len(batch) > 0 {
				batch = batch[b.commitSome(batch):]
			}
		case <-b.quit:
			return
		}
	}
}

// gather appends the requests already waiting in writes, without blocking.
func gather(writes <-chan *writeReq, batch []*writeReq) []*writeReq {
	for len(batch) < maxBatchWrites {
		select {
		case req := <-writes:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commitSome stages requests from the front of batch into one transaction while
// they fit Badger's transaction limits (always at least one), commits it once and
// answers every request it took. It returns how many it took.
//
// A request that fails its checks (unknown session, seq conflict, ID taken) is
// answered at once and writes nothing; the others commit without it.
func (b *Badger) commitSome(batch []*writeReq) int {
	txn := b.db.NewTransaction(true)
	defer txn.Discard()

	staged := make([]*writeReq, 0, len(batch))
	var size, count int64
	n := 0
	for ; n < len(batch); n++ {
		req := batch[n]
		s, c := req.txnCost()
		if n > 0 && (size+s >= b.maxTxnSize || count+c >= b.maxTxnCount) {
			break
		}
		size, count = size+s, count+c

		err := stage(txn, req)
		var serr setError
		if errors.As(err, &serr) {
			// The transaction may hold part of req: drop it all rather than commit
			// half a request. The limits make this unreachable; it is a safety net.
			answer(append(staged, req), fmt.Errorf("storage: write: %w", serr.err))
			return n + 1
		}
		if err != nil {
			req.done <- err
			continue
		}
		staged = append(staged, req)
	}

	answer(staged, commitError(txn.Commit()))
	return n
}

// answer sends err to every request in reqs.
func answer(reqs []*writeReq, err error) {
	for _, req := range reqs {
		req.done <- err
	}
}

// commitError translates a commit's error. A conflict cannot happen while the
// committer is the only writer; should another writer appear, a conflict means
// the logs moved under the batch, which is what ErrSeqConflict reports.
func commitError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrConflict):
		return fmt.Errorf("%w: concurrent transaction", ErrSeqConflict)
	default:
		return fmt.Errorf("storage: commit: %w", err)
	}
}

// txnCost estimates the size and entry count req adds to a transaction, the way
// Badger's Txn.checkSize does.
func (req *writeReq) txnCost() (size, count int64) {
	keyLen := int64(3 + len(req.id))
	entry := func(valueLen int) int64 {
		if valueLen >= valueThreshold {
			valueLen = valuePointerSize
		}
		return keyLen + int64(valueLen) + txnEntryOverhead
	}
	if req.meta != nil {
		metaLen := 1 + 2*binary.MaxVarintLen64 + len(req.meta.ID) + len(req.meta.Tenant) +
			binary.MaxVarintLen64 + len(req.meta.Data)
		return entry(metaLen) + entry(8), 2
	}
	size = entry(8)
	for _, r := range req.recs {
		size += entry(len(r.Data)) + 8
	}
	return size, int64(len(req.recs)) + 1
}

// setError marks a failure of txn.Set, after which the transaction may hold part
// of a request.
type setError struct{ err error }

func (e setError) Error() string { return e.err.Error() }

// stage adds req's writes to txn after checking that they apply: the session
// exists (or, for a Create, does not) and the records continue its log. It writes
// nothing unless every check passes.
func stage(txn *badger.Txn, req *writeReq) error {
	if req.meta != nil {
		return stageCreate(txn, req.meta)
	}

	last, err := readLast(txn, req.id)
	if err != nil {
		return err
	}
	if err := checkContinues(last, req.recs); err != nil {
		return err
	}
	for _, r := range req.recs {
		if err := setKey(txn, recordKey(req.id, r.Seq), r.Data); err != nil {
			return err
		}
	}
	return setKey(txn, sessionKey(kindLast, req.id), encodeSeq(req.recs[len(req.recs)-1].Seq))
}

// stageCreate adds a new session's meta and empty-log marker to txn.
func stageCreate(txn *badger.Txn, meta *Meta) error {
	_, err := txn.Get(sessionKey(kindMeta, meta.ID))
	switch {
	case err == nil:
		return ErrExists
	case !errors.Is(err, badger.ErrKeyNotFound):
		return fmt.Errorf("storage: read meta: %w", err)
	}
	if err := setKey(txn, sessionKey(kindMeta, meta.ID), encodeMeta(*meta)); err != nil {
		return err
	}
	return setKey(txn, sessionKey(kindLast, meta.ID), encodeSeq(0))
}

// setKey is txn.Set with its failure marked as a setError.
func setKey(txn *badger.Txn, key, val []byte) error {
	if err := txn.Set(key, val); err != nil {
		return setError{err}
	}
	return nil
}

// readLast returns the session's last seq, or ErrNotFound. Inside an update
// transaction it sees the transaction's own pending writes.
func readLast(txn *badger.Txn, id string) (uint64, error) {
	item, err := txn.Get(sessionKey(kindLast, id))
	if err != nil {
		return 0, notFound(err)
	}
	var last uint64
	err = item.Value(func(val []byte) error {
		if len(val) != 8 {
			return fmt.Errorf("%w: last seq of %d bytes", ErrCorrupt, len(val))
		}
		last = binary.BigEndian.Uint64(val)
		return nil
	})
	return last, err
}

// notFound translates Badger's missing key into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("storage: read: %w", err)
}

// sessionKey returns kind, the ID's length (2 bytes, big-endian) and the ID.
func sessionKey(kind byte, id string) []byte {
	key := make([]byte, 3, 3+len(id)+8)
	key[0] = kind
	binary.BigEndian.PutUint16(key[1:], uint16(len(id)))
	return append(key, id...)
}

// recordKey returns the key of the session's record seq.
func recordKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(sessionKey(kindRecord, id), seq)
}

func encodeSeq(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// encodeMeta writes meta in the format described at the top of this file.
func encodeMeta(meta Meta) []byte {
	buf := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(meta.ID)+len(meta.Tenant)+
		len(meta.Data))
	buf = append(buf, metaFormat)
	buf = binary.AppendUvarint(buf, uint64(len(meta.ID)))
	buf = append(buf, meta.ID...)
	buf = binary.AppendUvarint(buf, uint64(len(meta.Tenant)))
	buf = append(buf, meta.Tenant...)
	buf = binary.AppendUvarint(buf, meta.Epoch)
	return append(buf, meta.Data...)
}

// decodeMeta reads what encodeMeta wrote; the result does not alias val.
func decodeMeta(val []byte) (Meta, error) {
	if len(val) == 0 || val[0] != metaFormat {
		return Meta{}, fmt.Errorf("%w: unknown meta format", ErrCorrupt)
	}
	rest := val[1:]
	field := func() (string, bool) {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return "", false
		}
		s := string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
		return s, true
	}
	id, okID := field()
	tenant, okTenant := field()
	epoch, w := binary.Uvarint(rest)
	if !okID || !okTenant || w <= 0 {
		return Meta{}, fmt.Errorf("%w: truncated meta", ErrCorrupt)
	}
	meta := Meta{ID: id, Tenant: tenant, Epoch: epoch}
	if data := rest[w:]; len(data) > 0 {
		meta.Data = append([]byte(nil), data...)
	}
	return meta, nil
}

// validateID checks a session ID against the limits.
func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidID, len(id), MaxIDLen)
	}
	return nil
}

// validateMeta checks a meta record against the limits.
func validateMeta(meta Meta) error {
	if err := validateID(meta.ID); err != nil {
		return err
	}
	if len(meta.Tenant) > MaxTenantLen {
		return fmt.Errorf("%w: tenant of %d bytes, limit %d", ErrTooLarge, len(meta.Tenant),
			MaxTenantLen)
	}
	if len(meta.Data) > MaxMetaDataBytes {
		return fmt.Errorf("%w: meta data of %d bytes, limit %d", ErrTooLarge, len(meta.Data),
			MaxMetaDataBytes)
	}
	return nil
}

// validateAppend checks an append against the limits; seqs are checked against
// the log later.
func validateAppend(id string, recs []Record) error {
	if err := validateID(id); err != nil {
		return err
	}
	switch {
	case len(recs) == 0:
		return fmt.Errorf("%w: append without records", ErrInvalidRecord)
	case len(recs) > MaxAppendRecords:
		return fmt.Errorf("%w: %d records in one append, limit %d", ErrTooLarge, len(recs),
			MaxAppendRecords)
	}
	for _, r := range recs {
		if len(r.Data) == 0 {
			return fmt.Errorf("%w: seq %d has no data", ErrInvalidRecord, r.Seq)
		}
		if len(r.Data) > MaxRecordBytes {
			return fmt.Errorf("%w: seq %d has %d bytes, limit %d", ErrTooLarge, r.Seq,
				len(r.Data), MaxRecordBytes)
		}
	}
	return nil
}

// checkContinues reports whether recs are numbered consecutively from last+1.
func checkContinues(last uint64, recs []Record) error {
	if recs[0].Seq != last+1 {
		return fmt.Errorf("%w: log ends at %d, append starts at %d", ErrSeqConflict, last,
			recs[0].Seq)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq != recs[i-1].Seq+1 {
			return fmt.Errorf("%w: seq %d follows %d", ErrSeqConflict, recs[i].Seq,
				recs[i-1].Seq)
		}
	}
	return nil
}

// slogBadgerLogger routes Badger's log to slog. Badger's info and debug lines
// (table counts, compactions) are dropped; warnings and errors keep their level.
type slogBadgerLogger struct{ log *slog.Logger }

func (l slogBadgerLogger) Errorf(format string, args ...any) {
	l.log.Error("storage: badger", "detail", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l slogBadgerLogger) Warningf(format string, args ...any) {
	l.log.Warn("storage: badger", "detail", strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (slogBadgerLogger) Infof(string, ...any)  {}
func (slogBadgerLogger) Debugf(string, ...any) {}
