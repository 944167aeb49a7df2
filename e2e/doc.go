// Package e2e holds end-to-end tests of the Roles Anywhere loop: a real CA,
// the local Roles Anywhere endpoint, the anchorage binary and the AWS SDK,
// all on 127.0.0.1.
package e2e
