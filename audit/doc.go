// Package audit answers "who can become what in AWS with this CA's
// certificates, and what looks wrong": the posture report of
// `anchorage-ca audit`.
//
// Data flow. A Source fetches one AWS account (Roles Anywhere trust
// anchors, profiles with their attribute mappings and session policies,
// CRLs, subjects; IAM roles with trust and permission policies) into an
// Account; the command adds the CA's live certificates from storage and the
// previous snapshot, and Analyze turns that fixed World into a Report:
//
//   - the map: certificate → trust anchors whose bundle holds its issuer →
//     enabled profiles → roles whose trust policy admits that very
//     certificate (evaluated with package iampolicy on the session tags the
//     profile's attribute mappings make of it, as Roles Anywhere does);
//   - findings on anchors, profiles, roles and certificates, and anomalies
//     seen at AWS (foreign subjects, one certificate on several hosts, new
//     subjects, failed-attempt bursts);
//   - a blast-radius score per certificate, made of the policy statements
//     it reaches.
//
// Analyze does no I/O, so it is tested with a fixed world; the Source for
// AWS (NewAWSSource) speaks aws-sdk-go-v2 to AWS or localaws. The report
// renders as a table, JSON (schema SchemaVersion), a self-contained HTML
// page or Graphviz dot.
package audit
