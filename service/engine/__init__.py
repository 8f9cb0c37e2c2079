"""The pure coverage engine: PatientRecord + policy + order + date in, Determination out (no I/O).

Import from the submodules (`service.engine.evaluate`, `.model`, ...); this package file stays
empty so that the policy compiler can import the test-type registry without a cycle.
"""
