"""drone_agent."""
