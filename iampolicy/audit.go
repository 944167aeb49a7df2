package iampolicy

import (
	"sort"
	"strings"
)

// Grant is a witness that a policy set allows one action on one resource.
type Grant struct {
	// Action and Resource are the shortest strings that the query and the
	// allowing statements match: "s3:PutObject" as the policy spells it, or
	// "s3:get" for a query "s3:Get*" met by "s3:*"; a trailing * matches
	// nothing ("arn:aws:s3:::logs/"); Resource "*" means every resource.
	Action   string
	Resource string
	// Conditional: the grant holds only if conditions (or policy variables
	// without a value) go the caller's way; set only by upper-bound queries.
	Conditional bool
}

// Query asks Find for an allowed action/resource pair.
type Query struct {
	// Action is an action pattern ("iam:*", "s3:Get*", "iam:PassRole");
	// "" means any action.
	Action string
	// Resource is a resource pattern; "" means any resource.
	Resource string
	// AllResources asks for a grant on every resource: a statement whose
	// Resource is "*" (or a NotResource) that no Deny naming "*" removes.
	AllResources bool
	// Exact evaluates conditions against Context. Without it Find computes
	// the upper bound an auditor wants: every Allow statement counts whatever
	// its conditions, a Deny statement only if it has none, and a policy
	// variable without a value in Context matches anything in an Allow.
	Exact   bool
	Context map[string][]string
}

// AccessLevel is what an action does, judged from its name the way the
// AWS service authorization reference groups actions.
type AccessLevel int

const (
	LevelRead AccessLevel = iota + 1 // Get*, List*, Describe*, …
	LevelWrite
	LevelTagging               // Tag*, Untag*, *Tagging
	LevelPermissionsManagement // *Policy*, *Permission*, *Grant*, *Acl*, iam:PassRole, …
)

func (l AccessLevel) String() string {
	switch l {
	case LevelRead:
		return "Read"
	case LevelWrite:
		return "Write"
	case LevelTagging:
		return "Tagging"
	case LevelPermissionsManagement:
		return "PermissionsManagement"
	}
	return "Unknown"
}

var readPrefixes = []string{"get", "list", "describe", "head", "search", "lookup", "query", "scan", "select", "batchget", "view", "simulate"}

// permissionsActions are permissions management whatever their name says.
var permissionsActions = map[string]bool{
	"iam:passrole": true, "iam:addusertogroup": true, "iam:removeuserfromgroup": true,
	"iam:createaccesskey": true, "iam:createloginprofile": true, "iam:updateloginprofile": true,
	"iam:updateassumerolepolicy": true,
}

// ActionAccessLevel classifies a concrete action name: a read prefix (Get,
// List, Describe, Head, Search, Lookup, Query, Scan, Select, BatchGet, View,
// Simulate) is Read; Tag/Untag or a name ending in Tagging is
// Tagging; a name mentioning Policy, Permission, Grant or Acl, and the IAM
// actions that hand out identities or credentials (PassRole, AddUserToGroup,
// CreateAccessKey, …), are PermissionsManagement; everything else is Write.
// It is a heuristic, not the service authorization reference.
func ActionAccessLevel(action string) AccessLevel {
	a := strings.ToLower(action)
	_, name, _ := strings.Cut(a, ":")
	for _, p := range readPrefixes {
		if strings.HasPrefix(name, p) {
			return LevelRead
		}
	}
	if strings.HasPrefix(name, "tag") || strings.HasPrefix(name, "untag") || strings.HasSuffix(name, "tagging") {
		return LevelTagging
	}
	if permissionsActions[a] {
		return LevelPermissionsManagement
	}
	for _, w := range []string{"policy", "permission", "grant", "acl"} {
		if strings.Contains(name, w) {
			return LevelPermissionsManagement
		}
	}
	return LevelWrite
}

// EscalationActions each let a principal raise its own privileges: rewrite a
// policy, attach one, join a group, mint credentials for another identity or
// drop a permissions boundary.
var EscalationActions = []string{
	"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
	"iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy",
	"iam:PutUserPolicy", "iam:PutGroupPolicy", "iam:PutRolePolicy",
	"iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy",
	"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile",
	"iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary",
	"iam:PutRolePermissionsBoundary", "iam:PutUserPermissionsBoundary",
}

// PassRoleEscalations are the action sets that, with iam:PassRole, run code
// as another (possibly more privileged) role.
var PassRoleEscalations = [][]string{
	{"ec2:RunInstances"},
	{"lambda:CreateFunction", "lambda:InvokeFunction"},
	{"lambda:CreateFunction", "lambda:CreateEventSourceMapping"},
	{"cloudformation:CreateStack"},
	{"glue:CreateDevEndpoint"},
	{"datapipeline:CreatePipeline"},
	{"ecs:RegisterTaskDefinition", "ecs:RunTask"},
	{"sagemaker:CreateNotebookInstance"},
	{"codebuild:CreateProject", "codebuild:StartBuild"},
}

// Escalation is one privilege-escalation path the policy set allows.
type Escalation struct {
	Actions     []string // one action from EscalationActions, or iam:PassRole and a PassRoleEscalations set
	Resource    string   // a resource it is allowed on ("*" = every resource)
	AllResource bool     // allowed on every resource
	Conditional bool
}

// Summary is what an auditor wants to know about a session's permissions.
type Summary struct {
	AllActions                                  bool     // every action of every service ("*", or a NotAction) is allowed somewhere
	AllResources                                bool     // some action is allowed on every resource (Resource "*")
	AdminEquivalent                             bool     // * on *, iam:* on *, or an escalation on every resource
	Services                                    []string // service prefixes with an allowed action, sorted; "*" when AllActions
	FullServices                                []string // service prefixes with every action allowed ("iam" for iam:*); "*" when AllActions
	Read, Write, Tagging, PermissionsManagement bool
	Escalations                                 []Escalation
	// Conditional: some grant behind a true field depends on conditions. Set
	// only by Classify (ClassifyContext decides the conditions).
	Conditional bool
}

const probeService = "anchorageprobe"
const probeAction = probeService + ":AnchorageProbeAction"

// Classify summarises the session's permissions as an upper bound: Allow
// statements count whatever their conditions, conditional Denies do not
// (Summary.Conditional says whether that mattered).
func Classify(e Effective) Summary { return classify(e, Query{}) }

// ClassifyContext summarises the permissions with conditions decided against
// ctx (the certificate's principal tags, aws:SourceArn, …).
func ClassifyContext(e Effective, ctx map[string][]string) Summary {
	return classify(e, Query{Exact: true, Context: ctx})
}

func classify(e Effective, base Query) Summary {
	var s Summary
	cache := newPatternCache()
	find := func(action string, all bool) (Grant, bool) {
		q := base
		q.Action, q.AllResources = action, all
		g, ok := e.find(q, cache)
		if ok && g.Conditional {
			s.Conditional = true
		}
		return g, ok
	}
	_, s.AllActions = find(probeAction, false)
	_, s.AllResources = find("", true)

	// Services named by Allow statements, checked against denies and the
	// restricting policy types.
	names := map[string]bool{}
	identity, restricting := e.allowStatements()
	for _, ss := range append(identity, restricting...) {
		for _, st := range ss {
			for _, a := range st.Action {
				if svc, _, ok := strings.Cut(a, ":"); ok {
					names[strings.ToLower(svc)] = true
				}
			}
		}
	}
	if s.AllActions {
		s.Services = append(s.Services, "*")
		s.FullServices = append(s.FullServices, "*")
		names["iam"] = true
	}
	var svcs []string
	for n := range names {
		svcs = append(svcs, n)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		if _, ok := find(svc+":*", false); ok {
			s.Services = append(s.Services, svc)
			if _, ok := find(svc+":"+probeAction[len(probeService)+1:], false); ok {
				s.FullServices = append(s.FullServices, svc)
			}
		}
	}

	// Access levels: one probe per verb across every service ("*:Get*"),
	// classified by the witness found, which may be narrower than the probe.
	levels := map[AccessLevel]*bool{LevelRead: &s.Read, LevelWrite: &s.Write, LevelTagging: &s.Tagging, LevelPermissionsManagement: &s.PermissionsManagement}
	for _, pr := range levelProbes {
		if *levels[pr.level] {
			continue
		}
		if g, ok := find("*:"+pr.pattern, false); ok {
			*levels[ActionAccessLevel(g.Action)] = true
		}
	}

	// Escalation. "*" on "*" implies the IAM probe unless IAM is denied,
	// and without IAM (PowerUserAccess) a session is not admin-equivalent
	// unless an escalation path below remains.
	if _, ok := find("iam:"+probeAction[len(probeService)+1:], true); ok {
		s.AdminEquivalent = true
	}
	esc := func(actions []string, g Grant) {
		_, all := find(actions[0], true)
		if all {
			g.Resource = "*"
		}
		s.Escalations = append(s.Escalations, Escalation{Actions: actions, Resource: g.Resource, AllResource: all, Conditional: g.Conditional})
		if all {
			s.AdminEquivalent = true
		}
	}
	for _, a := range EscalationActions {
		if g, ok := find(a, false); ok {
			esc([]string{a}, g)
		}
	}
	if pr, ok := find("iam:PassRole", false); ok {
	combos:
		for _, combo := range PassRoleEscalations {
			for _, a := range combo {
				g, ok := find(a, false)
				if !ok {
					continue combos
				}
				pr.Conditional = pr.Conditional || g.Conditional
			}
			esc(append([]string{"iam:PassRole"}, combo...), pr)
		}
	}
	return s
}

type levelProbe struct {
	pattern string
	level   AccessLevel
}

var levelProbes = func() []levelProbe {
	var out []levelProbe
	for _, p := range []string{"Get*", "List*", "Describe*", "Head*", "Search*", "Query*", "Scan*", "Select*", "BatchGet*"} {
		out = append(out, levelProbe{p, LevelRead})
	}
	for _, p := range []string{"Tag*", "Untag*", "*Tagging"} {
		out = append(out, levelProbe{p, LevelTagging})
	}
	for _, p := range []string{"PassRole", "Put*Policy*", "Attach*Policy*", "Create*Policy*", "Delete*Policy*", "Set*Policy*", "Update*Policy*", "Detach*Policy*", "AddPermission*", "RemovePermission*", "Create*Grant*", "Put*Acl*", "AddUserToGroup", "CreateAccessKey"} {
		out = append(out, levelProbe{p, LevelPermissionsManagement})
	}
	for _, p := range []string{"Put*", "Create*", "Delete*", "Update*", "Modify*", "Set*", "Add*", "Remove*", "Attach*", "Detach*", "Start*", "Stop*", "Run*", "Terminate*", "Send*", "Invoke*", "Publish*", "Execute*", "Import*", "Export*", "Copy*", "Restore*", "Replace*", "Associate*", "Disassociate*", "Register*", "Deregister*", "Upload*", "Change*", "Enable*", "Disable*", "Reset*", "Cancel*", "Reboot*", "Rotate*", "Assume*", "Decrypt*", "Encrypt*", "Sign*"} {
		out = append(out, levelProbe{p, LevelWrite})
	}
	return out
}()
