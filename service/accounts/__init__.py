"""Local accounts: the store that creates, changes and deletes them, their API shapes, their
actor profiles, and the instance actor."""
