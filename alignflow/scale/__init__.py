"""Scale-out: the training stages' unchanged code on Ray Train workers (see launch.py and worker.py)."""
