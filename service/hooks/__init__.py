"""CDS Hooks request parsing and validation (CDS Hooks 2.0, order-select / order-sign 1.0)."""
