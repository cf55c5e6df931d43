#!/usr/bin/env python3
"""Where confab's binary size goes: the stripped size, then code and data by crate, from
the symbols of a build with them (cargo build --profile profiling). Usage:
    bench/size.py target/profiling/confab [TOP]
Demangled symbol names are grouped by their first path segment (`<mongodb::x as y>::z`
counts for mongodb); what has no crate path (C code: SQLite, ring's assembly) is listed
by symbol-name prefix."""
import collections, os, re, subprocess, sys, tempfile

binary = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
with tempfile.TemporaryDirectory() as tmp:
    stripped = os.path.join(tmp, "confab")
    subprocess.run(["strip", "-o", stripped, binary], check=True)
    stripped_size = os.path.getsize(stripped)
sections = {}
for line in subprocess.run(["size", "-A", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
        sections[parts[0]] = int(parts[1])
nm = subprocess.run(["nm", "--print-size", "--size-sort", "-C", binary], capture_output=True, text=True, check=True)
by_crate = collections.Counter()
total = 0
for line in nm.stdout.splitlines():
    parts = line.split(" ", 3)
    if len(parts) < 4:
        continue
    size = int(parts[1], 16)
    name = parts[3].lstrip("<&*( ").removeprefix("dyn ").removeprefix("impl ")
    # Generic code counts for the crate whose type it was made for:
    # core::ptr::drop_in_place<mongodb::Client> is mongodb's.
    crates = re.findall(r"(?<![A-Za-z0-9_:])([a-z_][a-z0-9_]*)::", name)
    named = [c for c in crates if c not in ("core", "alloc", "std")]
    if named:
        crate = named[0]
    elif crates:
        crate = crates[0]
    else:
        crate = "C: " + re.split(r"[_.$]", name)[0] if name else "?"
    by_crate[crate] += size
    total += size
mb = lambda b: f"{b / 1e6:6.2f} MB"
print(f"stripped binary: {mb(stripped_size)}")
print("sections: " + ", ".join(f"{k} {mb(v).strip()}" for k, v in sections.items() if v > 500_000))
print(f"symbols with a size: {mb(total)}")
for crate, size in by_crate.most_common(top):
    print(f"  {mb(size)}  {crate}")
