#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# klp-ra.py - makes the kernel's rust-project.json usable from the checkout.
#
#   klp-ra.py IN OUT KLP_SRC KLP_TOP KLP_ROOT
#
# `make rust-analyzer` describes the crates with paths in the kernel tree
# of the cache, as seen inside the toolchain root.  An editor opened on the
# checkout needs the checkout's own files for the crates that the overlay
# provides (the core, the samples), and the root's path for the Rust
# sources of the toolchain (core, alloc).  The kernel crate's root is an
# upstream file, so that crate, its livepatch module included, is read
# from the cache's tree.

import json
import os
import sys


def main():
    src_in, dst, ksrc, top, root = sys.argv[1:6]
    with open(src_in) as f:
        project = json.load(f)

    def fix(path):
        if not isinstance(path, str) or not path.startswith("/"):
            return path
        if path.startswith(ksrc + "/"):
            rel = path[len(ksrc) + 1:]
            if os.path.exists(os.path.join(top, rel)):
                return os.path.join(top, rel)
            return path
        if path.startswith("/usr/"):
            return root + path
        return path

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return fix(node)

    project = walk(project)
    # `make rust-analyzer` lists the crates of rust/, samples/ and drivers/,
    # not the livepatch core under kernel/: describe it like a sample,
    # which has the same dependencies (core, kernel, macros).
    crates = project["crates"]
    core_root = os.path.join(top, "kernel/livepatch/klp.rs")
    sample = next((c for c in crates
                   if c["root_module"].startswith(os.path.join(top, "samples/"))), None)
    if sample is not None and not any(c["root_module"] == core_root for c in crates):
        klp = json.loads(json.dumps(sample))
        klp["display_name"] = "klp"
        klp["root_module"] = core_root
        klp["cfg"] = [c for c in klp.get("cfg", []) if c != "MODULE"]
        crates.append(klp)

    with open(dst, "w") as f:
        json.dump(project, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
