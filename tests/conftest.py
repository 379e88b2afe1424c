import sys
from pathlib import Path

# Test helpers (frame_compare) live in tests/; make them importable from any test folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
