"""Pure business rules: no I/O, deterministic, safe to call from workflows and activities."""
