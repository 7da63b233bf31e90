import os
import sys

from vae.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
    # Under torchrun a finished process skips the interpreter's shutdown: gloo's worker threads can abort it
    # (std::terminate, exit -6) after the run is saved and printed, and torchrun then reports the run failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
