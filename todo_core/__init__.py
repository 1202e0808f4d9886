"""The domain: tasks, categories, their rules, the use cases and the ports they need.

Plain Python only: no web framework, ORM or settings library is imported here (import-linter
keeps it so).
"""
