"""The Jinja2 environment (autoescaping on, as Starlette sets it for .html files)."""

from pathlib import Path

from fastapi.templating import Jinja2Templates

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=ROOT / "templates")
STATIC_DIR = ROOT / "static"
