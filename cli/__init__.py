"""The `zhida` command line."""
