package broker

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// The authorizer's rules, each as Kafka's StandardAuthorizer decides it.
func TestAuthorizerRules(t *testing.T) {
	const (
		topic   = kmsg.ACLResourceTypeTopic
		group   = kmsg.ACLResourceTypeGroup
		cluster = kmsg.ACLResourceTypeCluster
		txnID   = kmsg.ACLResourceTypeTransactionalId
		token   = kmsg.ACLResourceTypeDelegationToken
		lit     = kmsg.ACLResourcePatternTypeLiteral
		pre     = kmsg.ACLResourcePatternTypePrefixed
		allow   = kmsg.ACLPermissionTypeAllow
		deny    = kmsg.ACLPermissionTypeDeny
	)
	b := func(typ kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) meta.ACL {
		return meta.ACL{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: principal, Host: host, Operation: op, Permission: perm}
	}
	set := meta.NewACLSet([]meta.ACL{
		b(topic, "orders", pre, "User:alice", "*", kmsg.ACLOperationAll, allow),
		b(topic, "orders-eu", lit, "User:alice", "*", kmsg.ACLOperationWrite, deny),
		b(topic, "payments", lit, "User:bob", "10.0.0.1", kmsg.ACLOperationRead, allow),
		b(topic, "payments", lit, "User:bob", "*", kmsg.ACLOperationAlterConfigs, allow),
		b(topic, "public", lit, "User:*", "*", kmsg.ACLOperationDescribe, allow),
		b(topic, "*", lit, "User:mallory", "*", kmsg.ACLOperationAll, deny),
		b(topic, "*", lit, "User:mallory", "*", kmsg.ACLOperationRead, allow),
		b(group, "g", lit, "User:bob", "*", kmsg.ACLOperationRead, allow),
		b(group, "g", lit, "User:bob", "*", kmsg.ACLOperationDescribe, deny),
		b(cluster, meta.ClusterResourceName, lit, "User:carol", "*", kmsg.ACLOperationCreate, allow),
		b(txnID, "tx-", pre, "User:alice", "*", kmsg.ACLOperationWrite, allow),
		b(token, "token-1", lit, "User:alice", "*", kmsg.ACLOperationDescribe, allow),
	})
	newAuthz := func(allowEmpty bool) *authorizer {
		return newAuthorizer(AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}, AllowEveryoneIfNoACLFound: allowEmpty},
			func() *meta.ACLSet { return set }, slog.New(slog.DiscardHandler))
	}
	a := newAuthz(false)
	for _, tc := range []struct {
		what            string
		principal, host string
		op              kmsg.ACLOperation
		typ             kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"prefixed ALL allows write", "User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "orders", true},
		{"prefixed ALL covers a longer name", "User:alice", "1.2.3.4", kmsg.ACLOperationRead, topic, "orders-us", true},
		{"prefix does not cover a shorter name", "User:alice", "1.2.3.4", kmsg.ACLOperationRead, topic, "order", false},
		{"DENY wins over ALLOW", "User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "orders-eu", false},
		{"DENY of WRITE leaves READ", "User:alice", "1.2.3.4", kmsg.ACLOperationRead, topic, "orders-eu", true},
		{"host matches", "User:bob", "10.0.0.1", kmsg.ACLOperationRead, topic, "payments", true},
		{"host does not match", "User:bob", "10.0.0.2", kmsg.ACLOperationRead, topic, "payments", false},
		{"READ implies DESCRIBE", "User:bob", "10.0.0.1", kmsg.ACLOperationDescribe, topic, "payments", true},
		{"ALTER_CONFIGS implies DESCRIBE_CONFIGS", "User:bob", "10.0.0.2", kmsg.ACLOperationDescribeConfigs, topic, "payments", true},
		{"ALTER_CONFIGS does not imply ALTER", "User:bob", "10.0.0.2", kmsg.ACLOperationAlter, topic, "payments", false},
		{"READ does not imply WRITE", "User:bob", "10.0.0.1", kmsg.ACLOperationWrite, topic, "payments", false},
		{"wildcard principal", "User:ANONYMOUS", "1.2.3.4", kmsg.ACLOperationDescribe, topic, "public", true},
		{"wildcard principal, other op", "User:ANONYMOUS", "1.2.3.4", kmsg.ACLOperationRead, topic, "public", false},
		{"DENY ALL on the wildcard resource", "User:mallory", "1.2.3.4", kmsg.ACLOperationRead, topic, "orders", false},
		{"DENY does not imply: DENY DESCRIBE leaves READ", "User:bob", "1.2.3.4", kmsg.ACLOperationRead, group, "g", true},
		{"DENY DESCRIBE denies DESCRIBE over an implied ALLOW", "User:bob", "1.2.3.4", kmsg.ACLOperationDescribe, group, "g", false},
		{"no binding for the resource", "User:alice", "1.2.3.4", kmsg.ACLOperationRead, group, "other", false},
		{"super user past a DENY", "User:admin", "1.2.3.4", kmsg.ACLOperationWrite, topic, "orders-eu", true},
		{"super user without bindings", "User:admin", "1.2.3.4", kmsg.ACLOperationAlter, cluster, meta.ClusterResourceName, true},
		{"cluster CREATE", "User:carol", "1.2.3.4", kmsg.ACLOperationCreate, cluster, meta.ClusterResourceName, true},
		{"cluster ALTER not granted", "User:carol", "1.2.3.4", kmsg.ACLOperationAlter, cluster, meta.ClusterResourceName, false},
		{"transactional id WRITE, prefixed", "User:alice", "1.2.3.4", kmsg.ACLOperationWrite, txnID, "tx-app", true},
		{"transactional id WRITE implies DESCRIBE", "User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, txnID, "tx-app", true},
		{"transactional id outside the prefix", "User:alice", "1.2.3.4", kmsg.ACLOperationWrite, txnID, "other", false},
		{"delegation token DESCRIBE", "User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, token, "token-1", true},
		{"delegation token of another name", "User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, token, "token-2", false},
	} {
		if got := a.authorize(tc.principal, tc.host, tc.op, tc.typ, tc.name); got != tc.want {
			t.Errorf("%s: %s from %s %s %s %q = %t, want %t", tc.what, tc.principal, tc.host, tc.op, tc.typ, tc.name, got, tc.want)
		}
	}

	// allow.everyone.if.no.acl.found opens only resources no binding
	// covers, for anyone.
	open := newAuthz(true)
	if !open.authorize("User:alice", "h", kmsg.ACLOperationRead, group, "other") {
		t.Error("allow.everyone.if.no.acl.found: a group without bindings is closed")
	}
	if open.authorize("User:alice", "h", kmsg.ACLOperationRead, topic, "payments") {
		t.Error("allow.everyone.if.no.acl.found: a topic with bindings for bob is open to alice")
	}

	// WRITE on some topic, as InitProducerId checks it.
	for _, tc := range []struct {
		principal string
		want      bool
	}{{"User:alice", true}, {"User:bob", false}, {"User:mallory", false}, {"User:admin", true}} {
		if got := a.authorizeAny(tc.principal, "h", kmsg.ACLOperationWrite, topic); got != tc.want {
			t.Errorf("WRITE on any topic for %s = %t, want %t", tc.principal, got, tc.want)
		}
	}
}
