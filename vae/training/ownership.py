"""Who may steer a job. A job belongs to the server, so every browser tab may look at it; stopping it (and any
control a job has) is for the session that started it, whose id the job keeps as its owner, or for a teacher:
a session that entered the key the server was started with ($VAE_TEACHER_KEY). A job with no owner (started
outside the app) is anyone's."""
from __future__ import annotations

import hmac
import os
from typing import Mapping

TEACHER_KEY_ENV = "VAE_TEACHER_KEY"


def teacher_key_set(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this server was started with a teacher key."""
    return bool(environ.get(TEACHER_KEY_ENV, "").strip())


def is_teacher_key(entered: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether entered is the server's teacher key; always False on a server without one. The comparison takes
    as long whatever the key's first wrong character (hmac.compare_digest)."""
    expected = environ.get(TEACHER_KEY_ENV, "").strip()
    return bool(expected) and hmac.compare_digest(entered.strip().encode(), expected.encode())


def may_control(owner: str | None, session: str, teacher: bool) -> bool:
    """Whether the session may stop (or otherwise steer) a job that owner started."""
    return teacher or owner is None or owner == session


def who_may_act(job_name: str, action: str = "stop it", environ: Mapping[str, str] = os.environ) -> str:
    """The refusal a tab that may not act reads, in one sentence naming who may."""
    teacher = "; so can a tab that enters the teacher key in the sidebar" if teacher_key_set(environ) else ""
    return f"Only the tab that started {job_name} can {action}{teacher}."
