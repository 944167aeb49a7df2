-- The newest `anchorage-ca audit` snapshot (one row), so the next audit
-- reports what changed since. data is package audit's JSON, kept as text
-- (json, not jsonb) so it reads back byte for byte.
CREATE TABLE audit_snapshot (
	id       boolean PRIMARY KEY DEFAULT true CHECK (id),
	taken_at timestamptz NOT NULL,
	data     json NOT NULL
);
