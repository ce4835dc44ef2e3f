"""Fakes for end-to-end tests: a Bot API server and the people who use it."""
