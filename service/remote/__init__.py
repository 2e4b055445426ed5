"""What the relay fetches and keeps of other servers: remote documents, accounts and actors."""
