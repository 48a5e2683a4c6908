"""Serving engines behind one small interface, and one OpenAI-API client for them."""
