"""hotport.store: the VIF cache and operation journal.

`base` is the contract the engine imports (no SQLAlchemy there); `sql` implements it on
SQLAlchemy 2 (SQLite by default, PostgreSQL by URL); `schema` declares the tables;
`migrations/` holds the Alembic environment and revisions, found at run time next to
`sql.py`. This package module imports nothing, so importing the contract stays cheap.
"""
