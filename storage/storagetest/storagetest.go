// Package storagetest is the conformance suite of anchorage's storage
// backends (storage.Backend): one table of tests, run by storage (bbolt)
// and storage/postgres against their own backend, so both keep the same
// semantics — lineages and the renew/revoke race, whole-lineage
// revocation, single-use tokens, strictly increasing CRL numbers, anchor
// status, Watch signals, leases, ACME state and single-use ACME nonces.
// Tests of one backend's internals (bbolt's file checks and group commit,
// PostgreSQL's replicas) stay beside that backend.
package storagetest
