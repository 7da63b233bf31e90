"""The training threads as the OS sees them: a name that ps and top show, and an optional lower CPU
priority (VAE_TRAIN_NICE), both inherited by the threads torch starts from them."""
from __future__ import annotations

import os
import sys
import threading

TRAINING_THREAD_NAME = "vae-train"  # what ps, top -H and /proc/<pid>/task/*/comm show for a job's threads


def training_nice() -> int:
    """How much lower than the server's the training threads' CPU priority is: VAE_TRAIN_NICE
    (0-19), else 0. The default leaves it alone because, with the Train page open in the same laptop's
    browser, a niced job trains slower: torch's OpenMP threads lose a core to each browser frame and the
    other waits for it at the next barrier. A server a whole class connects to can set 10, so that the
    students' pages stay quick while the job takes what they leave (docs/benchmarks.md and
    docs/reliability.md have the figures)."""
    env = os.environ.get("VAE_TRAIN_NICE", "").strip()
    return min(int(env), 19) if env.isdigit() else 0


def name_this_thread(name: str = TRAINING_THREAD_NAME) -> bool:
    """Gives the calling thread an OS-level name (Linux, at most 15 bytes). Threads it starts later,
    such as torch's OpenMP workers, inherit it, so a job's CPU can be told apart from the server's.
    Returns whether it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0) == 0  # 15: PR_SET_NAME
    except (OSError, AttributeError):
        return False


def lower_this_threads_priority(step: int | None = None) -> int | None:
    """Raises the calling thread's nice value by `step` (Linux: a thread id is a scheduling entity,
    and the threads it starts, such as torch's OpenMP workers, inherit it). Returns the new nice
    value, or None where threads cannot be prioritised apart (other systems), it is not allowed, or
    the step is 0."""
    step = training_nice() if step is None else step
    if step <= 0 or not sys.platform.startswith("linux") or not hasattr(threading, "get_native_id"):
        return None
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + step, 19))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None


def become_a_training_thread() -> None:
    """First thing in a job's thread, before torch starts this thread's worker threads (they inherit
    both): its name, and its priority as VAE_TRAIN_NICE asks."""
    name_this_thread()
    lower_this_threads_priority()
