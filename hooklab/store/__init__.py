"""The SQLite store: schema, migrations, group commit and the DataFrame readout."""
