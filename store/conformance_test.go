package store_test

import (
	"testing"

	"github.com/quorumkv/quorumkv/store/storetest"
)

func TestConformanceInMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.InMemory)
}

func TestConformanceOnDisk(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.OnDisk)
}
