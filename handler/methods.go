package handler

import (
	"slices"
	"strings"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/methods"
)

// otherMethod labels the metrics of every method not in knownMethods, so a
// client inventing names cannot grow the label set.
const otherMethod = "other"

// knownMethods is the one list of method names metrics use as labels: the
// method catalogue, the cache's rules and the exact names of the unsafe
// list. Sorted, without duplicates; index 0 is otherMethod.
var knownMethods, methodIndex = buildKnownMethods()

func buildKnownMethods() ([]string, map[string]int) {
	var all []string
	all = append(all, cacher.KnownMethods()...)
	all = append(all, methods.Known()...)
	for _, m := range UnsafeMethods {
		if !strings.Contains(m, "*") {
			all = append(all, m)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	names := append([]string{otherMethod}, all...)
	index := make(map[string]int, len(names))
	for i, m := range names[1:] {
		index[m] = i + 1
	}
	return names, index
}

// methodSlot is method's index in knownMethods, 0 (other) for the rest.
func methodSlot(method string) int { return methodIndex[method] }
