package transport

import (
	"encoding/json"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// Deliver queues a session note for the client. It is called with the session's
// lock held and never blocks: a client whose queue is full is closed with 4000 and
// can resume from its last seq.
func (c *conn) Deliver(n session.Note) {
	if n.Kind == session.NoteClosed {
		// Another node serves the session now: the client resumes there.
		c.closeWith(wire.CloseSessionMoved, "the session moved to another node; resume")
		return
	}
	c.send(frameOf(n))
}

// send encodes f and queues it for the writer.
func (c *conn) send(f *wire.ServerFrame) {
	data, err := json.Marshal(f)
	if err != nil {
		c.srv.log.Error("frame not encoded", "type", f.Type, "err", err)
		return
	}
	c.enqueue(data)
}

// enqueue queues an encoded frame for the writer; a full queue closes the
// connection with 4000.
func (c *conn) enqueue(data []byte) {
	c.outMu.Lock()
	if c.closed {
		c.outMu.Unlock()
		return
	}
	if len(c.queue) >= c.srv.cfg.MaxQueuedFrames ||
		c.queuedBytes+int64(len(data)) > c.srv.cfg.MaxQueuedBytes {
		c.outMu.Unlock()
		c.closeWith(wire.CloseSlowConsumer, "slow consumer; resume from your last seq")
		return
	}
	c.queue = append(c.queue, data)
	c.queuedBytes += int64(len(data))
	c.outMu.Unlock()
	c.poke()
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWith asks the writer to send a close frame with code and reason after the
// frames already queued, and then to stop. Later calls do nothing.
func (c *conn) closeWith(code int, reason string) {
	c.outMu.Lock()
	if c.closed {
		c.outMu.Unlock()
		return
	}
	c.closed = true
	c.closeCode, c.closeReason = code, reason
	c.outMu.Unlock()
	c.poke()
}

func (c *conn) isClosed() bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.closed
}

// writeLoop is the connection's only writer of data and close frames. It pings the
// client while the connection is idle.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	var batch [][]byte
	for {
		select {
		case <-c.wake:
		case <-ping.C:
			if c.write(websocket.PingMessage, nil) != nil {
				c.abort()
				return
			}
			continue
		}

		c.outMu.Lock()
		batch, c.queue = c.queue, batch[:0]
		closed, code, reason := c.closed, c.closeCode, c.closeReason
		c.outMu.Unlock()

		for i, data := range batch {
			if c.write(websocket.TextMessage, data) != nil {
				c.abort()
				return
			}
			batch[i] = nil
			c.outMu.Lock()
			c.queuedBytes -= int64(len(data))
			c.outMu.Unlock()
		}
		if closed {
			msg := websocket.FormatCloseMessage(code, reason)
			c.write(websocket.CloseMessage, msg)
			// Unblock the read loop if the client does not answer the close.
			c.ws.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}

func (c *conn) write(typ int, data []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	return c.ws.WriteMessage(typ, data)
}

// abort ends a connection whose writes fail: the read loop sees the closed socket.
func (c *conn) abort() {
	c.outMu.Lock()
	c.closed = true
	c.queue = nil
	c.outMu.Unlock()
	c.ws.Close()
}
