// Package iampolicy parses AWS IAM policy documents and evaluates them the way
// AWS does, closely enough for anchorage's two uses: localaws decides Roles
// Anywhere CreateSession (the role's trust policy) and a session's effective
// permissions, and `anchorage-ca audit` asks which certificate can assume which
// role with what permissions.
//
// Data moves one way: Parse (or ParseAs) turns JSON into a Policy of plain
// exported fields, refusing what IAM would refuse as MalformedPolicyDocument;
// Evaluate decides a Request against one policy type; Effective combines the
// types of a role session; RolesAnywhereTrust checks the three actions
// CreateSession needs. For the auditor, EvaluateUpperBound, Effective.Find /
// AllowsAny and Classify / ClassifyContext answer "could this be allowed, and
// with what": see "Audit helpers" below. Nothing here does I/O, keeps state
// or panics on any input; a parsed Policy is read-only and safe to share
// between goroutines.
//
// # Audit helpers
//
// Upper bound (EvaluateUpperBound, Find without Query.Exact, Classify): every
// Allow statement counts whatever its conditions, a policy variable without
// a value matches anything in an Allow, and a Deny counts only if it has no
// conditions. So "allowed" there means "some request context could allow it";
// Grant.Conditional and Summary.Conditional say when conditions were needed.
// ClassifyContext and Find with Query.Exact decide the conditions against a
// known context instead (a certificate's principal tags and anchor).
//
// Find answers "does the session allow some action matching A on some
// resource matching R" by building candidate witnesses, the shortest strings
// that the query and one Allow statement (or one identity statement and one
// boundary/session statement) both match, and deciding each with the full
// rules. A witness it returns is always allowed; it can miss a grant only
// when all the shortest shared strings are denied while longer ones are not
// (Allow s3:* with Deny s3:?), or when a very large policy set exhausts its
// budget of 4,096 evaluations per query.
//
// Classify reports AllActions (an Allow reaches every service, e.g. "*" or
// NotAction, after denies), AllResources (some action on Resource "*"),
// Services and FullServices (service prefixes named by Allow statements with
// some, or every, action allowed), access levels (Read, Write, Tagging,
// PermissionsManagement, from probes such as "*:Get*" classified by the
// witness found), Escalations (each of EscalationActions, and iam:PassRole
// with each PassRoleEscalations set, allowed on some resource) and
// AdminEquivalent: every IAM action on every resource (which "*" on "*"
// implies unless IAM is denied), or an escalation path on every resource.
// ActionAccessLevel is a name heuristic (Get/List/Describe… read, Tag/Untag
// tagging, *Policy*/*Permission*/*Grant*/*Acl* and iam:PassRole-class actions
// permissions management, else write), not AWS's per-action table; for
// example it calls ec2:CreateTags write where AWS says tagging.
//
// # Modelled AWS behaviour
//
// Parsing:
//   - Version "2012-10-17" or "2008-10-17", or absent (IAM then uses
//     2008-10-17); optional Id; Statement an object or a non-empty array.
//   - Statement fields Sid, Effect (Allow|Deny, case-sensitive), exactly one of
//     Action/NotAction, at most one of Resource/NotResource, at most one of
//     Principal/NotPrincipal, Condition. Unknown and duplicate fields are
//     refused (field names are case-sensitive); Sids must be unique.
//   - String-or-array for Action, Resource, principal values and condition
//     values; condition values may also be JSON numbers or booleans. Empty
//     arrays are refused.
//   - Action is "*" or "service:action" (no wildcard in the service prefix).
//     Resource is "*" or starts with "arn:".
//   - Principal is "*" or an object of AWS, Service, Federated, CanonicalUser,
//     each a string or array; a partial wildcard ("arn:aws:iam::1:role/*") is
//     refused as IAM does.
//   - Condition is {operator: {key: values}}; unknown operators are refused;
//     Numeric, Date, IpAddress and Bool/Null values must parse.
//   - Kinds: Parse infers identity (no statement names a principal, so every
//     statement needs Resource/NotResource) or resource-based (every statement
//     names a principal); ParseAs(KindTrust) also refuses Resource and
//     NotPrincipal in a trust policy (IAM does), ParseAs(KindIdentity) refuses
//     Principal.
//   - Documents larger than MaxDocumentSize (128 KiB) are refused.
//
// Evaluation:
//   - Explicit Deny wins over any Allow; otherwise Allow if any statement
//     allows; otherwise implicit deny.
//   - Action matching is case-insensitive with * and ? anywhere in the action
//     name; NotAction matches every action not listed.
//   - Resource matching is case-sensitive; * and ? stay within one
//     colon-separated ARN segment, except that a * ending a segment may match
//     across colons (IAM's documented rule); "*" matches everything;
//     NotResource matches every resource not listed; a statement without
//     Resource/NotResource (trust policies) applies to any resource.
//   - Principal "*" and {"AWS": "*"} match every caller, anonymous included.
//     Service principals compare case-insensitively. An account principal,
//     "111122223333" or "arn:aws:iam::111122223333:root", matches every
//     principal of that account. A role ARN matches that role's sessions
//     (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION). NotPrincipal matches
//     every caller not listed.
//   - Condition operators: StringEquals, StringNotEquals,
//     StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike,
//     StringNotLike (case-sensitive * and ?), NumericEquals, NumericNotEquals,
//     NumericLessThan[Equals], NumericGreaterThan[Equals], DateEquals,
//     DateNotEquals, DateLessThan[Equals], DateGreaterThan[Equals] (ISO 8601 or
//     epoch seconds), Bool, BinaryEquals (base64), IpAddress, NotIpAddress
//     (IPv4/IPv6 CIDR), ArnEquals, ArnLike, ArnNotEquals, ArnNotLike (each of
//     the six ARN components matched separately, with wildcards, for Equals
//     and Like alike), Null.
//   - Condition keys are case-insensitive, values case-sensitive except for
//     the IgnoreCase operators (and Bool). Values of one key are OR'ed; keys
//     and operators are AND'ed.
//   - A key absent from the request context (or present with no values):
//     positive operators are false, negated operators (…Not…, NotIpAddress)
//     true, …IfExists true, ForAllValues: true, ForAnyValue: false; Null
//     "true" holds exactly when the key is absent.
//   - ForAnyValue: at least one request value satisfies the operator;
//     ForAllValues: every request value does. For a negated operator a request
//     value satisfies it when it matches none of the policy values.
//   - Without a set qualifier, a multivalued key satisfies a positive operator
//     when any of its values matches, a negated one when none matches.
//   - Policy variables (2012-10-17 only) in Resource/NotResource and in
//     String, Arn and Bool condition values: ${key} takes the key's single
//     value from the request context, ${key, 'default'} the default when the
//     key is absent, ${*} ${?} ${$} the literal characters. Substituted text
//     is literal (a * from a tag is not a wildcard). A variable with no value
//     (absent or multivalued key, no default) makes that one policy value
//     match nothing.
//   - Effective (a role session): allowed iff some identity policy allows, no
//     identity, boundary or session policy denies, the permissions boundary
//     (if any) allows, and some session policy (if any) allows — the
//     intersection of identity policies with the session policies, which AWS
//     treats as one policy type.
//
// # Not modelled
//
//   - Service control policies, resource control policies, resource-based
//     policies granting access beside identity policies (and cross-account
//     rules), VPC endpoint policies, and access-point or KMS grant semantics.
//   - The action, resource and condition-key catalogue of each service: any
//     well-formed service:action is accepted and IAM's policy validator
//     warnings (unknown action, key not supported by the action) are not
//     produced; the size limits are not IAM's exact per-type limits.
//   - Principal forms IAM resolves on save: unique ids (AROA…), IAM users and
//     roles that no longer exist, and the NotPrincipal-with-Deny caveat that
//     the account, role and session ARNs are all checked — callers pass every
//     identity of the caller in Request.Principal themselves.
//   - Request-time context that AWS fills in (aws:CurrentTime,
//     aws:PrincipalArn, aws:SourceIp …): the caller supplies every key.
//   - Anything about the type of a condition key (single- vs multivalued):
//     whatever the caller passes decides it.
//   - IAM's character-set rules for policy text (ASCII for identity policies,
//     \u0020–\u00FF for session policies) and its whitespace-free size
//     counting; JSON escapes are decoded and invalid UTF-8 is accepted.
//   - Sid character rules (IAM policies: letters and digits only; some
//     resource-based policies allow more); any string is accepted.
//   - Which actions a trust policy may name (IAM restricts them to sts
//     actions); ParseAs(KindTrust) only checks Principal and Resource.
//   - Operator names are matched case-insensitively and "*:*"-style service
//     wildcards are refused; IAM's behaviour on both is (unverified).
//   - Exactly how IAM compares Date values with differing precision and how it
//     treats malformed numbers or dates in the request context (here: no
//     match, so positive operators are false and negated ones true).
package iampolicy
