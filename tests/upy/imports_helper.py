# Imported by imports.py from the script's own directory.
VALUE = 42
