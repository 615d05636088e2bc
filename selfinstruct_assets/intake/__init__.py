"""What arrives from outside: feedback, production queries and new contracts, read from their inboxes."""
