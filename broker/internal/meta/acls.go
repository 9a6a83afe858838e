package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACL bindings, as Kafka's StandardAuthorizer keeps them in its metadata
// log: each binding is a resource pattern (type, name, LITERAL or
// PREFIXED) and an entry (principal, host, operation, ALLOW or DENY).
// They replicate with the rest of the metadata, so every broker of a
// cluster authorizes by the same bindings and they survive restarts. The
// broker's authorizer (broker/authorizer.go) reads them through
// Cluster.ACLs; this file stores them and matches filters against them.

// ErrInvalidACL refuses a binding Kafka would refuse (INVALID_REQUEST).
var ErrInvalidACL = errors.New("meta: invalid acl")

// ClusterResourceName is the only name of the CLUSTER resource.
const ClusterResourceName = "kafka-cluster"

// ACL is one binding. It is comparable: two equal values are the same
// binding, stored once.
type ACL struct {
	ResourceType kmsg.ACLResourceType        `json:"resourceType"`
	ResourceName string                      `json:"resourceName"`
	PatternType  kmsg.ACLResourcePatternType `json:"patternType"`
	// Principal is "Type:name", e.g. "User:alice"; "User:*" is every
	// user.
	Principal string `json:"principal"`
	// Host is the client's IP address, or "*" for any.
	Host       string                 `json:"host"`
	Operation  kmsg.ACLOperation      `json:"operation"`
	Permission kmsg.ACLPermissionType `json:"permission"`
}

// String prints a binding as kafka-acls lists it.
func (a ACL) String() string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s) on ResourcePattern(resourceType=%s, name=%s, patternType=%s)",
		a.Principal, a.Host, a.Operation, a.Permission, a.ResourceType, a.ResourceName, a.PatternType)
}

// Validate applies Kafka's rules for a new binding: a concrete resource
// type, pattern type (LITERAL or PREFIXED), operation and permission, a
// resource name, "kafka-cluster" for the CLUSTER, and a principal of the
// form Type:name.
func (a ACL) Validate() error {
	switch a.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return fmt.Errorf("%w: resource type %s", ErrInvalidACL, a.ResourceType)
	}
	if a.PatternType != kmsg.ACLResourcePatternTypeLiteral && a.PatternType != kmsg.ACLResourcePatternTypePrefixed {
		return fmt.Errorf("%w: pattern type %s (a binding is LITERAL or PREFIXED)", ErrInvalidACL, a.PatternType)
	}
	if a.Operation <= kmsg.ACLOperationAny || a.Operation > kmsg.ACLOperationDescribeTokens {
		return fmt.Errorf("%w: operation %s", ErrInvalidACL, a.Operation)
	}
	if a.Permission != kmsg.ACLPermissionTypeAllow && a.Permission != kmsg.ACLPermissionTypeDeny {
		return fmt.Errorf("%w: permission type %s", ErrInvalidACL, a.Permission)
	}
	if a.ResourceName == "" {
		return fmt.Errorf("%w: the resource name is empty", ErrInvalidACL)
	}
	if a.ResourceType == kmsg.ACLResourceTypeCluster && a.ResourceName != ClusterResourceName {
		return fmt.Errorf("%w: the only name of the CLUSTER resource is %s, not %q", ErrInvalidACL, ClusterResourceName, a.ResourceName)
	}
	if typ, name, ok := strings.Cut(a.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: principal %q is not of the form Type:name", ErrInvalidACL, a.Principal)
	}
	if a.Host == "" {
		return fmt.Errorf("%w: the host is empty (\"*\" is any host)", ErrInvalidACL)
	}
	return nil
}

// ACLFilter selects bindings, as DescribeAcls and DeleteAcls do: ANY
// matches every value of a field, a nil string every string. Pattern type
// MATCH selects the bindings that apply to a resource of that name: the
// literal name, the literal wildcard "*", and every prefix of it.
type ACLFilter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Matches reports whether the filter selects a.
func (f ACLFilter) Matches(a ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != a.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != a.Permission {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	return f.matchesPattern(a)
}

func (f ACLFilter) matchesPattern(a ACL) bool {
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch:
	default:
		if f.PatternType != a.PatternType {
			return false
		}
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		return name == a.ResourceName
	}
	if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
		return strings.HasPrefix(name, a.ResourceName)
	}
	return name == a.ResourceName || a.ResourceName == "*"
}

// Validate applies Kafka's rules for a filter: no UNKNOWN field.
func (f ACLFilter) Validate() error {
	switch {
	case f.ResourceType == kmsg.ACLResourceTypeUnknown || f.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: filter resource type %s", ErrInvalidACL, f.ResourceType)
	case f.PatternType == kmsg.ACLResourcePatternTypeUnknown || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: filter pattern type %s", ErrInvalidACL, f.PatternType)
	case f.Operation == kmsg.ACLOperationUnknown || f.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w: filter operation %s", ErrInvalidACL, f.Operation)
	case f.Permission == kmsg.ACLPermissionTypeUnknown || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("%w: filter permission type %s", ErrInvalidACL, f.Permission)
	}
	return nil
}

// ACLSet is an immutable set of bindings indexed for authorization. The
// store builds one per change to the bindings; views share it.
type ACLSet struct {
	all []ACL
	// literal holds the LITERAL bindings by resource type and name (the
	// wildcard "*" under its own name); prefixed the PREFIXED ones by
	// resource type.
	literal  map[kmsg.ACLResourceType]map[string][]ACL
	prefixed map[kmsg.ACLResourceType][]ACL
}

// NewACLSet indexes bindings; the caller must not modify acls after.
func NewACLSet(acls []ACL) *ACLSet {
	s := &ACLSet{
		all:      acls,
		literal:  make(map[kmsg.ACLResourceType]map[string][]ACL),
		prefixed: make(map[kmsg.ACLResourceType][]ACL),
	}
	for _, a := range acls {
		if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			s.prefixed[a.ResourceType] = append(s.prefixed[a.ResourceType], a)
			continue
		}
		byName := s.literal[a.ResourceType]
		if byName == nil {
			byName = make(map[string][]ACL)
			s.literal[a.ResourceType] = byName
		}
		byName[a.ResourceName] = append(byName[a.ResourceName], a)
	}
	return s
}

// Len is the number of bindings.
func (s *ACLSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// All returns every binding; the caller must not modify it.
func (s *ACLSet) All() []ACL {
	if s == nil {
		return nil
	}
	return s.all
}

// ForResource calls fn with every binding whose pattern covers the
// resource typ/name: the literal name, the literal wildcard "*" and the
// prefixes of name, until fn returns false.
func (s *ACLSet) ForResource(typ kmsg.ACLResourceType, name string, fn func(ACL) bool) {
	if s == nil {
		return
	}
	byName := s.literal[typ]
	for _, a := range byName[name] {
		if !fn(a) {
			return
		}
	}
	if name != "*" {
		for _, a := range byName["*"] {
			if !fn(a) {
				return
			}
		}
	}
	for _, a := range s.prefixed[typ] {
		if strings.HasPrefix(name, a.ResourceName) && !fn(a) {
			return
		}
	}
}

// ForType calls fn with every binding of resource type typ, until fn
// returns false.
func (s *ACLSet) ForType(typ kmsg.ACLResourceType, fn func(ACL) bool) {
	if s == nil {
		return
	}
	for _, list := range s.literal[typ] {
		for _, a := range list {
			if !fn(a) {
				return
			}
		}
	}
	for _, a := range s.prefixed[typ] {
		if !fn(a) {
			return
		}
	}
}

// Matching returns the bindings f selects.
func (s *ACLSet) Matching(f ACLFilter) []ACL {
	var out []ACL
	for _, a := range s.All() {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

const (
	opCreateACLs = "create-acls"
	opDeleteACLs = "delete-acls"
)

// applyACLs applies the commands of this file. Bindings are kept in the
// order they were created; creating one that exists and deleting one that
// does not change nothing.
func (s *state) applyACLs(c *command) error {
	switch c.Op {
	case opCreateACLs:
		for _, a := range c.ACLs {
			if err := a.Validate(); err != nil {
				return err
			}
		}
		next := slices.Clone(s.ACLs)
		for _, a := range c.ACLs {
			if !slices.Contains(next, a) {
				next = append(next, a)
			}
		}
		s.ACLs = next
	case opDeleteACLs:
		s.ACLs = slices.DeleteFunc(slices.Clone(s.ACLs), func(a ACL) bool { return slices.Contains(c.ACLs, a) })
	default:
		return fmt.Errorf("meta: unknown command %q", c.Op)
	}
	s.aclSet = nil
	return nil
}

// acls is the indexed set of the state's bindings, built again after a
// change (applyACLs clears it) or a snapshot restore.
func (s *state) acls() *ACLSet {
	if s.aclSet == nil {
		s.aclSet = NewACLSet(s.ACLs)
	}
	return s.aclSet
}

// CreateACLs adds bindings, all in one metadata change; each is validated
// first, and an invalid one refuses the whole change.
func (s *Store) CreateACLs(ctx context.Context, acls []ACL) error {
	for _, a := range acls {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	if len(acls) == 0 {
		return nil
	}
	return s.propose(ctx, &command{Op: opCreateACLs, ACLs: slices.Clone(acls)})
}

// DeleteACLs removes the bindings each filter selects, all in one
// metadata change, and returns them per filter (a binding two filters
// select is returned for both).
func (s *Store) DeleteACLs(ctx context.Context, filters []ACLFilter) ([][]ACL, error) {
	set := s.Cluster().ACLs
	out := make([][]ACL, len(filters))
	var gone []ACL
	for i, f := range filters {
		out[i] = set.Matching(f)
		for _, a := range out[i] {
			if !slices.Contains(gone, a) {
				gone = append(gone, a)
			}
		}
	}
	if len(gone) == 0 {
		return out, nil
	}
	if err := s.propose(ctx, &command{Op: opDeleteACLs, ACLs: gone}); err != nil {
		return nil, err
	}
	return out, nil
}
