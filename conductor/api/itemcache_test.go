package api

import (
	"bytes"
	"fmt"
	"testing"
)

// TestItemCacheBound: the item cache never holds more than itemCacheBytes
// of JSON, keeps serving what it holds, makes room now and then, and replaces an item's stale
// rendering instead of counting it twice.
func TestItemCacheBound(t *testing.T) {
	var ic itemCache
	item := bytes.Repeat([]byte("x"), 3000)
	n := 2 * itemCacheBytes / len(item)
	for i := range n + itemCacheTurn {
		ic.put(fmt.Sprint(i), 1, "k", item)
		if ic.bytes > itemCacheBytes {
			t.Fatalf("after %d puts: %d bytes cached", i+1, ic.bytes)
		}
	}
	sum := 0
	hits := 0
	for id, e := range ic.m {
		sum += len(e.json)
		if ic.get(id, 1, "k") != nil {
			hits++
		}
	}
	if sum != ic.bytes || hits != len(ic.m) || hits < n/4 {
		t.Fatalf("%d entries, %d hits, %d bytes counted, %d held", len(ic.m), hits, ic.bytes, sum)
	}
	before := ic.bytes
	for id := range ic.m {
		ic.put(id, 2, "k", item)
		if ic.bytes != before || ic.get(id, 1, "k") != nil || ic.get(id, 2, "k") == nil {
			t.Fatalf("replacing %s: %d bytes, was %d", id, ic.bytes, before)
		}
		break
	}
}
