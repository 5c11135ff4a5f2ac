"""Process set-up shared by the PyTorch benchmark scripts: PyTorch timed at its best.

glibc hands freed blocks above its mmap threshold back to the kernel, and PyTorch eager
allocates every activation anew each forward, so each forward page-faults its activations
back in. Page faults are expensive on the project's virtual machine and their cost drifts
with the host's load: vit_small_patch16_224 at batch 1 on one thread took 116 ms of process
CPU with glibc's defaults and 62-64 ms with freed memory kept in the process (2026-12-03;
a day earlier the defaults had given 72 ms). A serving process would keep its memory (a
caching allocator, or these settings), so the baselines run with it kept: the mmap threshold
at glibc's maximum (32 MB on 64-bit, which also stops glibc from moving it) and trimming off.
Tensors above 32 MB (FNet-base's feed-forward at batch 8) are still mapped per use.
glibc reads the setting only at process start, hence the re-exec.
"""
import os
import sys

MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295"


def keep_freed_memory():
    """Re-executes this Python process with MALLOC_TUNABLES unless it already runs with them."""
    current = os.environ.get("GLIBC_TUNABLES", "")
    if MALLOC_TUNABLES in current:
        return
    env = dict(os.environ, GLIBC_TUNABLES=(current + ":" if current else "") + MALLOC_TUNABLES)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
