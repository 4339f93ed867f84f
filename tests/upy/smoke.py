# The runtime starts and runs plain MicroPython.
import sys
assert sys.implementation.name == "micropython"
assert sys.argv[0].endswith("smoke.py"), sys.argv
print("smoke ok", sys.implementation.version)
