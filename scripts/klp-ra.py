#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# klp-ra.py - makes the kernel's rust-project.json usable from the checkout.
#
#   klp-ra.py IN OUT KLP_SRC KLP_TOP KLP_ROOT
#
# `make rust-analyzer` describes the crates with paths in the kernel tree
# of the cache, as seen inside the toolchain root.  An editor opened on the
# checkout needs the checkout's own files for what the overlay provides
# (the core, the kernel crate's livepatch module, the samples), and the
# root's path for the Rust sources of the toolchain (core, alloc).

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

    with open(dst, "w") as f:
        json.dump(walk(project), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
