"""The suite's progress lines (``[bench-accuracy HH:MM:SS] ...``)."""
import time

__all__ = ['say']


def say(msg):
    print(f'[bench-accuracy {time.strftime("%H:%M:%S")}] {msg}', flush=True)
