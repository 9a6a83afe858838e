package meta

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func acl(typ kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) ACL {
	return ACL{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

var (
	aliceReadOrders = acl(kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	bobWriteOrd     = acl(kmsg.ACLResourceTypeTopic, "ord", kmsg.ACLResourcePatternTypePrefixed, "User:bob", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow)
	anyDenyAll      = acl(kmsg.ACLResourceTypeTopic, "*", kmsg.ACLResourcePatternTypeLiteral, "User:*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeDeny)
	groupG          = acl(kmsg.ACLResourceTypeGroup, "g", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
)

// Bindings are kept in the metadata: a restart replays them from the
// Raft log, and a snapshot restore reads them back; deleting by a filter
// removes only what it selects.
func TestACLsPersistAndDelete(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.CreateACLs(ctx(t), []ACL{aliceReadOrders, bobWriteOrd, aliceReadOrders}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateACLs(ctx(t), []ACL{groupG}); err != nil {
		t.Fatal(err)
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateACLs(ctx(t), []ACL{anyDenyAll}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, dir)
	defer s.Close()
	want := []ACL{aliceReadOrders, bobWriteOrd, groupG, anyDenyAll}
	if got := s.Cluster().ACLs.All(); !slices.Equal(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	alice := "User:alice"
	deleted, err := s.DeleteACLs(ctx(t), []ACLFilter{{
		ResourceType: kmsg.ACLResourceTypeTopic, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: &alice,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || !slices.Equal(deleted[0], []ACL{aliceReadOrders}) {
		t.Fatalf("deleted %v", deleted)
	}
	if got := s.Cluster().ACLs.All(); !slices.Equal(got, []ACL{bobWriteOrd, groupG, anyDenyAll}) {
		t.Fatalf("after delete: %v", got)
	}
}

func TestACLValidate(t *testing.T) {
	ok := aliceReadOrders
	bad := map[string]func(a *ACL){
		"resource any":    func(a *ACL) { a.ResourceType = kmsg.ACLResourceTypeAny },
		"pattern match":   func(a *ACL) { a.PatternType = kmsg.ACLResourcePatternTypeMatch },
		"operation any":   func(a *ACL) { a.Operation = kmsg.ACLOperationAny },
		"permission any":  func(a *ACL) { a.Permission = kmsg.ACLPermissionTypeAny },
		"empty name":      func(a *ACL) { a.ResourceName = "" },
		"principal":       func(a *ACL) { a.Principal = "alice" },
		"cluster name":    func(a *ACL) { a.ResourceType = kmsg.ACLResourceTypeCluster },
		"empty host":      func(a *ACL) { a.Host = "" },
		"empty principal": func(a *ACL) { a.Principal = "User:" },
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range bad {
		a := ok
		edit(&a)
		if err := a.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("%s: %v, want ErrInvalidACL", name, err)
		}
	}
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := ok
	a.Host = ""
	if err := s.CreateACLs(ctx(t), []ACL{ok, a}); !errors.Is(err, ErrInvalidACL) {
		t.Fatalf("create with an invalid binding: %v", err)
	}
	if n := s.Cluster().ACLs.Len(); n != 0 {
		t.Fatalf("%d bindings after a refused create", n)
	}
}

// Filters as Kafka's ResourcePatternFilter: ANY by exact name over every
// pattern type, MATCH by what applies to a resource name.
func TestACLFilterMatches(t *testing.T) {
	set := NewACLSet([]ACL{aliceReadOrders, bobWriteOrd, anyDenyAll, groupG})
	name := func(s string) *string { return &s }
	all := ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	for _, tc := range []struct {
		what string
		edit func(f *ACLFilter)
		want []ACL
	}{
		{"everything", func(*ACLFilter) {}, []ACL{aliceReadOrders, bobWriteOrd, anyDenyAll, groupG}},
		{"topics", func(f *ACLFilter) { f.ResourceType = kmsg.ACLResourceTypeTopic }, []ACL{aliceReadOrders, bobWriteOrd, anyDenyAll}},
		{"any named ord", func(f *ACLFilter) { f.ResourceName = name("ord") }, []ACL{bobWriteOrd}},
		{"literal named ord", func(f *ACLFilter) {
			f.ResourceName, f.PatternType = name("ord"), kmsg.ACLResourcePatternTypeLiteral
		}, nil},
		{"match orders", func(f *ACLFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = kmsg.ACLResourceTypeTopic, name("orders"), kmsg.ACLResourcePatternTypeMatch
		}, []ACL{aliceReadOrders, bobWriteOrd, anyDenyAll}},
		{"match other", func(f *ACLFilter) {
			f.ResourceType, f.ResourceName, f.PatternType = kmsg.ACLResourceTypeTopic, name("other"), kmsg.ACLResourcePatternTypeMatch
		}, []ACL{anyDenyAll}},
		{"deny", func(f *ACLFilter) { f.Permission = kmsg.ACLPermissionTypeDeny }, []ACL{anyDenyAll}},
		{"read", func(f *ACLFilter) { f.Operation = kmsg.ACLOperationRead }, []ACL{aliceReadOrders, groupG}},
		{"host", func(f *ACLFilter) { f.Host = name("10.0.0.1") }, nil},
	} {
		f := all
		tc.edit(&f)
		if got := set.Matching(f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, got, tc.want)
		}
	}
	var covering []ACL
	set.ForResource(kmsg.ACLResourceTypeTopic, "orders", func(a ACL) bool { covering = append(covering, a); return true })
	if want := []ACL{aliceReadOrders, anyDenyAll, bobWriteOrd}; !slices.Equal(covering, want) {
		t.Errorf("ForResource orders: %v, want %v", covering, want)
	}
}

// Bindings made on any node of a quorum reach every node: a follower
// forwards the change to the controller, and each node's view has it once
// applied there.
func TestACLsReplicate(t *testing.T) {
	stores, _ := openQuorum(t, 10*time.Second)
	if err := stores[1].CreateACLs(ctx(t), []ACL{aliceReadOrders, groupG}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		waitFor(t, fmt.Sprintf("node %d to see the bindings", i+1), func() bool {
			return slices.Equal(s.Cluster().ACLs.All(), []ACL{aliceReadOrders, groupG})
		})
	}
	deleted, err := stores[2].DeleteACLs(ctx(t), []ACLFilter{{
		ResourceType: kmsg.ACLResourceTypeGroup, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny,
	}})
	if err != nil || len(deleted[0]) != 1 {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	for i, s := range stores {
		waitFor(t, fmt.Sprintf("node %d to see the deletion", i+1), func() bool {
			return slices.Equal(s.Cluster().ACLs.All(), []ACL{aliceReadOrders})
		})
	}
}
