-- ACME nonces are HMAC tokens minted by package acme with their issue time
-- inside, so minting writes nothing. Every replica verifies them with the
-- one key kept here (one row, created by the first replica that needs it),
-- and consumes each by inserting its id: the primary key makes a nonce
-- good once across all replicas. Ids are deleted once expired, when the
-- nonce is refused on its age alone.
CREATE TABLE acme_nonce_key (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	key bytea NOT NULL
);

CREATE TABLE acme_nonces (
	id      text COLLATE "C" PRIMARY KEY,
	expires timestamptz NOT NULL
);
CREATE INDEX acme_nonces_by_expiry ON acme_nonces (expires);
