"""Training: the trainer (trainer.py), torchrun's processes (distributed.py), the replay it records (replay.py),
and the app's background jobs (jobs.py, threads.py) with what a page draws a model from (view.py)."""
