# A script imports modules beside it (sys.path[0] is the script's directory) and frozen ones.
import sys
import imports_helper
import asyncio

assert imports_helper.VALUE == 42
assert sys.path[1] == ".frozen", sys.path
print("imports ok")
