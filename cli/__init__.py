"""The `junction` command-line client."""
