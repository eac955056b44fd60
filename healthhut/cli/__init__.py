"""The healthhut command line: thin, lazy, one clear line per error."""
