package storage

import "testing"

func TestMemoryConformance(t *testing.T) {
	testConformance(t, func(t *testing.T) Store {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}
