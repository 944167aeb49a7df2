-- The record of truth of anchorage on PostgreSQL. Each table mirrors one
-- bbolt bucket of package storage. Records whose shape belongs to Go
-- (certificates, ACME objects, anchor status) are stored whole as JSON in
-- rec; the fields a query selects, orders or locks by are columns beside it,
-- written from the same record in the same statement. Serials and ids are
-- COLLATE "C" so listings come out in the byte order bbolt uses.

CREATE TABLE certs (
	serial     text COLLATE "C" PRIMARY KEY,
	subject    text COLLATE "C" NOT NULL,
	not_after  timestamptz NOT NULL,
	status     text NOT NULL,
	lineage    text COLLATE "C" NOT NULL,
	order_id   text COLLATE "C" NOT NULL DEFAULT '',
	rec        json NOT NULL
);
CREATE INDEX certs_by_subject ON certs (subject, serial);
CREATE INDEX certs_by_expiry ON certs (not_after);
CREATE INDEX certs_by_lineage ON certs (lineage);
CREATE INDEX certs_revoked_unexpired ON certs (not_after) WHERE status = 'revoked';
CREATE INDEX certs_by_order ON certs (order_id) WHERE order_id <> '';

-- The CRL source: revocations of issuing-CA certificates.
CREATE TABLE revocations (
	serial     text COLLATE "C" PRIMARY KEY,
	revoked_at timestamptz NOT NULL,
	reason     integer NOT NULL,
	not_after  timestamptz NOT NULL,
	seq        bigint NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (not_after);

-- Lineages cut off by a revocation.
CREATE TABLE lineages (
	id         text COLLATE "C" PRIMARY KEY,
	revoked_at timestamptz NOT NULL,
	revoked_by text NOT NULL
);

-- Used enrollment token ids: the primary key refuses a replay on every
-- replica. keep_until is unix seconds, as bbolt stores it, so the prune
-- boundary is the same on both backends.
CREATE TABLE tokens (
	jti        text PRIMARY KEY,
	keep_until bigint NOT NULL
);
CREATE INDEX tokens_by_keep_until ON tokens (keep_until);

-- One row: the revocation sequence and the newest CRL, updated in the
-- transaction that changes them.
CREATE TABLE counters (
	id         boolean PRIMARY KEY DEFAULT true CHECK (id),
	rev_seq    bigint NOT NULL DEFAULT 0,
	crl_number bigint NOT NULL DEFAULT 0,
	crl_seq    bigint NOT NULL DEFAULT 0,
	crl_der    bytea
);
INSERT INTO counters DEFAULT VALUES;

CREATE TABLE anchors (
	arn text COLLATE "C" PRIMARY KEY,
	rec json NOT NULL
);

CREATE TABLE acme_accounts (
	id          text COLLATE "C" PRIMARY KEY,
	provisioner text NOT NULL,
	thumbprint  text NOT NULL,
	rec         json NOT NULL,
	UNIQUE (provisioner, thumbprint)
);

CREATE TABLE acme_eab (
	provisioner text NOT NULL,
	key_id      text NOT NULL,
	account_id  text NOT NULL,
	PRIMARY KEY (provisioner, key_id)
);

CREATE TABLE acme_orders (
	id             text COLLATE "C" PRIMARY KEY,
	account_id     text NOT NULL,
	status         text NOT NULL,
	expires        timestamptz NOT NULL,
	authzs         integer NOT NULL,
	cert_not_after timestamptz,
	rec            json NOT NULL
);
CREATE INDEX acme_orders_open ON acme_orders (account_id, expires) WHERE status IN ('pending', 'ready');
CREATE INDEX acme_orders_by_status ON acme_orders (status);

CREATE TABLE acme_authzs (
	id       text COLLATE "C" PRIMARY KEY,
	order_id text NOT NULL,
	rec      json NOT NULL
);

-- Who holds which lease, written by the holder when it takes the advisory
-- lock; Leases reports a row only while its lock is held.
CREATE TABLE leases (
	name     text PRIMARY KEY,
	holder   text NOT NULL,
	since    timestamptz NOT NULL,
	lock_key bigint NOT NULL
);
