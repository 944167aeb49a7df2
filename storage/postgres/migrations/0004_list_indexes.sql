-- Listings page in index order (storage.Filter): by state and expiry,
-- and by expiry alone, each with the serial that breaks ties, so that a
-- page is an index range scan of O(log n + page) rows.
CREATE INDEX certs_by_status_expiry ON certs (status, not_after, serial);
CREATE INDEX certs_by_expiry_serial ON certs (not_after, serial);
DROP INDEX certs_by_expiry;
