#!/usr/bin/env python3
"""The C compiler's view of include/adak.h's structs, as JSON.

Parses every `typedef struct NAME { ... } NAME;` of the header (comments stripped; a field's name
is the last identifier of its declaration), writes a C program printing sizeof and offsetof of
each field, compiles it with the host C compiler ($CC, default cc) and prints
{"STRUCT": {"size": N, "fields": [["name", offset, size], ...]}}.
The ABI layout tests (Swift: Tests/AdaKTests/ABILayoutTests.swift, Python:
python/tests/test_abi_layout.py) compare their languages' view of the same structs against it.
usage: scripts/abi-layout.py [include/adak.h]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

header = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "include" / "adak.h")
text = re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S)
text = re.sub(r"//[^\n]*", " ", text)
structs = {}
for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
    name, body = m.group(1), m.group(2)
    fields = [re.findall(r"\w+", decl)[-1] for decl in body.split(";") if decl.strip()]
    structs[name] = fields
if not structs:
    sys.exit(f"abi-layout: no structs found in {header}")

lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{header.resolve()}"', "int main(void) {", 'printf("{");']
for i, (name, fields) in enumerate(structs.items()):
    sep = "," if i else ""
    lines.append(f'printf("{sep}\\"{name}\\": {{\\"size\\": %zu, \\"fields\\": [", sizeof({name}));')
    for j, f in enumerate(fields):
        fsep = "," if j else ""
        lines.append(f'printf("{fsep}[\\"{f}\\", %zu, %zu]", offsetof({name}, {f}), sizeof((({name} *)0)->{f}));')
    lines.append('printf("]}");')
lines += ['printf("}\\n");', "return 0;", "}"]

with tempfile.TemporaryDirectory() as tmp:
    src, exe = Path(tmp) / "probe.c", Path(tmp) / "probe"
    src.write_text("\n".join(lines))
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=c11", "-Wall", "-Werror", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
print(json.dumps(json.loads(out), indent=1))
