#!/usr/bin/env python3
"""The layering of docs/design.md, checked: each folder of src/ includes only the folders below
it, and nothing outside src/sources/ names a path under /proc or /sys. Every library exports
src/ as its include root, so the link graph alone would not catch an include that points up;
this check does. Usage: check_layers.py SOURCE_DIR"""
import pathlib
import re
import sys

# The layers from the bottom up; a folder may include any folder of a lower layer.
LAYERS = [["util"], ["core"], ["sources"], ["collect"], ["pin", "audit", "record"], ["views"],
          ["serve"], ["cli"]]
ALLOWED = {}
for level, folders in enumerate(LAYERS):
    below = {folder for lower in LAYERS[:level] for folder in lower}
    for folder in folders:
        ALLOWED[folder] = below
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
OS_PATH = re.compile(r'"/(proc|sys)(/|")')

src = pathlib.Path(sys.argv[1]) / "src"
problems = []
for path in sorted(src.rglob("*")):
    if path.suffix not in {".cpp", ".h", ".c"}:
        continue
    folder = path.relative_to(src).parts[0]
    if folder not in ALLOWED:
        problems.append(f"{path}: folder '{folder}' is not in the layering (docs/design.md)")
        continue
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = INCLUDE.match(line)
        if match and match.group(1) != folder and match.group(1) not in ALLOWED[folder]:
            problems.append(f"{path}:{number}: {folder}/ includes {match.group(1)}/, which is above it")
        if folder != "sources" and OS_PATH.search(line):
            problems.append(f"{path}:{number}: a /proc or /sys path outside src/sources/")
for problem in problems:
    print(problem)
print(f"layers: {len(problems)} problems")
sys.exit(1 if problems else 0)
