// Package cluster decides which node of a cluster owns each live session, over
// NATS JetStream.
//
// Ownership is a lease: a key in a JetStream key-value bucket whose value is
// the owner's node name. A node claims a session by creating the key, keeps it
// by updating the key with compare-and-swap on its revision well before the
// bucket's TTL removes it, and gives it up by deleting it. When the owner dies,
// its key expires and another node's claim succeeds: that is a takeover.
//
// A lease alone cannot stop an owner that stalled past its TTL from writing
// once it wakes up. The store does: the new owner fences the session's log
// with its lease revision (storage.JetStream.Fence), after which writes under
// an older revision fail with storage.ErrFenced.
//
// The lease revision is the key's revision in the bucket, which grows with
// every write to the bucket; a newer claim always has a higher revision than
// any earlier claim or renewal, so it orders owners.
package cluster
