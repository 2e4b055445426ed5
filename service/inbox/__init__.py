"""Where inbound activities are authenticated, stored and applied; also the authentication of
signed GETs (authorized fetch)."""
