"""Fetches a pinned file into a cache for tests/real_headers.rs, or checks the cached copy.

    python3 fetch_sdist.py URL SHA256 DEST

Exit status: 0 DEST holds the file with that SHA-256; 2 the download failed (network); 3 the
download (or DEST) has another SHA-256. Writes to a temporary name and renames, so tests that
fetch at the same time never read a partial file.
"""

import hashlib
import os
import sys
import urllib.request


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def main(url, expected, dest):
    if os.path.exists(dest):
        found = sha256(dest)
        if found == expected:
            return 0
        print(f"{dest}: sha256 {found}, expected {expected}; fetching again", file=sys.stderr)
    part = f"{dest}.part{os.getpid()}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            while block := response.read(1 << 16):
                out.write(block)
    except OSError as e:
        print(f"download of {url} failed: {e}", file=sys.stderr)
        if os.path.exists(part):
            os.remove(part)
        return 2
    found = sha256(part)
    if found != expected:
        os.remove(part)
        print(f"{url}: sha256 {found}, expected {expected}", file=sys.stderr)
        return 3
    os.replace(part, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
