"""Request signatures and keys: draft-cavage and RFC 9421 HTTP signatures, digests, and the one
entry point that verifies either."""
