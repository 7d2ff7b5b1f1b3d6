package handler

import (
	"slices"
	"strings"

	"github.com/elara-gateway/elara/cacher"
	"github.com/elara-gateway/elara/matcher"
)

// otherMethod labels the metrics of every method not in knownMethods, so a
// client inventing names cannot grow the label set.
const otherMethod = "other"

// moreMethods are the methods Substrate and polkadot-sdk nodes serve that
// no other table of the gateway names (the cache's rules, the
// subscription table and the unsafe list name the rest).
var moreMethods = []string{
	"author_submitExtrinsic",
	"author_pendingExtrinsics",
	"system_accountNextIndex",
	"system_nodeRoles",
	"chainHead_v1_header",
	"chainHead_v1_body",
	"chainHead_v1_storage",
	"chainHead_v1_call",
	"chainHead_v1_unpin",
	"chainHead_v1_continue",
	"chainHead_v1_stopOperation",
	"chainSpec_v1_chainName",
	"chainSpec_v1_genesisHash",
	"chainSpec_v1_properties",
	"transaction_v1_broadcast",
	"transaction_v1_stop",
	"archive_v1_body",
	"archive_v1_call",
	"archive_v1_finalizedHeight",
	"archive_v1_genesisHash",
	"archive_v1_hashByHeight",
	"archive_v1_header",
	"grandpa_roundState",
	"grandpa_proveFinality",
	"beefy_getFinalizedHead",
	"mmr_root",
	"mmr_generateProof",
	"mmr_verifyProof",
	"mmr_verifyProofStateless",
	"sync_state_genSyncSpec",
}

// knownMethods is the one list of method names metrics use as labels: the
// cache's rules, the subscription table, the exact names of the unsafe
// list and moreMethods. Sorted, without duplicates; index 0 is otherMethod.
var knownMethods, methodIndex = buildKnownMethods()

func buildKnownMethods() ([]string, map[string]int) {
	var all []string
	all = append(all, cacher.KnownMethods()...)
	all = append(all, matcher.Methods()...)
	for _, m := range UnsafeMethods {
		if !strings.Contains(m, "*") {
			all = append(all, m)
		}
	}
	all = append(all, moreMethods...)
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
