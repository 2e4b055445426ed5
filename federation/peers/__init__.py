"""Policy toward other servers: which addresses may be reached, host health and the retry
schedule."""
