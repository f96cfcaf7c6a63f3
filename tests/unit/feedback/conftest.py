import sys
from pathlib import Path

# Helpers live beside this file; with --import-mode=importlib pytest does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
