import sys
from pathlib import Path

# The helpers (feedback_support) live in tests/support, shared with the console's tests; with
# --import-mode=importlib pytest does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parents[2] / "support"))
