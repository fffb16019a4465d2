"""LMQL's library modules (`lmql.lib`), as far as lmql_nb implements them: `chat`."""
