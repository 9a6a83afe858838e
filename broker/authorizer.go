package broker

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// AuthorizerConfig turns on authorization by ACLs, as Kafka's
// StandardAuthorizer: every request is checked against the ACL bindings
// kept in the replicated metadata (CreateAcls, DescribeAcls, DeleteAcls;
// `runnel acls`). Off by default: without it every principal may do
// everything, as before.
type AuthorizerConfig struct {
	// Enabled corresponds to authorizer.class.name set to Kafka's
	// StandardAuthorizer.
	Enabled bool
	// SuperUsers are principals ("User:admin") allowed everything
	// whatever the ACLs say (super.users).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows an operation on a resource no
	// binding covers (allow.everyone.if.no.acl.found). Default false: a
	// resource without ACLs is closed to all but super users.
	AllowEveryoneIfNoACLFound bool
}

func (a *AuthorizerConfig) validate() []error {
	var errs []error
	for _, p := range a.SuperUsers {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			errs = append(errs, fmt.Errorf("super.users: %q is not a principal of the form Type:name", p))
		}
	}
	return errs
}

func (a *AuthorizerConfig) string() string {
	class := ""
	if a.Enabled {
		class = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	}
	return fmt.Sprintf("authorizer.class.name=%s\nsuper.users=%s\nallow.everyone.if.no.acl.found=%t\n",
		class, strings.Join(a.SuperUsers, ";"), a.AllowEveryoneIfNoACLFound)
}

// authorizer decides requests as Kafka's StandardAuthorizer does:
//
//   - a super user may do everything;
//   - the bindings that apply are those of the resource's literal name,
//     of the literal wildcard "*", and of every PREFIXED pattern the name
//     starts with, whose principal is the caller's or "User:*" and whose
//     host is the caller's address or "*";
//   - a DENY for the operation (or ALL) wins over any ALLOW;
//   - an ALLOW of the operation or ALL allows it; an ALLOW of READ,
//     WRITE, DELETE or ALTER also allows DESCRIBE, and one of
//     ALTER_CONFIGS also DESCRIBE_CONFIGS (DENY implies nothing);
//   - a resource no binding covers, for anyone, is allowed only with
//     allow.everyone.if.no.acl.found.
//
// It holds no state of its own beyond the configuration: the bindings
// are read from the current metadata view at every check.
type authorizer struct {
	super      map[string]bool
	allowEmpty bool
	acls       func() *meta.ACLSet
	logger     *slog.Logger
	denials    *prometheus.CounterVec
}

func newAuthorizer(cfg AuthorizerConfig, acls func() *meta.ACLSet, logger *slog.Logger) *authorizer {
	a := &authorizer{
		super:      make(map[string]bool),
		allowEmpty: cfg.AllowEveryoneIfNoACLFound,
		acls:       acls,
		logger:     logger,
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_broker_authorization_denials_total",
			Help: "Operations the authorizer denied, by operation and resource type.",
		}, []string{"operation", "resource_type"}),
	}
	for _, p := range cfg.SuperUsers {
		a.super[p] = true
	}
	return a
}

// wildcardPrincipal in a binding stands for every user.
const wildcardPrincipal = "User:*"

// authorize reports whether principal, connected from host, may do op
// on the resource typ/name.
func (a *authorizer) authorize(principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if a.super[principal] {
		return true
	}
	var found, allowed, denied bool
	a.acls().ForResource(typ, name, func(b meta.ACL) bool {
		found = true
		switch entryApplies(b, principal, host, op) {
		case kmsg.ACLPermissionTypeDeny:
			denied = true
			return false
		case kmsg.ACLPermissionTypeAllow:
			allowed = true
		}
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return !found && a.allowEmpty
}

// entryApplies returns the binding's permission if it decides op for
// principal at host, or UNKNOWN if it says nothing about it.
func entryApplies(b meta.ACL, principal, host string, op kmsg.ACLOperation) kmsg.ACLPermissionType {
	if b.Principal != principal && b.Principal != wildcardPrincipal {
		return kmsg.ACLPermissionTypeUnknown
	}
	if b.Host != "*" && b.Host != host {
		return kmsg.ACLPermissionTypeUnknown
	}
	if b.Operation == kmsg.ACLOperationAll || b.Operation == op || b.Permission == kmsg.ACLPermissionTypeAllow && implies(b.Operation, op) {
		return b.Permission
	}
	return kmsg.ACLPermissionTypeUnknown
}

// implies reports whether an ALLOW of have allows want too.
func implies(have, want kmsg.ACLOperation) bool {
	switch want {
	case kmsg.ACLOperationDescribe:
		switch have {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return have == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// authorizeAny reports whether principal may do op on at least one
// resource of type typ, as Kafka's authorizeByResourceType: some ALLOW
// binding applies to it that no DENY of the same or a wider pattern
// cancels. It answers InitProducerId without a transactional id, which
// may pass with WRITE on any topic instead of IDEMPOTENT_WRITE.
func (a *authorizer) authorizeAny(principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType) bool {
	// As Kafka: a name no binding mentions stands for the resources the
	// wildcards and allow.everyone.if.no.acl.found decide (and the
	// super users).
	if a.authorize(principal, host, op, typ, "hardcode") {
		return true
	}
	var denies, allows []meta.ACL
	a.acls().ForType(typ, func(b meta.ACL) bool {
		switch entryApplies(b, principal, host, op) {
		case kmsg.ACLPermissionTypeDeny:
			denies = append(denies, b)
		case kmsg.ACLPermissionTypeAllow:
			allows = append(allows, b)
		}
		return true
	})
	for _, d := range denies {
		if d.PatternType == kmsg.ACLResourcePatternTypeLiteral && d.ResourceName == "*" {
			return false
		}
	}
	for _, al := range allows {
		cancelled := false
		for _, d := range denies {
			switch d.PatternType {
			case kmsg.ACLResourcePatternTypeLiteral:
				cancelled = al.PatternType == kmsg.ACLResourcePatternTypeLiteral && d.ResourceName == al.ResourceName
			case kmsg.ACLResourcePatternTypePrefixed:
				cancelled = strings.HasPrefix(al.ResourceName, d.ResourceName)
			}
			if cancelled {
				break
			}
		}
		if !cancelled {
			return true
		}
	}
	return false
}

// allowed reports whether the connection's principal may do op on the
// resource typ/name; always true when no authorizer is configured. A
// denial is logged and counted, as Kafka's authorizer logger does.
func (c *conn) allowed(op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	a := c.b.authz
	if a == nil {
		return true
	}
	principal, host := c.who()
	if a.authorize(principal, host, op, typ, name) {
		return true
	}
	c.denied(op, typ, name)
	return false
}

// allowedQuiet is allowed without the log line and count, for checks
// whose denial is not an error: filtering what a listing shows, or a
// first of two checks where the second may still allow.
func (c *conn) allowedQuiet(op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	a := c.b.authz
	if a == nil {
		return true
	}
	principal, host := c.who()
	return a.authorize(principal, host, op, typ, name)
}

func (c *conn) denied(op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) {
	principal, host := c.who()
	c.b.authz.denials.WithLabelValues(op.String(), typ.String()).Inc()
	c.b.authz.logger.Info("authorization denied", "principal", principal, "host", host,
		"operation", op.String(), "resource_type", typ.String(), "resource", name)
}

// allowedCluster is allowed on the CLUSTER resource.
func (c *conn) allowedCluster(op kmsg.ACLOperation) bool {
	return c.allowed(op, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName)
}

// allowedConfigs is allowed for a config resource: a topic's configs
// are the topic's, a broker's (and its loggers') the cluster's, as
// Kafka's.
func (c *conn) allowedConfigs(op kmsg.ACLOperation, typ kmsg.ConfigResourceType, name string) bool {
	if typ == kmsg.ConfigResourceTypeTopic {
		return c.allowed(op, kmsg.ACLResourceTypeTopic, name)
	}
	return c.allowedCluster(op)
}

// configsDenied is the error of a config resource the authorizer refuses.
func configsDenied(typ kmsg.ConfigResourceType) *kerr.Error {
	if typ == kmsg.ConfigResourceTypeTopic {
		return kerr.TopicAuthorizationFailed
	}
	return kerr.ClusterAuthorizationFailed
}

// resourceOperations are the operations KIP-430's bitfields report, by
// resource type, as Kafka's.
var resourceOperations = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite},
}

// authorizedOperations is KIP-430's bitfield of what the connection may
// do on the resource: bit n set for the operation of code n.
func (c *conn) authorizedOperations(typ kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range resourceOperations[typ] {
		if c.allowedQuiet(op, typ, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// who is the connection's principal and the address it comes from, as
// the authorizer matches them.
func (c *conn) who() (principal, host string) {
	principal = c.sec.principal
	if principal == "" {
		principal = anonymous
	}
	host = c.sec.host
	if host == "" {
		host = remoteHost(c.raw.RemoteAddr())
	}
	return principal, host
}

func remoteHost(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
