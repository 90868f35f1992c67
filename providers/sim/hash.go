package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// digest is a SHA-256 sum: of a prefix, of a namespace, of a conversation.
type digest [sha256.Size]byte

// fieldHasher hashes a sequence of fields without ambiguity: each field is
// written with its length first, so ("ab","c") and ("a","bc") differ.
type fieldHasher struct {
	h   hash.Hash
	len [8]byte
}

func newFieldHasher() *fieldHasher {
	return &fieldHasher{h: sha256.New()}
}

// add writes the fields, each length-prefixed.
func (f *fieldHasher) add(fields ...string) *fieldHasher {
	for _, s := range fields {
		binary.BigEndian.PutUint64(f.len[:], uint64(len(s)))
		f.h.Write(f.len[:])
		f.h.Write([]byte(s))
	}
	return f
}

// addDigest writes a digest as one fixed-size field.
func (f *fieldHasher) addDigest(d digest) *fieldHasher {
	f.h.Write(d[:])
	return f
}

// addInt writes n as one fixed-size field.
func (f *fieldHasher) addInt(n int) *fieldHasher {
	binary.BigEndian.PutUint64(f.len[:], uint64(n))
	f.h.Write(f.len[:])
	return f
}

func (f *fieldHasher) sum() digest {
	var d digest
	f.h.Sum(d[:0])
	return d
}

// hashFields returns the digest of the fields.
func hashFields(fields ...string) digest {
	return newFieldHasher().add(fields...).sum()
}

// chainDigest returns the digest of prev followed by the fields: the prefix
// digest after one more block or chunk.
func chainDigest(prev digest, fields ...string) digest {
	return newFieldHasher().addDigest(prev).add(fields...).sum()
}

// entryKey returns the cache key of a prefix inside a namespace. extra tells
// apart keys that share a prefix digest (the token offset of an OpenAI step).
func entryKey(namespace, prefix digest, extra int) cacheKey {
	return cacheKey(newFieldHasher().addDigest(namespace).addDigest(prefix).addInt(extra).sum())
}
