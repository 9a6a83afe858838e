package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const aclsSynopsis = `acls SUBCOMMAND [ARGS...]

subcommands:
  add    (--allow-principal P | --deny-principal P)... [--allow-host H]... [--deny-host H]...
         --operation OP... RESOURCE... [--resource-pattern-type literal|prefixed]
  list   [RESOURCE...] [--principal P] [--resource-pattern-type any|match|literal|prefixed]
  remove RESOURCE... [--allow-principal P]... [--deny-principal P]... [--operation OP]...
         [--allow-host H]... [--deny-host H]... [--resource-pattern-type any|match|literal|prefixed]

RESOURCE is --topic NAME, --group NAME, --transactional-id NAME,
--delegation-token NAME or --cluster, each repeatable; a NAME of * is every
resource of its type.`

// aclsSynopses are the subcommands' usage lines.
var aclsSynopses = map[string]string{
	"add":    "acls add (--allow-principal P | --deny-principal P)... --operation OP... RESOURCE... [--allow-host H]... [--deny-host H]... [--resource-pattern-type literal|prefixed]",
	"list":   "acls list [RESOURCE...] [--principal P] [--resource-pattern-type any|match|literal|prefixed]",
	"remove": "acls remove RESOURCE... [--allow-principal P]... [--deny-principal P]... [--operation OP]... [--allow-host H]... [--deny-host H]... [--resource-pattern-type any|match|literal|prefixed]",
}

// runACLs dispatches the acls subcommands: Kafka's kafka-acls --add,
// --list and --remove, with its flags.
func runACLs(ctx context.Context, e env, g *globals, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: runnel %s\n", aclsSynopsis) }
	if len(args) == 0 {
		return &usageError{msg: "missing subcommand", usage: usage}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "add", "list", "remove":
		return aclsRun(ctx, e, g, sub, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: runnel %s\n", aclsSynopsis)
		return flag.ErrHelp
	}
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub), usage: usage}
}

// aclFlags are the flags of the acls subcommands, as kafka-acls names
// them.
type aclFlags struct {
	topics, groups, txnIDs       listFlag
	tokens                       listFlag
	cluster                      bool
	allowPrincipals, denyPrinc   listFlag
	allowHosts, denyHosts        listFlag
	operations                   listFlag
	principal, patternType, verb string
}

// aclResource is one resource pattern named on the command line.
type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

func (f *aclFlags) resources() []aclResource {
	var out []aclResource
	for _, n := range f.topics {
		out = append(out, aclResource{kmsg.ACLResourceTypeTopic, n})
	}
	for _, n := range f.groups {
		out = append(out, aclResource{kmsg.ACLResourceTypeGroup, n})
	}
	for _, n := range f.txnIDs {
		out = append(out, aclResource{kmsg.ACLResourceTypeTransactionalId, n})
	}
	for _, n := range f.tokens {
		out = append(out, aclResource{kmsg.ACLResourceTypeDelegationToken, n})
	}
	if f.cluster {
		out = append(out, aclResource{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	return out
}

func aclsRun(ctx context.Context, e env, g *globals, verb string, args []string) error {
	fs := newFlagSet(e, g, "acls "+verb, aclsSynopses[verb], true)
	f := aclFlags{verb: verb}
	fs.Var(&f.topics, "topic", "a topic `NAME` (repeatable; * for every topic)")
	fs.Var(&f.groups, "group", "a consumer group `NAME` (repeatable; * for every group)")
	fs.Var(&f.txnIDs, "transactional-id", "a transactional `ID` (repeatable; * for every id)")
	fs.Var(&f.tokens, "delegation-token", "a delegation token `ID` (repeatable; * for every token)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	defaultPattern := "literal"
	if verb == "list" {
		defaultPattern = "" // every binding of the named resources, or every binding
	}
	fs.StringVar(&f.patternType, "resource-pattern-type", defaultPattern, "`TYPE` of the resource pattern: literal or prefixed; to list or remove also any (every pattern of that exact name) or match (every pattern that applies to the name)")
	timeout := adminFlags(fs)
	if verb == "list" {
		fs.StringVar(&f.principal, "principal", "", "only the ACLs of this `PRINCIPAL` (User:NAME)")
	} else {
		fs.Var(&f.allowPrincipals, "allow-principal", "`PRINCIPAL` (User:NAME, User:* for everyone) the ACL allows (repeatable)")
		fs.Var(&f.denyPrinc, "deny-principal", "`PRINCIPAL` the ACL denies (repeatable)")
		fs.Var(&f.allowHosts, "allow-host", "IP `ADDRESS` the allow principals may come from (repeatable; default * for add)")
		fs.Var(&f.denyHosts, "deny-host", "IP `ADDRESS` the deny principals are denied from (repeatable; default * for add)")
		fs.Var(&f.operations, "operation", "`OP`: All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite (repeatable)")
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	pattern, err := kmsg.ParseACLResourcePatternType(f.patternType)
	switch {
	case f.patternType == "":
		pattern = kmsg.ACLResourcePatternTypeAny
	case err != nil || pattern == kmsg.ACLResourcePatternTypeUnknown:
		return usagef(fs, "--resource-pattern-type %q: want literal, prefixed, any or match", f.patternType)
	case verb == "add" && pattern != kmsg.ACLResourcePatternTypeLiteral && pattern != kmsg.ACLResourcePatternTypePrefixed:
		return usagef(fs, "--resource-pattern-type %s: an ACL is added to a literal or prefixed pattern", f.patternType)
	}
	var ops []kmsg.ACLOperation
	for _, o := range f.operations {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil || op <= kmsg.ACLOperationAny {
			return usagef(fs, "--operation %q: want one of All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite", o)
		}
		ops = append(ops, op)
	}
	for _, p := range slices.Concat(f.allowPrincipals, f.denyPrinc, []string{f.principal}) {
		if typ, name, ok := strings.Cut(p, ":"); p != "" && (!ok || typ == "" || name == "") {
			return usagef(fs, "principal %q: want TYPE:NAME, e.g. User:alice", p)
		}
	}
	resources := f.resources()
	switch verb {
	case "add":
		if len(resources) == 0 {
			return usagef(fs, "name a resource: --topic, --group, --transactional-id, --delegation-token or --cluster")
		}
		if len(f.allowPrincipals)+len(f.denyPrinc) == 0 {
			return usagef(fs, "name a principal: --allow-principal or --deny-principal")
		}
		if len(ops) == 0 {
			return usagef(fs, "name an operation: --operation")
		}
		for _, r := range resources {
			for _, op := range ops {
				if !slices.Contains(resourceOperations[r.typ], op) {
					return usagef(fs, "--operation %s does not apply to a %s (it takes %s)", op, r.typ, opNames(resourceOperations[r.typ]))
				}
			}
		}
	case "remove":
		if len(resources) == 0 {
			return usagef(fs, "name a resource: --topic, --group, --transactional-id, --delegation-token or --cluster")
		}
	}

	cl, err := newClient(g)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch verb {
	case "add":
		return aclsAdd(ctx, e, cl, f, resources, pattern, ops)
	case "remove":
		return aclsRemove(ctx, e, cl, f, resources, pattern, ops)
	}
	return aclsList(ctx, e, cl, f, resources, pattern)
}

// entry is a principal, host and permission of an ACL or filter.
type aclEntry struct {
	principal *string
	host      *string
	perm      kmsg.ACLPermissionType
}

// entries crosses the principals with their hosts, as kafka-acls does;
// hosts default to def (nil: any) when none are named.
func (f *aclFlags) entries(def *string) []aclEntry {
	var out []aclEntry
	add := func(principals, hosts []string, perm kmsg.ACLPermissionType) {
		for _, p := range principals {
			if len(hosts) == 0 {
				out = append(out, aclEntry{kmsg.StringPtr(p), def, perm})
			}
			for _, h := range hosts {
				out = append(out, aclEntry{kmsg.StringPtr(p), kmsg.StringPtr(h), perm})
			}
		}
	}
	add(f.allowPrincipals, f.allowHosts, kmsg.ACLPermissionTypeAllow)
	add(f.denyPrinc, f.denyHosts, kmsg.ACLPermissionTypeDeny)
	return out
}

func aclsAdd(ctx context.Context, e env, cl kmsg.Requestor, f aclFlags, resources []aclResource, pattern kmsg.ACLResourcePatternType, ops []kmsg.ACLOperation) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, r := range resources {
		for _, en := range f.entries(kmsg.StringPtr("*")) {
			for _, op := range ops {
				c := kmsg.NewCreateACLsRequestCreation()
				c.ResourceType, c.ResourceName, c.ResourcePatternType = r.typ, r.name, pattern
				c.Principal, c.Host, c.Operation, c.PermissionType = *en.principal, *en.host, op, en.perm
				req.Creations = append(req.Creations, c)
			}
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("add acls: %w", err)
	}
	var failed []string
	for i, res := range resp.Results {
		c := req.Creations[i]
		line := fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s) on %s",
			c.Principal, c.Host, c.Operation, c.PermissionType, patternString(c.ResourceType, c.ResourceName, c.ResourcePatternType))
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			if res.ErrorMessage != nil {
				err = fmt.Errorf("%w: %s", err, *res.ErrorMessage)
			}
			failed = append(failed, fmt.Sprintf("%s: %v", line, err))
			continue
		}
		fmt.Fprintf(e.stdout, "added %s\n", line)
	}
	if len(failed) > 0 {
		return fmt.Errorf("add acls:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

// filters are the DeleteAcls filters of a remove: every resource, with
// every entry named (or any principal and host), every operation named
// (or any).
func (f *aclFlags) filters(resources []aclResource, pattern kmsg.ACLResourcePatternType, ops []kmsg.ACLOperation) []kmsg.DeleteACLsRequestFilter {
	entries := f.entries(nil)
	if len(entries) == 0 {
		entries = []aclEntry{{perm: kmsg.ACLPermissionTypeAny}}
	}
	if len(ops) == 0 {
		ops = []kmsg.ACLOperation{kmsg.ACLOperationAny}
	}
	var out []kmsg.DeleteACLsRequestFilter
	for _, r := range resources {
		for _, en := range entries {
			for _, op := range ops {
				fl := kmsg.NewDeleteACLsRequestFilter()
				fl.ResourceType, fl.ResourceName, fl.ResourcePatternType = r.typ, kmsg.StringPtr(r.name), pattern
				fl.Principal, fl.Host, fl.Operation, fl.PermissionType = en.principal, en.host, op, en.perm
				out = append(out, fl)
			}
		}
	}
	return out
}

func aclsRemove(ctx context.Context, e env, cl kmsg.Requestor, f aclFlags, resources []aclResource, pattern kmsg.ACLResourcePatternType, ops []kmsg.ACLOperation) error {
	req := kmsg.NewPtrDeleteACLsRequest()
	req.Filters = f.filters(resources, pattern, ops)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("remove acls: %w", err)
	}
	removed := 0
	for _, res := range resp.Results {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			if res.ErrorMessage != nil {
				err = fmt.Errorf("%w: %s", err, *res.ErrorMessage)
			}
			return fmt.Errorf("remove acls: %w", err)
		}
		for _, m := range res.MatchingACLs {
			removed++
			fmt.Fprintf(e.stdout, "removed (principal=%s, host=%s, operation=%s, permissionType=%s) on %s\n",
				m.Principal, m.Host, m.Operation, m.PermissionType, patternString(m.ResourceType, m.ResourceName, m.ResourcePatternType))
		}
	}
	if removed == 0 {
		fmt.Fprintln(e.stderr, "no ACL matched")
	}
	return nil
}

func aclsList(ctx context.Context, e env, cl kmsg.Requestor, f aclFlags, resources []aclResource, pattern kmsg.ACLResourcePatternType) error {
	var principal *string
	if f.principal != "" {
		principal = kmsg.StringPtr(f.principal)
	}
	reqs := []*kmsg.DescribeACLsRequest{}
	newReq := func() *kmsg.DescribeACLsRequest {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, pattern
		req.Principal, req.Operation, req.PermissionType = principal, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		return req
	}
	for _, r := range resources {
		req := newReq()
		req.ResourceType, req.ResourceName = r.typ, kmsg.StringPtr(r.name)
		reqs = append(reqs, req)
	}
	if len(resources) == 0 {
		reqs = append(reqs, newReq())
	}
	for _, req := range reqs {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("list acls: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if resp.ErrorMessage != nil {
				err = fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
			}
			return fmt.Errorf("list acls: %w", err)
		}
		for _, res := range resp.Resources {
			fmt.Fprintf(e.stdout, "Current ACLs for resource `%s`:\n", patternString(res.ResourceType, res.ResourceName, res.ResourcePatternType))
			for _, a := range res.ACLs {
				fmt.Fprintf(e.stdout, " \t(principal=%s, host=%s, operation=%s, permissionType=%s)\n", a.Principal, a.Host, a.Operation, a.PermissionType)
			}
			fmt.Fprintln(e.stdout)
		}
	}
	return nil
}

// resourceOperations are the operations an ACL of each resource type
// may name, as kafka-acls checks them.
var resourceOperations = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationAll, kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationAll, kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationAll, kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationAll, kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
	kmsg.ACLResourceTypeDelegationToken: {kmsg.ACLOperationAll, kmsg.ACLOperationDescribe},
}

func opNames(ops []kmsg.ACLOperation) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.String()
	}
	return strings.Join(names, ", ")
}

// patternString prints a resource pattern as kafka-acls does.
func patternString(typ kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType) string {
	return fmt.Sprintf("ResourcePattern(resourceType=%s, name=%s, patternType=%s)", typ, name, pattern)
}
