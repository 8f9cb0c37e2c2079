"""The criterion test types a policy file may use, grouped by family (one module each)."""
