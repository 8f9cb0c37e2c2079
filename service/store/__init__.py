"""The service's one database: the audit trail of hook calls and the JWT replay store, shared by
every replica that points at the same URL."""
