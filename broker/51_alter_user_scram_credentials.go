package broker

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// AlterUserScramCredentials v0: creates, changes and deletes SCRAM users
// in the metadata, so every broker of the cluster authenticates them and
// they survive restarts. An upsertion carries the salt and the salted
// password (Hi(password, salt, iterations)), from which the broker keeps
// the stored and server keys, never the password. Each user gets one
// result; a user's changes all apply or none does, with Kafka's errors:
// an unknown mechanism UNSUPPORTED_SASL_MECHANISM; an empty name or salt,
// or iterations outside 4096..16384, UNACCEPTABLE_CREDENTIAL; a mechanism
// of a user named twice DUPLICATE_RESOURCE; deleting a credential that
// does not exist RESOURCE_NOT_FOUND. The users that pass are written to
// the metadata in one step, before the response.

func init() { register(51, 0, 0, handleAlterUserScramCredentials) }

// Kafka's bounds on SCRAM iterations (ScramMechanism.minIterations and
// maxIterations).
const (
	scramMinIterations = 4096
	scramMaxIterations = 16384
)

func handleAlterUserScramCredentials(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !c.allowedCluster(kmsg.ACLOperationAlter) {
		// Every user named is refused, before anything is checked.
		var named []string
		for _, d := range r.Deletions {
			named = append(named, d.Name)
		}
		for _, u := range r.Upsertions {
			named = append(named, u.Name)
		}
		seen := map[string]bool{}
		for _, user := range named {
			if !seen[user] {
				seen[user] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
				resp.Results = append(resp.Results, res)
			}
		}
		return respond(resp)
	}
	users := c.b.meta.Cluster().ScramUsers

	type userErr struct {
		code int16
		msg  string
	}
	var order []string
	errs := map[string]*userErr{}
	fail := func(user string, code int16, format string, args ...any) {
		if errs[user] == nil { // the first error of a user is its answer
			errs[user] = &userErr{code, fmt.Sprintf(format, args...)}
		}
	}
	seen := map[[2]string]bool{} // user, mechanism
	var alt meta.ScramAlteration
	note := func(user string, code int8) (string, bool) {
		if !slices.Contains(order, user) {
			order = append(order, user)
		}
		mech, ok := scramMechanismName(code)
		switch {
		case user == "":
			fail(user, kerr.UnacceptableCredential.Code, "username must not be empty")
		case !ok:
			fail(user, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism %d", code)
		case seen[[2]string{user, mech}]:
			fail(user, kerr.DuplicateResource.Code, "a user credential cannot be altered twice in the same request")
		default:
			seen[[2]string{user, mech}] = true
			return mech, true
		}
		return "", false
	}
	for _, d := range r.Deletions {
		mech, ok := note(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := users[d.Name][mech]; !exists {
			fail(d.Name, kerr.ResourceNotFound.Code, "attempt to delete a user credential that does not exist")
			continue
		}
		alt.Deletions = append(alt.Deletions, meta.ScramDeletion{User: d.Name, Mechanism: mech})
	}
	for _, u := range r.Upsertions {
		mech, ok := note(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case u.Iterations < scramMinIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "too few iterations: %d, at least %d", u.Iterations, scramMinIterations)
			continue
		case u.Iterations > scramMaxIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "too many iterations: %d, at most %d", u.Iterations, scramMaxIterations)
			continue
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential.Code, "salt and salted password must not be empty")
			continue
		}
		cred := scramCredentialFromSalted(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
		alt.Upsertions = append(alt.Upsertions, meta.ScramUpsertion{User: u.Name, Mechanism: mech, Credential: meta.ScramCredential{
			Salt: slices.Clone(u.Salt), Iterations: u.Iterations, StoredKey: cred.storedKey, ServerKey: cred.serverKey,
		}})
	}
	// A user with an error keeps all its credentials as they were.
	alt.Deletions = slices.DeleteFunc(alt.Deletions, func(d meta.ScramDeletion) bool { return errs[d.User] != nil })
	alt.Upsertions = slices.DeleteFunc(alt.Upsertions, func(u meta.ScramUpsertion) bool { return errs[u.User] != nil })
	if len(alt.Deletions)+len(alt.Upsertions) > 0 {
		if err := c.b.meta.AlterScramCredentials(c.ctx, alt); err != nil {
			for _, user := range order {
				fail(user, errorCode(err), "%v", err)
			}
		}
	}
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		if e := errs[user]; e != nil {
			res.ErrorCode, res.ErrorMessage = e.code, kmsg.StringPtr(e.msg)
		}
		resp.Results = append(resp.Results, res)
	}
	return respond(resp)
}
