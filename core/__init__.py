"""Junction's domain: plain Python, no azure.functions, so it is tested without a host."""
