"""The SQL the use cases need, one module per aggregate, as keyword-only async functions.

A use case in ``bot/services`` reads as steps ("claim the due check-ins", "find the open
alert"), and each query here is tested on SQLite and PostgreSQL.
"""
