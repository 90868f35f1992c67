package transport

import (
	"encoding/json"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// What a connection sends goes through one queue, bounded in frames and bytes,
// and is written by one writer goroutine at a time, in queue order. The writer
// runs only while there is something to write: it starts when a frame, a ping
// or the close is queued on a connection without one, and it ends when the
// queue is empty. An idle connection holds no writer goroutine and no write
// buffer (the upgrader's buffers come from a pool while a frame is written).

// outFrame is an encoded frame waiting for the writer.
type outFrame struct {
	data []byte
	// at is when the provider's bytes that completed the delta the frame carries
	// were read; zero for frames that are not live deltas.
	at time.Time
	// ready is when the session could pass the delta on: at, or later when the
	// delta waited for its turn to be durable.
	ready time.Time
	// first marks the first delta of an answer written to this connection.
	first bool
}

// Deliver queues a session note for the client. It is called with the session's
// lock held and never blocks: a client whose queue is full is closed with 4000 and
// can resume from its last seq.
func (c *conn) Deliver(n session.Note) {
	if n.Kind == session.NoteClosed {
		// Another node serves the session now: the client resumes there.
		c.closeWith(wire.CloseSessionMoved, "the session moved to another node; resume")
		return
	}
	if n.Kind == session.NoteDelta {
		f := outFrame{data: deltaFrame(&n)} // by hand: the frame of every chunk
		if _, live := c.ws.(*websocket.Conn); live {
			// Relay times are those of deltas written to a client's WebSocket, not
			// to a connection forwarded from another node.
			f.at, f.ready = n.Delta.At, n.Ready
		}
		c.push(f, n.Seq)
		return
	}
	if data, ok := c.encode(frameOf(n)); ok {
		c.push(outFrame{data: data}, 0)
	}
}

// send encodes f and queues it for the writer.
func (c *conn) send(f *wire.ServerFrame) {
	if data, ok := c.encode(f); ok {
		c.push(outFrame{data: data}, 0)
	}
}

func (c *conn) encode(f *wire.ServerFrame) ([]byte, bool) {
	data, err := json.Marshal(f)
	if err != nil {
		c.srv.log.Error("frame not encoded", "type", f.Type, "err", err)
		return nil, false
	}
	return data, true
}

// enqueue queues an encoded frame for the writer; a full queue closes the
// connection with 4000.
func (c *conn) enqueue(data []byte) {
	c.push(outFrame{data: data}, 0)
}

// push queues f for the writer and starts the writer if none runs. deltaSeq is
// the seq of the answer a delta frame belongs to, 0 for other frames: the first
// delta of each answer is marked first. A full queue closes the connection with
// 4000 instead.
func (c *conn) push(f outFrame, deltaSeq uint64) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed {
		return
	}
	if len(c.queue) >= c.srv.cfg.MaxQueuedFrames ||
		c.queuedBytes+int64(len(f.data)) > c.srv.cfg.MaxQueuedBytes {
		c.closeLocked(wire.CloseSlowConsumer, "slow consumer; resume from your last seq")
		return
	}
	if deltaSeq != 0 {
		f.first = deltaSeq != c.lastDelta
		c.lastDelta = deltaSeq
	}
	c.queue = append(c.queue, f)
	c.queuedBytes += int64(len(f.data))
	c.startWriterLocked()
}

// closeWith asks the writer to send a close frame with code and reason after the
// frames already queued, and then to stop. Later calls do nothing.
func (c *conn) closeWith(code int, reason string) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.closeLocked(code, reason)
}

// closeLocked is closeWith with c.outMu held.
func (c *conn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeCode, c.closeReason = code, reason
	c.startWriterLocked()
}

func (c *conn) isClosed() bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.closed
}

// startPings pings the client every PingInterval until the connection closes.
func (c *conn) startPings() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if !c.closed {
		c.pinger = time.AfterFunc(c.srv.cfg.PingInterval, c.pingDue)
	}
}

// pingDue queues a ping, ahead of the frames waiting, and arms the next one.
func (c *conn) pingDue() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed {
		return
	}
	c.ping = true
	c.startWriterLocked()
	c.pinger.Reset(c.srv.cfg.PingInterval)
}

// startWriterLocked starts the writer unless one runs. c.outMu must be held.
func (c *conn) startWriterLocked() {
	if c.writing || c.finished {
		return
	}
	c.writing = true
	c.writers.Add(1)
	if c.writeLoopFn == nil {
		c.writeLoopFn = c.writeLoop
	}
	go c.writeLoopFn()
}

// writeLoop is the connection's only writer of data, ping and close frames. It
// writes what is queued until the queue is empty, and then ends; after the close
// frame, or a failed write, the connection writes nothing more.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	var batch []outFrame
	for {
		c.outMu.Lock()
		if len(c.queue) == 0 && !c.ping && !c.closed {
			c.writing = false
			c.queue = batch[:0] // the next writer reuses the array
			c.outMu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		ping, closing := c.ping, c.closed
		code, reason := c.closeCode, c.closeReason
		c.ping = false
		c.outMu.Unlock()

		if !c.writeBatch(ping, batch) {
			c.abort()
			return
		}
		if closing {
			c.writeClose(code, reason)
			return
		}
	}
}

// writeBatch writes a ping if asked, and then the frames of batch in order,
// releasing their bytes from the queue's bound. It reports whether every write
// succeeded.
func (c *conn) writeBatch(ping bool, batch []outFrame) bool {
	if ping && c.write(websocket.PingMessage, nil) != nil {
		return false
	}
	for i := range batch {
		f := &batch[i]
		if c.write(websocket.TextMessage, f.data) != nil {
			return false
		}
		c.srv.observeRelay(f.at, f.ready, f.first)
		c.outMu.Lock()
		c.queuedBytes -= int64(len(f.data))
		c.outMu.Unlock()
		*f = outFrame{}
	}
	return true
}

// writeClose sends the close frame and ends the writing.
func (c *conn) writeClose(code int, reason string) {
	c.write(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason))
	c.finish()
	// Unblock the read loop if the client does not answer the close.
	c.ws.SetReadDeadline(time.Now().Add(time.Second))
}

func (c *conn) write(typ int, data []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	return c.ws.WriteMessage(typ, data)
}

// abort ends a connection whose writes fail: the read loop sees the closed socket.
func (c *conn) abort() {
	c.finish()
	c.ws.Close()
}

// finish marks the connection closed and written to for the last time: no writer
// starts again and the pings stop.
func (c *conn) finish() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.closed, c.finished, c.writing = true, true, false
	c.queue, c.queuedBytes, c.ping = nil, 0, false
	if c.pinger != nil {
		c.pinger.Stop()
	}
}
