"""Pure helpers shared by every capability: no I/O, no framework imports."""
