package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeUserScramCredentials v0: the mechanisms and iteration counts of
// the SCRAM users kept in the metadata (never the salts or keys). No users
// named, or an empty list, describes every user; a named user without a
// credential is RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE,
// as Kafka's.
//
// Not here: the users of Security.SASL.Users, which are this broker's
// configuration, not the cluster's metadata (Kafka has no such users for
// SCRAM).

func init() { register(50, 0, 0, handleDescribeUserScramCredentials) }

// scramMechanismCodes are the ScramMechanism values of the protocol.
var scramMechanismCodes = map[string]int8{MechanismScramSHA256: 1, MechanismScramSHA512: 2}

func scramMechanismName(code int8) (string, bool) {
	for name, c := range scramMechanismCodes {
		if c == code {
			return name, true
		}
	}
	return "", false
}

func handleDescribeUserScramCredentials(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	users := c.b.meta.Cluster().ScramUsers
	describe := func(name string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = name
		creds := users[name]
		if len(creds) == 0 {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("attempt to describe a user credential that does not exist")
			return res
		}
		for _, mech := range slices.Sorted(maps.Keys(creds)) {
			info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			info.Mechanism, info.Iterations = scramMechanismCodes[mech], creds[mech].Iterations
			res.CredentialInfos = append(res.CredentialInfos, info)
		}
		return res
	}
	if len(r.Users) == 0 {
		for _, name := range slices.Sorted(maps.Keys(users)) {
			resp.Results = append(resp.Results, describe(name))
		}
		return respond(resp)
	}
	seen := map[string]int{}
	for _, u := range r.Users {
		seen[u.Name]++
	}
	done := map[string]bool{}
	for _, u := range r.Users {
		if done[u.Name] {
			continue
		}
		done[u.Name] = true
		if seen[u.Name] > 1 {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User = u.Name
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("cannot describe SCRAM credentials for the same user twice in a single request")
			resp.Results = append(resp.Results, res)
			continue
		}
		resp.Results = append(resp.Results, describe(u.Name))
	}
	return respond(resp)
}
