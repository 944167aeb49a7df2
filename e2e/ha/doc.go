// Package ha tests replicas of anchorage-ca on one PostgreSQL database as
// separate OS processes: the real binary, built once per test run, killed
// with SIGKILL at the moments that matter (in the middle of a push to a
// trust anchor, under an enroll, renew and revoke load), and a database
// stopped and started again under load. The trust anchor is the in-process
// localaws of internal/testenv, whose hook holds a CRL push in flight and
// records every CRL it was sent.
//
// What the tests hold a failure to: every certificate a client received is
// stored, every revocation acknowledged is on the next CRL of every replica
// and at the anchor, CRL numbers at the anchor only increase, the anchor
// imported one CRL in all, and a database outage answers 503 problems,
// never a 500 or a hang.
//
// BenchmarkFailover prints the push-lease failover and revoke-to-enforced
// figures over real kills (HA_KILLS, default 10).
package ha
