package methods

// standard are the methods Substrate and polkadot-sdk nodes serve that no
// other table of the catalogue names (the subscription families and the
// alias groups name the rest; the cache's rules and the unsafe list add
// theirs where a list of every known method is wanted).
var standard = []string{
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

// Known lists the method names the catalogue knows: every subscription
// method, every alias and the standard methods above. It may hold
// duplicates; the caller sorts and compacts.
func Known() []string {
	out := append([]string(nil), standard...)
	for _, s := range subscriptions {
		if s.Subscribe != "" {
			out = append(out, s.Subscribe)
		}
		out = append(out, s.Unsubscribe)
	}
	for _, g := range aliasGroups {
		out = append(out, g...)
	}
	for start, stop := range broadcasts {
		out = append(out, start, stop)
	}
	return out
}
